/* The host function table. Every rh_call function may run on any thread:
 * on the call's own worker it acts at once; elsewhere it validates what it
 * can synchronously (so the plugin gets its error code), copies its
 * arguments and posts them to the worker, holding a call reference until
 * the worker has applied them. */
#include "rpc/api.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "grpc_frame.h"
#include "rpc/api_metrics.h"
#include "rpc/call.h"

/* A call operation posted to the call's worker from another thread. */
typedef enum call_op_kind {
    XOP_SEND,   /* queue packed bytes */
    XOP_FINISH, /* status + message */
    XOP_ADD_MD, /* metadata */
    XOP_UNREF,  /* drop a reference */
    XOP_LATER,  /* arm a call_later timer */
    XOP_PAUSE,  /* pause_reading */
    XOP_NOTIFY, /* notify_writable */
    XOP_POST,    /* run a plugin's cb (post) */
    XOP_HEADERS, /* send the response headers now */
    XOP_ADOPT,   /* handlers move to another instance */
    XOP_COMPRESS, /* set_compression */
} call_op_kind;

typedef struct call_op {
    xop base; /* apply: apply_call_op */
    call_op_kind kind;
    rh_call *call;
    union {
        struct {
            size_t len; /* bytes (prefix included) follow in data */
            uint32_t flags; /* RH_SEND_* */
        } send;
        struct {
            rh_status code;
            bool has_msg; /* message follows in data, NUL-terminated */
        } fin;
        struct {
            rh_md_where where;
            size_t key_len, val_len; /* key NUL value follow in data */
        } md;
        struct {
            uint64_t delay_ns;
            void (*cb)(rh_call *call, void *arg);
            void *arg;
        } later;
        struct {
            size_t low_water;
            void (*cb)(rh_call *call, void *arg);
            void *arg;
        } notify;
        struct {
            bool paused;
        } pause;
        struct {
            void (*cb)(rh_call *call, void *arg);
            void *arg;
        } post;
        struct {
            reg_instance *inst; /* referenced */
            const reg_route *route;
        } adopt;
        struct {
            rh_compression algo;
        } compress;
    } u;
    _Alignas(16) uint8_t data[];
} call_op;

static void apply_call_op(worker *w, xop *base);

/* A zeroed op with `extra` bytes of data; NULL without memory. */
static call_op *call_op_new(call_op_kind kind, size_t extra)
{
    call_op *op = xop_new(sizeof *op + extra, apply_call_op);
    if (op) op->kind = kind;
    return op;
}

static inline bool on_worker(const rh_call *call) { return worker_self == call->w; }

/* Whether an ordered operation (send, send_headers, post, finish) may act
 * at once: on the call's worker with none of the call's ordered
 * operations queued. Otherwise it is queued behind them (plugin.h,
 * "Order"); a queued one that is being applied has left the count, so
 * what its own work sends goes straight out. */
static inline bool direct(const rh_call *call)
{
    return on_worker(call) && atomic_load_explicit(&call->xpending, memory_order_acquire) == 0;
}

static void call_ref_atomic(rh_call *call)
{
    atomic_fetch_add_explicit(&call->refs, 1, memory_order_relaxed);
}

/* Posts a call op; the op carries a call reference. */
static void post(rh_call *call, call_op *op)
{
    call_ref_atomic(call);
    op->call = call;
    worker_post(call->w, &op->base);
}

/* Posts an ordered op: counted in xpending until the worker takes it. */
static void post_ordered(rh_call *call, call_op *op)
{
    atomic_fetch_add_explicit(&call->xpending, 1, memory_order_acq_rel);
    post(call, op);
}

static bool ordered_kind(call_op_kind k)
{
    return k == XOP_SEND || k == XOP_FINISH || k == XOP_ADD_MD || k == XOP_HEADERS ||
           k == XOP_POST || k == XOP_ADOPT || k == XOP_COMPRESS;
}

