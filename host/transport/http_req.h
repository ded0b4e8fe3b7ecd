/* A web request as the transport hands it up: the request (method,
 * target, header fields, de-chunked body), the functions that write its
 * response on this transport, and room for the web layer's translation
 * state. HTTP/1.1 (http1.c) fills one per connection; the web layer
 * (host/web) fills one per HTTP/2 stream it takes.
 *
 * The web layer plugs in through web_handler (set once at start-up,
 * before the workers run), so the transport calls up without including
 * it. Worker thread only. */
#ifndef RPCHOST_HOST_TRANSPORT_HTTP_REQ_H
#define RPCHOST_HOST_TRANSPORT_HTTP_REQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef struct conn conn;
struct rh_call;
struct web_rule;

typedef struct web_req web_req;

/* One response header; both strings live until head() returns. */
typedef struct web_hdr {
    const char *name; /* as sent, e.g. "Content-Type" */
    const char *value;
} web_hdr;

/* How a transport writes a response. */
typedef struct web_resp_ops {
    /* Status and headers. body_len >= 0: exactly that many body bytes
     * follow; -1: the body is streamed (chunked on HTTP/1.1). */
    void (*head)(web_req *r, int status, const web_hdr *h, size_t n, int64_t body_len);
    void (*body)(web_req *r, const uint8_t *p, size_t n);
    /* The response is complete; r may be reused by the transport. */
    void (*end)(web_req *r);
    /* Response bytes the transport holds and has not written yet. */
    size_t (*queued)(const web_req *r);
} web_resp_ops;

/* Past this many unwritten response bytes a streaming response stops
 * taking messages from its call: they stay in the call's queue, where
 * send_queued / notify_writable / max_send_queue pace the plugin as for
 * gRPC. The transport calls the handler's drained when it wrote them. */
#define WEB_OUT_HIGH (256 * 1024)

/* A header field of the request: offsets into web_req.raw. Names are
 * lowercased by the transport. */
typedef struct web_field {
    uint32_t name_off, name_len, value_off, value_len;
} web_field;

#define WEB_MAX_FIELDS 100

typedef enum web_proto {
    WEB_NONE = 0,
    WEB_GATEWAY,      /* JSON with HTTP rules */
    WEB_CONNECT,      /* Connect unary, application/json or /proto */
    WEB_CONNECT_STREAM, /* Connect streaming, application/connect+json|proto */
    WEB_GRPC_WEB,     /* application/grpc-web[+proto] */
    WEB_GRPC_WEB_TEXT, /* application/grpc-web-text[+proto] (base64) */
} web_proto;

struct web_req {
    conn *c;
    const web_resp_ops *ops;
    const char *transport; /* "HTTP/1.1" */

    /* --- the request, filled by the transport --------------------------- */
    const char *method; /* "GET", "POST", ... (static) */
    buf raw;            /* target, then field names and values */
    uint32_t target_len; /* the target is raw.p[0 .. target_len) */
    web_field fields[WEB_MAX_FIELDS];
    uint32_t n_fields;
    buf body;           /* de-chunked request body */

    /* --- the translation, web.c ------------------------------------------ */
    web_proto proto;
    bool json;          /* Connect / gateway body codec is JSON */
    bool head_sent;
    bool cors;          /* the request's Origin is allowed: add CORS headers */
    struct rh_call *call; /* the call carrying the request, while it runs */
    const struct web_rule *rule; /* WEB_GATEWAY */
    buf resp;           /* unary: framed response messages until the status */
    uint32_t n_resp;    /* response messages seen */
    bool out_blocked;   /* messages wait in the call for the transport */
};

/* The field's value (not NUL-terminated) or NULL; *len its length. */
const char *web_field_get(const web_req *r, const char *name, size_t *len);

/* The protocol name for access logs: "grpc", "grpc-web", "connect",
 * "http-json". */
const char *web_proto_name(web_proto p);

/* What the transport calls in the web layer. */
typedef struct web_handler {
    /* A complete request: answer it (now or later) through r->ops. */
    void (*dispatch)(web_req *r);
    /* The response is complete: end the call that carried it (before the
     * transport reuses r). */
    void (*release)(web_req *r);
    /* The transport wrote what it held: a paused response goes on. */
    void (*drained)(web_req *r);
    /* A worker thread's loop ended: free what the layer keeps per thread. */
    void (*thread_end)(void);
} web_handler;

void web_set_handler(const web_handler *h);
/* The handler set at start-up (NULL: HTTP/1.1 requests get 503). */
const web_handler *web_get_handler(void);

#endif
