/* One gRPC call on an h2c session (grpc/grpc doc/PROTOCOL-HTTP2.md, client
 * side): request headers (with grpc-timeout and metadata), length-prefixed
 * request messages sent as they are queued, response messages re-assembled
 * and handed to a callback as they arrive, and the final status from the
 * trailers (or a trailers-only response, an HTTP error, a reset stream or a
 * lost connection, each mapped to a status code with a message). */
#ifndef RPCALL_CALL_H
#define RPCALL_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <nghttp2/nghttp2.h>

#include "grpc_frame.h"
#include "h2client.h"

/* Request headers, built once and shared by every call that uses them
 * (bench sends thousands of calls with one set). */
typedef struct call_headers {
    nghttp2_nv *nv;
    size_t n;
    char *store; /* backing bytes of every name and value */
} call_headers;

typedef struct call_md {
    char *name;
    char *value; /* as received; -bin values still base64 */
} call_md;

typedef struct call call;

typedef struct call_cbs {
    /* Response headers arrived (not for a trailers-only response). */
    void (*on_headers)(call *c, void *ud);
    /* One response message (len bytes, valid during the callback). */
    void (*on_message)(call *c, const uint8_t *msg, size_t len, void *ud);
    /* The call ended; c->status and c->message are final. */
    void (*on_close)(call *c, void *ud);
} call_cbs;

struct call {
    h2c *h;
    int32_t stream_id;
    struct call *next, *prev; /* h->calls */
    /* request side */
    const uint8_t *borrowed; /* framed bytes owned by the caller (bench) */
    size_t borrowed_len, borrowed_off;
    uint8_t *q;              /* framed messages queued (owned) */
    size_t q_len, q_off, q_cap;
    bool half_close;         /* no more messages after the queue */
    bool deferred;           /* nghttp2 is waiting for call_send() */
    /* response side */
    grpc_frame_reader fr;
    bool keep_md;            /* collect headers/trailers for -v */
    bool in_trailers;
    bool got_headers;
    int http_status;
    bool grpc_content_type;
    char content_type[64];
    call_md *headers, *trailers;
    size_t n_headers, n_trailers;
    int recv_enc;            /* grpc-encoding of the response: grpc_codec_algo, -1 unknown */
    char recv_enc_name[32];
    uint64_t msgs_in_compressed;
    int grpc_status;         /* from the trailers; -1 if none */
    char *grpc_message;      /* percent-decoded */
    char *details_b64;       /* grpc-status-details-bin as received */
    uint32_t rst_code;       /* RST_STREAM code, if the stream was reset */
    /* result */
    bool done;
    int status;
    char *message;
    uint8_t *details;        /* decoded google.rpc.Status bytes, or NULL */
    size_t details_len;
    uint64_t msgs_in, msgs_out;
    int64_t start_ns;
    call_cbs cbs;
    void *ud;
};

/* What a call says about compression in its request headers: the
 * grpc-encoding of its messages (identity: none sent) and the
 * grpc-accept-encoding list (NULL: none sent). */
typedef struct call_encoding {
    grpc_codec_algo send;
    const char *accept;
} call_encoding;

/* Builds request headers for path. timeout_ns > 0 adds grpc-timeout.
 * md: n_md "name: value" strings from -H (names are lowercased; -bin
 * values must be base64 and are sent normalised). enc may be NULL (no
 * compression headers). Returns 0 or -EINVAL with a message in err. */
int call_headers_build(call_headers *hd, const char *scheme, const char *authority,
                       const char *path, int64_t timeout_ns, const char *const *md,
                       size_t n_md, const call_encoding *enc, char *err, size_t errlen);

/* Compresses one serialised message with the connection's --compress
 * algorithm and frames it (compressed flag set) into the codec's scratch:
 * *framed is valid until the next call. 0, or -ENOMEM. */
int call_frame_compressed(h2c *h, const uint8_t *msg, size_t len, const uint8_t **framed,
                          size_t *framed_len);
void call_headers_free(call_headers *hd);

/* Starts a call: submits the headers; messages may be queued at once.
 * max_recv: largest response message accepted. Returns 0 or -errno (the
 * call is then closed, with on_close called). */
int call_start(call *c, h2c *h, const call_headers *hd, size_t max_recv, bool keep_md,
               const call_cbs *cbs, void *ud);

/* Queues one request message (framed and copied). */
int call_send(call *c, const uint8_t *msg, size_t len);
/* Queues caller-owned framed bytes (must outlive the call); bench only.
 * Only one borrowed buffer per call, sent before any call_send data. */
int call_send_borrowed(call *c, const uint8_t *framed, size_t len);
/* No more request messages. */
int call_half_close(call *c);
/* Cancels with RST_STREAM CANCEL and closes the call locally with the
 * given status (e.g. DEADLINE_EXCEEDED). */
void call_cancel(call *c, int status, const char *message);

/* Bytes queued but not yet taken by nghttp2 (for input back-pressure). */
size_t call_pending(const call *c);

/* Frees what the call holds (after on_close). */
void call_free(call *c);

/* For h2client.c: the session callbacks, and failing every open call
 * when the connection is lost. */
void call_set_session_callbacks(nghttp2_session_callbacks *cbs);
void call_fail_all(h2c *h, int status, const char *message);
int call_on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *h2c_ud);

/* Status names as grpcurl prints them ("InvalidArgument"). */
const char *call_code_name(int code);

#endif