/* Applies a call operation on the call's worker; frees op. */
static void apply_call_op(worker *w, xop *base)
{
    (void)w; /* the call's own */
    call_op *op = (call_op *)base;
    rh_call *call = op->call;
    if (ordered_kind(op->kind))
        atomic_fetch_sub_explicit(&call->xpending, 1, memory_order_acq_rel);
    switch (op->kind) {
    case XOP_SEND:
        call_send_packed(call, op->data, op->u.send.len, true, op->u.send.flags);
        break;
    case XOP_FINISH:
        if (op->u.fin.code == (rh_status)-1) /* over the send limit */
            call_abort(call, RH_RESOURCE_EXHAUSTED, (const char *)op->data);
        else
            call_finish(call, op->u.fin.code, op->u.fin.has_msg ? (const char *)op->data : NULL);
        break;
    case XOP_ADD_MD:
        call_add_metadata(call, op->u.md.where, (const char *)op->data,
                          op->data + op->u.md.key_len + 1, op->u.md.val_len);
        break;
    case XOP_LATER:
        /* cb must run exactly once: without memory for the timer, now. */
        if (call_later_local(call, op->u.later.delay_ns, op->u.later.cb, op->u.later.arg) < 0)
            op->u.later.cb(call, op->u.later.arg);
        break;
    case XOP_POST:
        op->u.post.cb(call, op->u.post.arg);
        break;
    case XOP_HEADERS:
        call_send_headers(call);
        break;
    case XOP_ADOPT:
        call_adopt(call, op->u.adopt.inst, op->u.adopt.route);
        break;
    case XOP_PAUSE:
        call_pause_reading(call, op->u.pause.paused);
        break;
    case XOP_COMPRESS:
        if (call_set_compression(call, op->u.compress.algo) == RH_E_INVALID)
            log_debug("stream %d: set_compression after the response headers: ignored",
                      call->stream_id);
        break;
    case XOP_NOTIFY:
        /* cb must run exactly once: without memory for the waiter, now. */
        if (call_notify_writable_local(call, op->u.notify.low_water, op->u.notify.cb,
                                       op->u.notify.arg) < 0)
            op->u.notify.cb(call, op->u.notify.arg);
        break;
    case XOP_UNREF:
        break; /* the op's reference is the one being dropped */
    default:
        break;
    }
    free(op);
    call_unref_local(call);
}

/* ---------------------------------------------------------------------- */

static int api_send_ex(rh_call *call, const ProtobufCMessage *msg, uint32_t flags)
{
    if (!call || !msg || (flags & ~RH_SEND_NO_COMPRESS)) return RH_E_INVALID;
    if (direct(call)) return call_send(call, msg, flags);
    unsigned xs = atomic_load_explicit(&call->xstate, memory_order_acquire);
    if (xs & XS_CANCELLED) return RH_E_CANCELLED;
    if (xs & (XS_FINISH_REQ | XS_DONE)) return RH_E_INVALID;
    size_t n = protobuf_c_message_get_packed_size(msg);
    size_t max = call->w->s->max_send_message;
    if (n > max) {
        call_op *op = call_op_new(XOP_FINISH, 128);
        if (!op) return RH_E_NOMEM;
        op->u.fin.code = (rh_status)-1;
        snprintf((char *)op->data, 128, "response message of %zu bytes exceeds the send limit of %zu",
                 n, max);
        post_ordered(call, op);
        return RH_E_INVALID;
    }
    /* Serialised now: the caller may free msg as soon as we return. */
    call_op *op = call_op_new(XOP_SEND, n + GRPC_FRAME_PREFIX);
    if (!op) return RH_E_NOMEM;
    grpc_frame_prefix(op->data, false, (uint32_t)n);
    protobuf_c_message_pack(msg, op->data + GRPC_FRAME_PREFIX);
    op->u.send.len = n + GRPC_FRAME_PREFIX;
    op->u.send.flags = flags;
    /* Counted now, so send_queued on this thread sees the send at once. */
    atomic_fetch_add_explicit(&call->sendq, op->u.send.len, memory_order_relaxed);
    post_ordered(call, op);
    return 0;
}

static int api_send(rh_call *call, const ProtobufCMessage *msg)
{
    return api_send_ex(call, msg, 0);
}

static int api_finish(rh_call *call, rh_status code, const char *message)
{
    if (!call) return RH_E_INVALID;
    unsigned prev = atomic_fetch_or_explicit(&call->xstate, XS_FINISH_REQ, memory_order_acq_rel);
    if (prev & XS_CANCELLED) return RH_E_CANCELLED;
    if (prev & (XS_FINISH_REQ | XS_DONE)) return RH_E_INVALID;
    if (direct(call)) return call_finish(call, code, message);
    size_t mlen = message ? strlen(message) : 0;
    call_op *op = call_op_new(XOP_FINISH, mlen + 1);
    if (!op) {
        /* Not taken after all: a later finish may still succeed. */
        atomic_fetch_and_explicit(&call->xstate, ~XS_FINISH_REQ, memory_order_acq_rel);
        return RH_E_NOMEM;
    }
    op->u.fin.code = code;
    op->u.fin.has_msg = message != NULL;
    if (message) memcpy(op->data, message, mlen + 1);
    post_ordered(call, op);
    return 0;
}

