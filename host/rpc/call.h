/* The gRPC call state machine (grpc/grpc doc/PROTOCOL-HTTP2.md) for one
 * HTTP/2 stream: request headers checked and routed, interceptors run,
 * messages re-assembled and decoded into host-owned memory, handler
 * callbacks delivered, responses encoded and queued for nghttp2, status
 * sent as trailers or as a trailers-only response, deadline enforced,
 * cancellation delivered.
 *
 * Lifetime: a call is created at the stream's first HEADERS and freed when
 * its last reference goes (the stream holds one until it closes; plugins
 * and timers may hold more). Freed calls return to the worker's free list
 * with their buffers, so a steady load makes no malloc per call. All state
 * but `refs` and `xstate` is touched only on the owning worker's thread. */
#ifndef RPCHOST_HOST_CALL_H
#define RPCHOST_HOST_CALL_H

#include <nghttp2/nghttp2.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"
#include "crash/crash.h"
#include "grpc_frame.h"
#include "registry/registry.h"
#include "metrics/metrics.h"
#include "rpchost/plugin.h"
#include "transport/transport.h"

#define CALL_ARENA_INLINE 2048
#define CALL_MSG_INLINE 1024

/* xstate bits, readable from any thread */
#define XS_FINISH_REQ 1u /* a finish was asked for (first one wins) */
#define XS_CANCELLED 2u  /* ended without the handler's finish */
#define XS_DONE 4u       /* status decided (finished or cancelled) */
#define XS_HEADERS_REQ 8u /* send_headers was asked for */
#define XS_ENDED (XS_FINISH_REQ | XS_CANCELLED | XS_DONE)

typedef struct md_list {
    nghttp2_nv *v;
    uint32_t n, cap;
} md_list;

struct rh_call {
    worker *w;
    conn *conn; /* NULL once the stream closed */
    peer_info *peer;
    int32_t stream_id;
    atomic_int refs;
    atomic_uint xstate;
    /* Sends, headers, posts and finishes of this call queued to the worker
     * and not yet applied: while nonzero, the worker's own ones queue
     * behind them (plugin.h, "Order"). */
    atomic_uint xpending;

    /* --- request headers ------------------------------------------------ */
    const char *path; /* NUL-terminated, arena */
    size_t path_len;
    uint32_t hdr_bytes; /* header list size as RFC 9113 counts it */
    bool method_post, ct_ok, ct_seen, te_ok, enc_bad, timeout_bad, hdr_too_big, bin_bad;
    bool headers_done; /* request headers complete: later blocks are trailers */
    const char *enc_name;
    const char *bad_key; /* first -bin key whose value is not base64 */
    int64_t deadline; /* absolute CLOCK_MONOTONIC ns, 0 = none */
    rh_metadata *md;
    uint32_t n_md, cap_md;

    /* --- routing --------------------------------------------------------- */
    reg_snapshot *snap;       /* referenced while the call lives */
    const reg_route *route;   /* in snap */
    const rh_method *m;
    reg_instance *adopted; /* adopt_call: the instance now running it (referenced) */
    void *state;
    const char *principal;

    /* --- lifecycle flags (worker thread) --------------------------------- */
    bool routed;      /* instance counted in-flight */
    bool handler;     /* handler may get callbacks */
    bool chain;       /* interceptors' on_start ran: on_end is due */
    bool ended;       /* on_end delivered */
    bool remote_end;  /* client sent END_STREAM */
    bool carrier;     /* carried a web request: not a gRPC call, not counted */
    bool headers_sent;
    bool finished;    /* status decided */
    bool trailers_submitted;
    bool deferred;    /* data provider waiting for bytes */
    bool closed;      /* stream closed */

    /* --- request flow control (pause_reading) ----------------------------- */
    bool paused;      /* the plugin paused reading: hold, deliver nothing */
    bool end_held;    /* END_STREAM came while bytes were held: half-close later */
    buf held;         /* request bytes received while paused; their stream
                       * window is not returned until they are delivered */
    rh_timer resume_timer; /* delivers held bytes from the loop after a resume */

    /* --- compression (compress.h) ---------------------------------------- */
    uint8_t req_enc;      /* grpc-encoding of the request (grpc_codec_algo) */
    uint8_t accept_enc;   /* GRPC_CODEC_BITs in the client's grpc-accept-encoding */
    uint8_t resp_enc;     /* algorithm of compressed responses; 0 = none */
    bool resp_enc_forced; /* set by the plugin: compress whatever the size */
    bool msg_compressed;  /* the request message last delivered came compressed */

    /* --- request messages -------------------------------------------------- */
    grpc_frame_reader reader;
    size_t rx_charged;           /* reader buffer bytes counted in conn->rx_bytes */
    size_t rx_decoded;           /* msg_arena heap bytes counted in conn->rx_bytes */
    ProtobufCMessage *unary_msg; /* decoded, delivered at END_STREAM */
    arena msg_arena;             /* reset before each decode */
    ProtobufCAllocator msg_pa;

    /* --- the call arena (plugins allocate from any thread) ---------------- */
    arena arena;
    ProtobufCAllocator pa;
    atomic_flag arena_lock;

    /* --- response ---------------------------------------------------------- */
    md_list init_md, trail_md;
    buf outq; /* framed response messages not yet taken by nghttp2 */
    /* send_queued(): outq bytes plus sends posted from other threads and
     * not yet applied. Written on the worker and by posting threads. */
    atomic_size_t sendq;
    flow_waiters waiters;   /* notify_writable callbacks (worker only) */
    rh_timer writable_timer; /* runs due waiters from the loop */
    rh_status status;
    const char *status_msg; /* arena, "" if none */