/* Keys: lowercase letters, digits, '-', '_', '.'; "grpc-" is reserved for
 * the protocol. Values of non -bin keys: printable ASCII. */
static bool md_valid(const char *key, const uint8_t *value, size_t len)
{
    size_t klen = strlen(key);
    if (klen == 0 || strncmp(key, "grpc-", 5) == 0) return false;
    for (size_t i = 0; i < klen; i++) {
        char c = key[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    if (klen > 4 && strcmp(key + klen - 4, "-bin") == 0) return true;
    for (size_t i = 0; i < len; i++)
        if (value[i] < 0x20 || value[i] > 0x7e) return false;
    return true;
}

static int api_add_metadata(rh_call *call, rh_md_where where, const char *key, const void *value,
                            size_t len)
{
    if (!call || !key || (!value && len)) return RH_E_INVALID;
    if (!value) value = "";
    if (!md_valid(key, value, len)) return RH_E_INVALID;
    if (direct(call)) return call_add_metadata(call, where, key, value, len);
    unsigned xs = atomic_load_explicit(&call->xstate, memory_order_acquire);
    if (xs & XS_CANCELLED) return RH_E_CANCELLED;
    if (xs & (XS_FINISH_REQ | XS_DONE)) return RH_E_INVALID;
    size_t klen = strlen(key);
    call_op *op = call_op_new(XOP_ADD_MD, klen + 1 + len);
    if (!op) return RH_E_NOMEM;
    op->u.md.where = where;
    op->u.md.key_len = klen;
    op->u.md.val_len = len;
    memcpy(op->data, key, klen + 1);
    memcpy(op->data + klen + 1, value, len);
    post_ordered(call, op);
    return 0;
}

static void api_call_ref(rh_call *call) { call_ref_atomic(call); }

static void api_call_unref(rh_call *call)
{
    if (on_worker(call)) {
        call_unref_local(call);
        return;
    }
    /* Off the worker: drop it here unless it may be the last one; the
     * last is released on the worker, which owns the memory. */
    int old = atomic_load_explicit(&call->refs, memory_order_relaxed);
    while (old > 1) {
        if (atomic_compare_exchange_weak_explicit(&call->refs, &old, old - 1, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return;
    }
    call_op *op = call_op_new(XOP_UNREF, 0);
    if (!op) {
        log_error("out of memory dropping a call reference; the call leaks");
        return;
    }
    op->call = call; /* carries the reference being dropped */
    worker_post(call->w, &op->base);
}

static const char *api_method(rh_call *call) { return call->path ? call->path : ""; }
static const char *api_peer(rh_call *call) { return call->peer->addr; }

static const rh_metadata *api_metadata(rh_call *call, size_t *count)
{
    if (count) *count = call->n_md;
    return call->md;
}

static const uint8_t *api_metadata_get(rh_call *call, const char *key, size_t *len)
{
    for (uint32_t i = 0; i < call->n_md; i++) {
        if (strcmp(call->md[i].key, key) == 0) {
            if (len) *len = call->md[i].value_len;
            return call->md[i].value;
        }
    }
    if (len) *len = 0;
    return NULL;
}

static int64_t api_deadline_ns(rh_call *call) { return call->deadline; }
static void *api_call_state(rh_call *call) { return call->state; }
static const char *api_peer_subject(rh_call *call) { return call->peer->subject; }

static const char *const *api_peer_sans(rh_call *call, size_t *count)
{
    if (count) *count = call->peer->n_sans;
    return (const char *const *)call->peer->sans;
}

static const char *api_principal(rh_call *call) { return call->principal; }

static int api_set_principal(rh_call *call, const char *principal)
{
    if (!principal) {
        call->principal = NULL;
        return 0;
    }
    size_t n = strlen(principal);
    char *p = call_arena_alloc(call, n + 1);
    if (!p) return RH_E_NOMEM;
    memcpy(p, principal, n + 1);
    call->principal = p;
    return 0;
}

static void *api_arena_alloc(rh_call *call, size_t size) { return call_arena_alloc(call, size); }
static ProtobufCAllocator *api_arena(rh_call *call) { return &call->pa; }

static int api_call_later(rh_call *call, uint64_t delay_ns, void (*cb)(rh_call *, void *),
                          void *arg)
{
    if (!call || !cb) return RH_E_INVALID;
    if (on_worker(call)) return call_later_local(call, delay_ns, cb, arg);
    call_op *op = call_op_new(XOP_LATER, 0);
    if (!op) return RH_E_NOMEM;
    op->u.later.delay_ns = delay_ns;
    op->u.later.cb = cb;
    op->u.later.arg = arg;
    post(call, op);
    return 0;
}

static int api_is_done(rh_call *call)
{
    return (atomic_load_explicit(&call->xstate, memory_order_acquire) & XS_ENDED) != 0;
}

static rh_plugin_ctx *api_call_plugin(rh_call *call)
{
    return call->route ? reg_instance_ctx(call->route->instance) : NULL;
}

/* --- backpressure (ABI 1.1) ------------------------------------------- */

static int api_pause_reading(rh_call *call, int paused)
{
    if (!call) return RH_E_INVALID;
    if (on_worker(call)) {
        call_pause_reading(call, paused != 0);
        return 0;
    }
    call_op *op = call_op_new(XOP_PAUSE, 0);
    if (!op) return RH_E_NOMEM;
    op->u.pause.paused = paused != 0;
    post(call, op);
    return 0;
}

static size_t api_send_queued(rh_call *call)
{
    return call ? atomic_load_explicit(&call->sendq, memory_order_relaxed) : 0;
}

static int api_notify_writable(rh_call *call, size_t low_water, void (*cb)(rh_call *, void *),
                               void *arg)
{
    if (!call || !cb) return RH_E_INVALID;
    if (on_worker(call)) return call_notify_writable_local(call, low_water, cb, arg);
    call_op *op = call_op_new(XOP_NOTIFY, 0);
    if (!op) return RH_E_NOMEM;
    op->u.notify.low_water = low_water;
    op->u.notify.cb = cb;
    op->u.notify.arg = arg;
    post(call, op);
    return 0;
}

static const char *api_protocol(rh_call *call) { return web_proto_name((web_proto)call->web_proto); }
/* --- streams and state (ABI 1.2) -------------------------------------- */

static int api_post(rh_call *call, void (*cb)(rh_call *, void *), void *arg)
{
    if (!call || !cb) return RH_E_INVALID;
    /* Always through the queue, also on the worker: cb runs from the loop,
     * in order with the call's sends. One heap block, freed when applied. */
    call_op *op = call_op_new(XOP_POST, 0);
    if (!op) return RH_E_NOMEM;
    op->u.post.cb = cb;
    op->u.post.arg = arg;
    post_ordered(call, op);
    return 0;
}

/* send_headers failed after claiming the headers: give the claim back so
 * the plugin may try again (the entries copied so far stay and leave with
 * the headers, whichever operation sends them). */
static int headers_not_sent(rh_call *call, int rv)
{
    atomic_fetch_and_explicit(&call->xstate, ~(unsigned)XS_HEADERS_REQ, memory_order_acq_rel);
    return rv;
}

static int api_send_headers(rh_call *call, const rh_metadata *md, size_t n_md)
{
    if (!call || (n_md && !md)) return RH_E_INVALID;
    for (size_t i = 0; i < n_md; i++)
        if (!md[i].key || (!md[i].value && md[i].value_len) ||
            !md_valid(md[i].key, md[i].value ? md[i].value : (const uint8_t *)"",
                      md[i].value_len))
            return RH_E_INVALID;
    unsigned prev = atomic_fetch_or_explicit(&call->xstate, XS_HEADERS_REQ, memory_order_acq_rel);
    if (prev & XS_CANCELLED) return RH_E_CANCELLED;
    if (prev & (XS_FINISH_REQ | XS_DONE | XS_HEADERS_REQ)) return RH_E_INVALID;
    for (size_t i = 0; i < n_md; i++) {
        int rv = api_add_metadata(call, RH_MD_INITIAL, md[i].key,
                                  md[i].value ? md[i].value : (const uint8_t *)"", md[i].value_len);
        if (rv < 0) return headers_not_sent(call, rv);
    }
    if (direct(call)) return call_send_headers(call);
    call_op *op = call_op_new(XOP_HEADERS, 0);
    if (!op) return headers_not_sent(call, RH_E_NOMEM);
    post_ordered(call, op);
    return 0;
}

static int api_adopt_call(rh_plugin_ctx *ctx, rh_call *call)
{
    reg_instance *to = reg_ctx_instance(ctx);
    if (!to || !call || !call->routed) return RH_E_INVALID;
    if (api_is_done(call)) return RH_E_CANCELLED;
    const reg_route *from = call->route;
    if (from->instance == to) return 0;
    /* Only a build of the same plugin, serving the same method with the
     * same per-call state, can take the call's handlers over. */
    const reg_route *route = reg_instance_route(to, call->path, call->path_len);
    if (!route || strcmp(reg_instance_name(from->instance), reg_instance_name(to)) != 0 ||
        route->method->call_state_size != from->method->call_state_size ||
        route->client_streaming != from->client_streaming ||
        route->server_streaming != from->server_streaming)
        return RH_E_INVALID;
    call_op *op = call_op_new(XOP_ADOPT, 0);
    if (!op) return RH_E_NOMEM;
    reg_instance_ref(to);
    op->u.adopt.inst = to;
    op->u.adopt.route = route;
    post_ordered(call, op);
    return 0;
}

/* --- 1.2: compression ------------------------------------------------- */

static int api_set_compression(rh_call *call, rh_compression algo)
{
    if (!call || (unsigned)algo > RH_COMPRESS_DEFLATE) return RH_E_INVALID;
    if (direct(call)) return call_set_compression(call, algo);
    unsigned xs = atomic_load_explicit(&call->xstate, memory_order_acquire);
    if (xs & XS_CANCELLED) return RH_E_CANCELLED;
    if (xs & (XS_FINISH_REQ | XS_DONE)) return RH_E_INVALID;
    /* The accepted set is fixed before any handler runs: safe to read. */
    if (algo != RH_COMPRESS_NONE && !(call->accept_enc & (1u << algo))) return RH_E_UNSUPPORTED;
    call_op *op = call_op_new(XOP_COMPRESS, 0);
    if (!op) return RH_E_NOMEM;
    op->u.compress.algo = algo;
    post_ordered(call, op);
    return 0;
}

static int api_message_compressed(rh_call *call) { return call && call->msg_compressed; }

static const rh_host_api the_api = {
    .size = sizeof(rh_host_api),
    .abi_major = RPCHOST_ABI_MAJOR,
    .abi_minor = RPCHOST_ABI_MINOR,
    .send = api_send,
    .finish = api_finish,
    .add_metadata = api_add_metadata,
    .call_ref = api_call_ref,
    .call_unref = api_call_unref,
    .method = api_method,
    .peer = api_peer,
    .metadata = api_metadata,
    .metadata_get = api_metadata_get,
    .deadline_ns = api_deadline_ns,
    .call_state = api_call_state,
    .peer_subject = api_peer_subject,
    .peer_sans = api_peer_sans,
    .principal = api_principal,
    .set_principal = api_set_principal,
    .arena_alloc = api_arena_alloc,
    .arena = api_arena,
    .call_later = api_call_later,
    .is_done = api_is_done,
    .config_get = plugin_ctx_config_get,
    .log = plugin_ctx_log,
    .call_plugin = api_call_plugin,
    .pause_reading = api_pause_reading,
    .send_queued = api_send_queued,
    .notify_writable = api_notify_writable,
    .protocol = api_protocol,
    .post = api_post,
    .send_headers = api_send_headers,
    .adopt_call = api_adopt_call,
    .set_compression = api_set_compression,
    .send_ex = api_send_ex,
    .message_compressed = api_message_compressed,
    /* 1.2: metrics */
    .metric_new = mx_plugin_metric_new,
    .metric_series = mx_plugin_series,
    .metric_add = mx_plugin_add,
    .metric_set = mx_plugin_set,
    .metric_gauge_add = mx_plugin_gauge_add,
    .metric_observe = mx_plugin_observe,
    .set_serving = plugin_ctx_set_serving,
};

const rh_host_api *host_api(void) { return &the_api; }