    /* --- stats ------------------------------------------------------------- */
    int64_t start_ns, end_ns;
    uint64_t bytes_in, bytes_out, msgs_in, msgs_out; /* as on the wire */
    uint64_t bytes_in_plain, bytes_out_plain;         /* before compression */
    const mx_method *mx; /* its gRPC series once counted as started; NULL
                          * while metrics are off */

    rh_timer deadline_timer;
    rh_timer cancel_timer; /* on_cancel of a call a send ended (from the loop) */
    bool cancel_due;
    rh_call *prev, *next; /* conn's list of calls; free list */

    /* --- web protocols (host/web) ----------------------------------------- */
    struct web_req *web; /* the HTTP request this call answers; NULL for gRPC */
    struct web_h2 *exchange; /* this HTTP/2 stream carries a web request */
    const char *method_name; /* :method when not POST (arena) */
    const char *ct_value;    /* content-type when not gRPC's (arena) */
    uint8_t web_proto;   /* web_proto of the call (0: native gRPC), for logs */

    _Alignas(16) uint8_t arena_inline[CALL_ARENA_INLINE];
    _Alignas(16) uint8_t msg_inline[CALL_MSG_INLINE];
};

/* --- driven by the transport through call_stream_ops (worker thread) ------- */
extern const h2_stream_ops call_stream_ops;

rh_call *call_new(conn *c, int32_t stream_id);
/* 0, or an nghttp2 error code to return from the header callback. */
int call_on_header(rh_call *call, const uint8_t *name, size_t namelen,
                   const uint8_t *value, size_t valuelen);
void call_on_headers_end(rh_call *call);
/* A DATA chunk of the request; `last` when its frame carries END_STREAM.
 * Bytes delivered or dropped get their flow-control window back at once;
 * bytes held for a paused call when they are delivered. */
void call_on_data(rh_call *call, const uint8_t *data, size_t len, bool last);
void call_on_remote_end(rh_call *call);
/* The stream is gone (client reset, connection lost, or done). Drops the
 * stream's reference: the call may be freed on return. */
void call_on_stream_close(rh_call *call, uint32_t error_code);

/* nghttp2 data source of a response. */
ssize_t call_data_read(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *user);
/* Writes one DATA frame (header + queued bytes) to the worker's output. */
int call_data_send(rh_call *call, const uint8_t *framehd, size_t length);

/* --- the API, on the worker thread ----------------------------------------- */
/* counted: len is already in call->sendq (a send posted from another
 * thread); on failure it is taken out again. */
int call_send_packed(rh_call *call, const uint8_t *framed, size_t len, bool counted,
                     uint32_t flags);
/* flags: RH_SEND_NO_COMPRESS */
int call_send(rh_call *call, const ProtobufCMessage *msg, uint32_t flags);
/* set_compression on the worker: see plugin.h. */
int call_set_compression(rh_call *call, rh_compression algo);
/* The handler's finish (after XS_FINISH_REQ was claimed). */
int call_finish(rh_call *call, rh_status code, const char *message);
int call_add_metadata(rh_call *call, rh_md_where where, const char *key,
                      const void *value, size_t len);
/* Ends the call from the host's side (deadline, limit, drain, instance
 * removal): status to the client if the stream is open, on_cancel to the
 * handler, on_end to the interceptors. No effect on a finished call. */
void call_abort(rh_call *call, rh_status code, const char *message);
/* For the crash handler (crash_set_call_describer): the call's method and
 * peer into r, and the instance it runs in. Signal-handler safe. */
const void *call_crash_describe(const rh_call *call, crash_record *r);
void call_unref_local(rh_call *call);
int call_later_local(rh_call *call, uint64_t delay_ns, void (*cb)(rh_call *, void *),
                     void *arg);
/* send_headers on the worker: the initial metadata goes out now. */
int call_send_headers(rh_call *call);
/* adopt_call on the worker: route and handlers of the call move to inst's
 * route (same path, checked by the caller). No effect on an ended call. */
void call_adopt(rh_call *call, reg_instance *inst, const reg_route *route);

/* pause_reading on the worker: see plugin.h. */
void call_pause_reading(rh_call *call, bool paused);
/* notify_writable on the worker; takes a call reference until cb ran. */
int call_notify_writable_local(rh_call *call, size_t low_water,
                               void (*cb)(rh_call *, void *), void *arg);

void *call_arena_alloc(rh_call *call, size_t size);

/* The web layer (above this one) plugs in here: the output of the calls
 * it starts (call->web set), and HTTP/2 streams that are not gRPC (the
 * call becomes the "carrier" of the exchange, call->exchange set). Set
 * once at start-up, before the workers run; NULL: only gRPC is served. */
typedef struct call_web_hooks {
    void (*output)(rh_call *call);  /* new framed output in outq, or the status */
    bool (*claim)(rh_call *carrier); /* at the end of a non-gRPC request's headers */
    void (*data)(rh_call *carrier, const uint8_t *data, size_t len);
    void (*end)(rh_call *carrier);   /* END_STREAM of the carrier's request */
    void (*close)(rh_call *carrier); /* the carrier's stream closed */
} call_web_hooks;
void call_set_web_hooks(const call_web_hooks *hooks);

/* The web layer took n bytes from the front of call->outq (as nghttp2's
 * send callback does for gRPC): queue accounting and writable waiters. */
void call_outq_taken(rh_call *call, size_t n);

/* Worker teardown: frees recycled call objects and the compression
 * scratch (rpc/compress.h). */
void call_free_list(worker *w);
/* Ends the call of every open stream of c (the connection is closing). */
void call_close_all(conn *c);
/* The request header list's size so far (RFC 9113's count). */
uint32_t call_header_bytes(const rh_call *call);

#endif
