/*
 * rpchost plugin ABI: the only header a plugin includes.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `rpchost_plugin`, returning a const descriptor (see rh_plugin_descriptor).
 * Plugins never link against host symbols: everything they may ask of the
 * host is in the function table (rh_host_api) handed over at init.
 *
 * Versioning: RPCHOST_ABI_MAJOR changes break the ABI; the host refuses a
 * plugin of another major. RPCHOST_ABI_MINOR grows when structs grow at the
 * end; the host accepts any minor up to its own. rh_host_api.size tells a
 * plugin how much of the table a (newer or older) host filled in.
 *
 * The same identity block (rh_abi_block) is placed in an ELF note section
 * (".note.rpchost") by RPCHOST_PLUGIN_DEFINE, so the host checks the
 * version before dlopen() runs any of the plugin's code.
 */
#ifndef RPCHOST_PLUGIN_H
#define RPCHOST_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RPCHOST_ABI_MAJOR 1
#define RPCHOST_ABI_MINOR 2

#define RH_PLUGIN_MAGIC 0x48435052u /* "RPCH" little-endian */
#define RH_NOTE_NAME "rpchost"      /* ELF note owner, 8 bytes with NUL */
#define RH_NOTE_TYPE 0x52480001u
#define RH_NAME_MAX 64
#define RH_VERSION_MAX 32

/* gRPC status codes (numbering from grpc/grpc doc/statuscodes.md). */
typedef enum rh_status {
    RH_OK = 0,
    RH_CANCELLED = 1,
    RH_UNKNOWN = 2,
    RH_INVALID_ARGUMENT = 3,
    RH_DEADLINE_EXCEEDED = 4,
    RH_NOT_FOUND = 5,
    RH_ALREADY_EXISTS = 6,
    RH_PERMISSION_DENIED = 7,
    RH_RESOURCE_EXHAUSTED = 8,
    RH_FAILED_PRECONDITION = 9,
    RH_ABORTED = 10,
    RH_OUT_OF_RANGE = 11,
    RH_UNIMPLEMENTED = 12,
    RH_INTERNAL = 13,
    RH_UNAVAILABLE = 14,
    RH_DATA_LOSS = 15,
    RH_UNAUTHENTICATED = 16
} rh_status;

typedef enum rh_log_level {
    RH_LOG_ERROR = 0,
    RH_LOG_WARN = 1,
    RH_LOG_INFO = 2,
    RH_LOG_DEBUG = 3
} rh_log_level;

/* Return codes of host API functions: 0 or a negative errno-style value. */
#define RH_E_CANCELLED (-125) /* -ECANCELED: call already ended; harmless */
#define RH_E_INVALID (-22)    /* -EINVAL: misuse (e.g. send after finish) */
#define RH_E_NOMEM (-12)      /* -ENOMEM */
#define RH_E_UNSUPPORTED (-95) /* -EOPNOTSUPP: the peer does not support it (ABI 1.2) */

/* Opaque handles owned by the host. */
typedef struct rh_call rh_call;             /* one RPC */
typedef struct rh_plugin_ctx rh_plugin_ctx; /* one loaded plugin instance */

/* One metadata entry. Keys are lowercase ASCII. For keys ending in "-bin"
 * the value is the decoded binary; otherwise printable ASCII. The value is
 * not NUL-terminated in general; value_len is authoritative. */
typedef struct rh_metadata {
    const char *key;
    const uint8_t *value;
    size_t value_len;
} rh_metadata;

/* Which header block a metadata entry goes to. */
typedef enum rh_md_where { RH_MD_INITIAL = 0, RH_MD_TRAILING = 1 } rh_md_where;

/* Metrics (ABI 1.2): a family (name, help, type, label names) and one
 * labelled series of it. Both are owned by the host and live until the
 * process exits. */
typedef struct rh_metric rh_metric;
typedef struct rh_series rh_series;
typedef enum rh_metric_type {
    RH_METRIC_COUNTER = 0,  /* only goes up; name must end in "_total" */
    RH_METRIC_GAUGE = 1,    /* set or moved up and down */
    RH_METRIC_HISTOGRAM = 2 /* observations counted in buckets, with sum */
} rh_metric_type;

/* What an interceptor sees when a call ends. */
typedef struct rh_call_stats {
    rh_status status;
    const char *message;     /* grpc-message sent, "" if none */
    uint64_t duration_ns;    /* from headers received to status sent */
    uint64_t bytes_in;       /* gRPC payload bytes received (with prefixes) */
    uint64_t bytes_out;      /* gRPC payload bytes sent (with prefixes) */
    uint64_t messages_in;
    uint64_t messages_out;
    /* ABI 1.2: the same byte counts before compression: requests after
     * inflating, responses before compressing (with prefixes). Equal to
     * bytes_in / bytes_out when nothing was compressed. A plugin built
     * for 1.0/1.1 never reads these; a 1.2 plugin only loads in a 1.2+
     * host, which always fills them. */
    uint64_t bytes_in_uncompressed;
    uint64_t bytes_out_uncompressed;
} rh_call_stats;

/* Message compression algorithms (ABI 1.2), as named in grpc-encoding. */
typedef enum rh_compression {
    RH_COMPRESS_NONE = 0,    /* identity */
    RH_COMPRESS_GZIP = 1,
    RH_COMPRESS_DEFLATE = 2
} rh_compression;

/* Flags of send_ex (ABI 1.2). */
#define RH_SEND_NO_COMPRESS 1u /* this message goes uncompressed */

/* ----------------------------------------------------------------------
 * The host function table, handed to a plugin's init. Valid until fini
 * returns. Fields are only ever appended; check `size` before using a field
 * added after minor 0 (offsetof(rh_host_api, field) < api->size).
 *
 * Threading: every rh_call function may be called from any thread. When
 * called off the call's worker thread, the host queues the operation to
 * that worker and wakes it.
 *
 * Order: the sends, send_headers, posts and finish of one call leave in
 * the order they were made, whichever threads made them (for calls made
 * at the same time on two threads, in the order the host took them). A
 * send made on the call's worker while operations of that call from
 * other threads are still queued is queued behind them (and then costs
 * what a send from another thread costs: one copy of the message).
 *
 * Reentrancy: send, send_headers, add_metadata, finish, post,
 * call_later, notify_writable and pause_reading never run a handler
 * callback (on_message, on_half_close, on_cancel) inline, of this call
 * or another. When a send ends the call (a message over the send limit,
 * or [rpchost] max_send_queue), send returns RH_E_CANCELLED or
 * RH_E_INVALID and on_cancel runs later, from the worker's loop.
 * finish on the worker runs the interceptors' on_end inline (interceptor
 * code, never the handler's).
 *
 * Memory: none of these functions allocates from the call arena except
 * add_metadata / send_headers (the copied entries), set_principal and
 * arena_alloc itself: a long stream does not grow its call's arena by
 * sending, posting, waiting or timing. Operations queued from another
 * thread (and sends queued behind them) take one heap block each, freed
 * when the worker applied them.
 * -------------------------------------------------------------------- */
typedef struct rh_host_api {
    size_t size;        /* sizeof(rh_host_api) as the host knows it */
    uint16_t abi_major;
    uint16_t abi_minor;

    /* --- answering a call ---------------------------------------------
     * send: serialises msg at once (the caller keeps ownership of msg and
     * may free it as soon as send returns) and queues one response
     * message. finish: ends the call with a status and an optional
     * message (copied; NULL = none). Exactly one finish per call takes
     * effect; after the call was cancelled both return RH_E_CANCELLED and
     * do nothing else. */
    /* Memory: on the worker, send serialises straight into the call's
     * output queue (held until the client's window takes it; kept from
     * growing by send_queued / notify_writable); queued (another thread,
     * or behind queued operations) it takes one heap block of the message
     * size until the worker applied it. finish copies the message into
     * the call arena. */
    int (*send)(rh_call *call, const ProtobufCMessage *msg);
    int (*finish)(rh_call *call, rh_status code, const char *message);

    /* Response metadata. Initial metadata must be added before the first
     * send (or finish, which then sends it with the headers). Trailing
     * metadata must be added before finish. Key and value are copied into
     * the call arena (they stay until the call is freed). */
    int (*add_metadata)(rh_call *call, rh_md_where where, const char *key,
                        const void *value, size_t value_len);

    /* --- keeping a call alive beyond a callback ------------------------
     * A handler that answers later (from another thread or a timer) takes
     * a reference before returning and drops it after its last use of the
     * call (typically right after finish). The host owns one reference
     * while the stream is open. */
    void (*call_ref)(rh_call *call);
    void (*call_unref)(rh_call *call);

    /* --- what the call is ---------------------------------------------
     * All returned pointers are owned by the host and valid while the
     * caller holds a reference (or is inside a callback of that call). */
    const char *(*method)(rh_call *call);     /* "/pkg.Service/Method" */
    const char *(*peer)(rh_call *call);       /* "ipv4:1.2.3.4:5" / "ipv6:[::1]:5" */
    const rh_metadata *(*metadata)(rh_call *call, size_t *count);
    /* first value of a key, NULL if absent; *len gets its length */
    const uint8_t *(*metadata_get)(rh_call *call, const char *key, size_t *len);
    /* Absolute deadline on CLOCK_MONOTONIC in ns; 0 = no deadline. */
    int64_t (*deadline_ns)(rh_call *call);
    /* Per-call plugin state, call_state_size bytes zeroed by the host. */
    void *(*call_state)(rh_call *call);
    /* The TLS client certificate (mTLS): subject one-line string and the
     * subjectAltNames (DNS, IP, URI, email, as text). NULL / 0 if none. */
    const char *(*peer_subject)(rh_call *call);
    const char *const *(*peer_sans)(rh_call *call, size_t *count);
    /* Principal attached by an interceptor, NULL if none. set copies it
     * into the call arena. */
    const char *(*principal)(rh_call *call);
    int (*set_principal)(rh_call *call, const char *principal);

    /* --- memory -------------------------------------------------------
     * The call arena: freed in one go when the call's last reference is
     * dropped. Use it for response messages built in a handler; not for
     * each message of a long stream (it only grows until the call ends:
     * use the stack or malloc/free there, send copies at once). */
    void *(*arena_alloc)(rh_call *call, size_t size);
    ProtobufCAllocator *(*arena)(rh_call *call);

    /* --- timers -------------------------------------------------------
     * Run cb(call, arg) on the call's worker after delay_ns. The timer
     * holds a call reference, so cb always runs exactly once, even if the
     * call was cancelled meanwhile (then send/finish return
     * RH_E_CANCELLED). Never runs cb inside call_later. Memory: one heap
     * block per pending timer, freed when cb ran (before 1.2 it stayed in
     * the call arena until the call ended). */
    int (*call_later)(rh_call *call, uint64_t delay_ns,
                      void (*cb)(rh_call *call, void *arg), void *arg);
    /* Nonzero once the call was cancelled or finished. */
    int (*is_done)(rh_call *call);

    /* --- the plugin instance -----------------------------------------
     * Configuration: keys of the plugin's [plugin.NAME] config section.
     * Returns NULL if absent. Valid until fini returns. */
    const char *(*config_get)(rh_plugin_ctx *ctx, const char *key);
    void (*log)(rh_plugin_ctx *ctx, rh_log_level level, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
    /* The plugin ctx the call runs in (for logging from handlers). */
    rh_plugin_ctx *(*call_plugin)(rh_call *call);

    /* --- backpressure (ABI 1.1) ---------------------------------------
     * Check offsetof(rh_host_api, pause_reading) < api->size before use:
     * a 1.0 host does not have these. docs/plugin-guide.md, "Backpressure".
     *
     * pause_reading: paused = 1 stops delivering on_message (and
     * on_half_close) for the call; request bytes that arrive meanwhile
     * are held by the host without returning their HTTP/2 flow-control
     * window, so the client stops sending once the stream's window is
     * used up (the host holds at most [rpchost] stream_window bytes per
     * paused call). paused = 0 delivers what was held, from the worker's
     * loop (never from inside pause_reading), and reopens the window.
     * Idempotent; from any thread. A pause made on the call's worker
     * takes effect at once, even for the rest of the DATA being delivered
     * (the next on_message does not come); from another thread it takes
     * effect when the worker applies it, so messages may still arrive
     * until then. Operations of different threads reach the worker in
     * the order they were posted: a resume posted by another thread while
     * the worker's callback pauses is applied after that pause. Returns 0
     * (also for a call that already ended: harmless), RH_E_NOMEM when a
     * call from another thread cannot be posted. */
    int (*pause_reading)(rh_call *call, int paused);
    /* Response bytes of this call queued and not yet handed to HTTP/2
     * framing (they wait for the client's flow-control window), including
     * sends posted from other threads and not yet applied. Any thread. */
    size_t (*send_queued)(rh_call *call);
    /* One-shot: cb(call, arg) runs on the call's worker once send_queued
     * is <= low_water, or once the call ended (then is_done(call) is
     * true and sends are pointless). Runs from the worker's loop, never
     * inside notify_writable, also when the condition already holds. The
     * host holds a call reference until cb returned (as with call_later),
     * so cb runs exactly once. Any thread; several may be pending.
     * Pattern: send while send_queued(call) <= HIGH; above it, stop and
     * notify_writable(call, LOW, resume, arg). [rpchost] max_send_queue
     * stays a per-connection last resort for plugins that do not pace.
     * Returns 0, RH_E_INVALID (no cb) or RH_E_NOMEM (cb will not run).
     * Memory: one heap block per pending waiter, freed when cb ran. */
    int (*notify_writable)(rh_call *call, size_t low_water,
                           void (*cb)(rh_call *call, void *arg), void *arg);

    /* 1.2: streams and state ------------------------------------------
     * Check offsetof(rh_host_api, post) < api->size before use.
     * docs/plugin-guide.md, "Long-lived streams and state across replace".
     *
     * post: runs cb(call, arg) once on the call's worker, from its loop
     * (never inside post, also when called on that worker), in order with
     * the call's sends, send_headers and finish: behind every one of them
     * made before post returned, ahead of every one made after. The host
     * holds a call reference until cb returned, so cb runs exactly once,
     * also for a call that ended meanwhile (is_done(call) is then true).
     * Cost: one heap allocation of a few dozen bytes, freed when cb
     * returned; nothing stays with the call, however often it is used.
     * Any thread. Returns 0, RH_E_INVALID (no cb) or RH_E_NOMEM (cb will
     * not run). Once the server has stopped (a plugin answering from its
     * fini), cb runs at once, as call_later's does. */
    int (*post)(rh_call *call, void (*cb)(rh_call *call, void *arg), void *arg);
    /* send_headers: adds md[0..n_md) (may be NULL / 0) to the initial
     * metadata and sends the response headers now, without a message, so
     * a client learns that the call was accepted before the first
     * response (a subscriber knows it is registered). Keys and values are
     * checked and copied as add_metadata does. Ordered with sends like
     * them. Returns 0; RH_E_INVALID for a bad entry, a second
     * send_headers, or after finish; RH_E_CANCELLED after the call was
     * cancelled; RH_E_NOMEM (nothing sent; send_headers may be called
     * again, and the entries copied before the failure stay in the
     * initial metadata). When a send or finish already sent the
     * headers, it does nothing (and refuses md entries: RH_E_INVALID).
     * Any thread. Memory: the entries are copied into the call arena
     * (once per call). */
    int (*send_headers)(rh_call *call, const rh_metadata *md, size_t n_md);
    /* adopt_call: a running call of an earlier build of this plugin
     * (being replaced) moves to the instance ctx: from then on its
     * handler callbacks (on_message, on_half_close, on_cancel) are those
     * of ctx's build, it counts as ctx's call, and the old instance's
     * drain timeout no longer cancels it. So a long stream keeps going
     * across a replace. Typically called from import_state for the calls
     * the shared state lists. The call's per-call state (call_state) and
     * the interceptor chain it started with stay as they are; the old
     * image stays mapped (its fini deferred) until the adopted calls end,
     * since callbacks it registered (call_later, notify_writable, post)
     * may still be pending. Requires the same plugin name, the same
     * method (path, streaming kinds) and the same call_state_size:
     * RH_E_INVALID otherwise. Returns 0 when the move is queued (it takes
     * effect in order with the call's sends: a callback of the old build
     * may still run until the worker applied it), RH_E_CANCELLED for an
     * ended call, RH_E_NOMEM. Any thread; one adopt_call per call at a
     * time. */
    int (*adopt_call)(rh_plugin_ctx *ctx, rh_call *call);
    /* 1.2: compression ---------------------------------------------------
     * Check offsetof(rh_host_api, set_compression) < api->size before use:
     * a 1.0/1.1 host has none of these. docs/plugin-guide.md, "Compression".
     * Requests are always inflated by the host before on_message; these
     * only concern responses, and what a request looked like on the wire.
     *
     * set_compression: the algorithm for this call's responses, overriding
     * [rpchost] compression. GZIP / DEFLATE: every later response message
     * is compressed (whatever its size; send_ex can exempt one), if the
     * client listed the algorithm in grpc-accept-encoding; else returns
     * RH_E_UNSUPPORTED and responses stay as they were. NONE: no response
     * of the call is compressed. Must come before the response headers
     * leave (the first send, or add_metadata's headers): afterwards
     * RH_E_INVALID. Any thread; from another thread the check against the
     * headers happens when the worker applies it (a late one is ignored).
     * Returns 0, RH_E_INVALID (bad algo, too late), RH_E_UNSUPPORTED,
     * RH_E_CANCELLED, RH_E_NOMEM (posting failed). */
    int (*set_compression)(rh_call *call, rh_compression algo);
    /* send with flags (RH_SEND_NO_COMPRESS); otherwise exactly send.
     * Unknown flag bits: RH_E_INVALID. Any thread. */
    int (*send_ex)(rh_call *call, const ProtobufCMessage *msg, uint32_t flags);
    /* 1 if the request message most recently passed to on_message (for a
     * unary call: its one request) arrived compressed, else 0. Call it
     * from on_message on the worker (the flag moves with the next
     * message). */
    int (*message_compressed)(rh_call *call);

    /* --- 1.2: metrics ---------------------------------------------------
     * Check offsetof(rh_host_api, metric_new) < api->size before use.
     * Series a plugin registers are exposed with the host's on the
     * metrics listener (docs/metrics.md, "Plugin series").
     *
     * metric_new: registers a family; call it from init (or reload), on
     * the control thread. name: [a-zA-Z_:][a-zA-Z0-9_:]*, not starting
     * with grpc_, rpchost_ or process_; a counter's ends in "_total".
     * help: one line of UTF-8. labels: comma-separated label names ("" or
     * NULL for none; at most 8). buckets: a histogram's upper bounds, increasing
     * (NULL: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10; at most 32), ignored
     * for other types. All strings are copied. Returns NULL when metrics
     * are off ([rpchost] metrics_listen unset) or on error (logged: bad
     * name, a family of that name owned by another plugin or the host, or
     * registered before with another type, labels or buckets). Every
     * other metric function takes NULL and then does nothing, so a plugin
     * needs no check of its own.
     *
     * Hot replace: families belong to the plugin's name, not to the
     * instance. A new instance registering the same family (same type,
     * labels and buckets) gets the same family back, and metric_series
     * the same series: counters and histograms continue from where the
     * old instance left them (both instances add to them while the old
     * one drains); gauges keep their last value until set. Series are
     * never removed, also after the plugin is unloaded.
     *
     * metric_series: the series of one set of label values (an array of
     * as many strings as the family has labels; copied), created the
     * first time. Any thread; takes a lock and may allocate the first
     * time, so resolve the series a plugin updates often once (at init)
     * and keep the handle. NULL past 20000 series per family, for values
     * over 255 bytes or not UTF-8, or out of memory.
     *
     * Updates: any thread, never blocking, no allocation. From a worker
     * thread (handlers, interceptors, timers) they add to that worker's
     * own shard with plain stores; from other threads to a shared shard
     * with one atomic add; scrapes sum the shards.
     *   metric_add: counter += n.
     *   metric_set / metric_gauge_add: gauge = v / gauge += d (one atomic
     *     word per gauge: "set" has no per-shard meaning).
     *   metric_observe: histogram: counts v in its bucket, adds it to the
     *     sum (NaN is ignored). */
    rh_metric *(*metric_new)(rh_plugin_ctx *ctx, rh_metric_type type, const char *name,
                             const char *help, const char *labels, const double *buckets,
                             size_t n_buckets);
    rh_series *(*metric_series)(rh_metric *metric, const char *const *label_values);
    void (*metric_add)(rh_series *series, uint64_t n);
    void (*metric_set)(rh_series *series, double value);
    void (*metric_gauge_add)(rh_series *series, double delta);
    void (*metric_observe)(rh_series *series, double value);
    /* --- 1.2: health ----------------------------------------------------
     * Check offsetof(rh_host_api, set_serving) < api->size before use: a
     * 1.0 or 1.1 host does not have it.
     *
     * set_serving: serving = 0 makes grpc.health.v1.Health answer
     * NOT_SERVING for every service of this plugin instance (Check, and a
     * message to each Watch stream); serving = 1 makes it SERVING again.
     * An instance starts SERVING. It does not change routing: calls still
     * reach the plugin, which answers them itself (e.g. UNAVAILABLE while
     * its database is down); health is what load balancers and rollout
     * tools look at. Any thread, also from inside init (the status then
     * holds from the instance's publication on); idempotent; never blocks
     * (an atomic store and, on a change, one job posted to the host's
     * control thread, which tells the Watch streams). Nothing is
     * allocated that the plugin owns. Returns 0, RH_E_INVALID for a NULL
     * ctx, RH_E_NOMEM when the Watch streams cannot be told (Check still
     * answers the new status). */
    int (*set_serving)(rh_plugin_ctx *ctx, int serving);

    /* --- 1.2: web -------------------------------------------------------
     * Check offsetof(rh_host_api, protocol) < api->size before use: older
     * hosts do not have it (and serve gRPC only).
     * protocol: what carried the call to the host: "grpc" (gRPC over
     * HTTP/2), "grpc-web", "connect" (either over HTTP/1.1 or HTTP/2), or
     * "http-json" (the JSON gateway's HTTP rules; docs/web.md). A static
     * string, valid for the life of the process. Any thread, while the
     * caller holds the call (inside a callback or with call_ref); never
     * blocks, allocates nothing. */
    const char *(*protocol)(rh_call *call);
} rh_host_api;

/* ----------------------------------------------------------------------
 * Services
 * -------------------------------------------------------------------- */

/* Handlers of one method. All run on the call's worker thread, one at a
 * time per call, and must not block. The order a call sees:
 *
 *   on_message*  [on_half_close]  [on_cancel]
 *
 * - on_message for each request message (for a unary request: once, when
 *   the client ended its stream);
 * - on_half_close at most once, when the client is done sending, after
 *   the last on_message; it is not the end of the call: a streaming
 *   response goes on until finish;
 * - on_cancel at most once, only if the call ends other than by the
 *   handler's finish (client reset or disconnect, deadline, drain
 *   timeout, a send over a limit), also after on_half_close (a server
 *   stream whose client goes away gets on_half_close, then on_cancel).
 *   After on_cancel nothing else of the call runs, and after the handler's
 *   finish on_cancel never comes. So: free per-call resources in
 *   on_cancel and where you call finish.
 *
 * Callbacks you registered yourself (call_later, notify_writable, post)
 * still run after on_cancel, exactly once each: check is_done(call).
 * A request message passed to on_message is owned by the host and stays
 * valid until the next on_message of the same call or the end of the
 * call (for a unary request: the whole call). */
typedef struct rh_method {
    const char *name; /* must equal the descriptor's method name */
    size_t call_state_size;
    void (*on_message)(rh_call *call, const ProtobufCMessage *msg);
    void (*on_half_close)(rh_call *call); /* may be NULL for unary */
    void (*on_cancel)(rh_call *call);     /* may be NULL */
} rh_method;

typedef struct rh_service {
    const ProtobufCServiceDescriptor *descriptor;
    const rh_method *methods; /* descriptor->n_methods entries, same order */
} rh_service;

/* ----------------------------------------------------------------------
 * Interceptors
 * -------------------------------------------------------------------- */
typedef struct rh_interceptor {
    const char *name; /* short name; the host calls it "<plugin>.<name>" */
    /* At call start, before any handler. Sees method, peer, TLS peer,
     * metadata; may set_principal. Return RH_OK to continue, or a status to
     * reject the call: *message may then point to a static string or a
     * string in the call arena. */
    rh_status (*on_start)(rh_call *call, const char **message);
    /* At call end (status sent or call cancelled). May be NULL. */
    void (*on_end)(rh_call *call, const rh_call_stats *stats);
} rh_interceptor;

/* ----------------------------------------------------------------------
 * The plugin descriptor
 * -------------------------------------------------------------------- */
typedef struct rh_abi_block {
    uint32_t magic;            /* RH_PLUGIN_MAGIC */
    uint16_t abi_major;        /* RPCHOST_ABI_MAJOR the plugin was built for */
    uint16_t abi_minor;        /* RPCHOST_ABI_MINOR the plugin was built for */
    uint32_t descriptor_size;  /* sizeof(rh_plugin_descriptor) */
    uint32_t reserved;
    char name[RH_NAME_MAX];    /* plugin name, NUL-terminated */
    char version[RH_VERSION_MAX];
} rh_abi_block;

/* Why retire is called (ABI 1.2). */
typedef enum rh_retire_reason {
    RH_RETIRE_REPLACED = 1, /* a new build of the plugin serves new calls */
    RH_RETIRE_REMOVED = 2   /* the plugin was unloaded: new calls get UNIMPLEMENTED */
} rh_retire_reason;

typedef struct rh_plugin_descriptor {
    /* Filled by RPCHOST_PLUGIN from its NAME and VERSION (leave it out of
     * the initialiser), or by RH_ABI_BLOCK_INIT with RPCHOST_PLUGIN_NOTE
     * (the 1.0 / 1.1 way, name and version written twice). */
    rh_abi_block abi;
    const rh_service *services;
    size_t n_services;
    const rh_interceptor *interceptors;
    size_t n_interceptors;
    /* Serialized google.protobuf.FileDescriptorSet of the plugin's protos
     * with all imports (embedded by rpchost_add_plugin). */
    const uint8_t *descriptor_set;
    size_t descriptor_set_len;
    /* init: return 0, or a negative errno-style code after logging why.
     * fini: stop everything init started (threads, timers); called only
     * after the last call of this instance ended. Both may be NULL. */
    int (*init)(const rh_host_api *api, rh_plugin_ctx *ctx);
    void (*fini)(rh_plugin_ctx *ctx);
    /* reload: the operator asked for a reload (SIGHUP): re-read the
     * configuration (config_get returns the new values) and reopen files
     * (log rotation). Runs on the host's control thread. May be NULL. */
    void (*reload)(rh_plugin_ctx *ctx);

    /* 1.2: streams and state ------------------------------------------
     * All three may be NULL and run on the host's control thread, one
     * plugin instance at a time (never concurrently with init, fini,
     * reload or another of these of any plugin). A 1.0 / 1.1 plugin has
     * none of them. docs/plugin-guide.md, "Long-lived streams and state
     * across replace".
     *
     * retire: the instance was replaced or removed. From now on new calls
     * go to the successor (or get UNIMPLEMENTED); calls already running
     * stay with this instance until they end, or until the drain timeout
     * ([rpchost] drain_timeout_ms, 30 s) cancels them with UNAVAILABLE.
     * End or hand over long-lived streams here (finish works from this
     * thread) instead of letting them fall silent. Called once, right
     * after the switch; not called at server shutdown. Must not block. */
    void (*retire)(rh_plugin_ctx *ctx, rh_retire_reason why);
    /* State across replace. When a new build replaces this instance, the
     * host calls, after the new instance's init and before it serves any
     * call: state = old.export_state(old_ctx, &version), then, if state
     * is not NULL, new.import_state(new_ctx, state, version).
     *
     * The state is SHARED, not moved: the old instance keeps using it for
     * the calls it still runs, so nothing written in between is lost;
     * both instances use it at the same time until the old one's fini.
     * Therefore it must be memory of the process heap that references no
     * code or static data of the old image (no function pointers, string
     * literals, vtables: the old image is unmapped after its fini), guard
     * itself (a mutex inside it) and count its users (a reference count
     * inside it: import_state takes one when it accepts, each fini drops
     * one, the last frees it).
     *
     * version: the layout of the state, chosen by the plugin; import_state
     * checks it and returns 0 (taken: it now holds a reference) or a
     * negative errno after logging why (e.g. a layout it does not know);
     * the instance then starts empty, and the host logs that too. */
    void *(*export_state)(rh_plugin_ctx *ctx, uint32_t *state_version);
    int (*import_state)(rh_plugin_ctx *ctx, void *state, uint32_t state_version);
} rh_plugin_descriptor;

typedef const rh_plugin_descriptor *(*rh_plugin_entry_fn)(void);
#define RPCHOST_PLUGIN_SYMBOL "rpchost_plugin"

/* The ELF note the host reads before dlopen. */
typedef struct rh_plugin_note {
    uint32_t namesz; /* sizeof(RH_NOTE_NAME) == 8 */
    uint32_t descsz; /* sizeof(rh_abi_block) */
    uint32_t type;   /* RH_NOTE_TYPE */
    char owner[8];   /* RH_NOTE_NAME */
    rh_abi_block desc;
} rh_plugin_note;

#define RH_ABI_BLOCK_INIT(NAME, VERSION)                                      \
    {RH_PLUGIN_MAGIC, RPCHOST_ABI_MAJOR, RPCHOST_ABI_MINOR,                   \
     (uint32_t)sizeof(rh_plugin_descriptor), 0, NAME, VERSION}

/* Declares the ELF note and the exported entry point of a plugin.
 *   RPCHOST_PLUGIN_DEFINE(my_descriptor);
 * where my_descriptor is a `static const rh_plugin_descriptor` whose .abi
 * was initialised with RH_ABI_BLOCK_INIT(NAME, VERSION); NAME and VERSION
 * must be string literals and are repeated in the note by
 * RPCHOST_PLUGIN_NOTE(NAME, VERSION). */
#define RPCHOST_PLUGIN_NOTE(NAME, VERSION)                                    \
    __attribute__((section(".note.rpchost"), used, aligned(4)))              \
    static const rh_plugin_note rh_plugin_note_ = {                           \
        sizeof(RH_NOTE_NAME), sizeof(rh_abi_block), RH_NOTE_TYPE,             \
        RH_NOTE_NAME, RH_ABI_BLOCK_INIT(NAME, VERSION)}

#define RPCHOST_PLUGIN_DEFINE(DESCRIPTOR)                                     \
    __attribute__((visibility("default")))                                    \
    const rh_plugin_descriptor *rpchost_plugin(void) { return &(DESCRIPTOR); }

/* ABI 1.2: name and version written once.
 *   static const rh_plugin_descriptor my_descriptor = {.services = ...};
 *   RPCHOST_PLUGIN("greeter", "1.2.0", my_descriptor);
 * The note carries the identity; the descriptor's .abi stays zero and the
 * host takes the identity from the note (a host older than 1.2 refuses
 * such a plugin anyway: its minor is too new). */
#define RPCHOST_PLUGIN(NAME, VERSION, DESCRIPTOR)                             \
    RPCHOST_PLUGIN_NOTE(NAME, VERSION);                                       \
    RPCHOST_PLUGIN_DEFINE(DESCRIPTOR)

/* The embedded descriptor set: rpchost_add_plugin() generates the header
 * "rpchost_descriptor_set.h" for each plugin target, defining
 *   static const uint8_t rh_descriptor_set[] = {...};
 * Include it in exactly one source and initialise the descriptor with
 *   .descriptor_set = rh_descriptor_set,
 *   .descriptor_set_len = sizeof rh_descriptor_set, */

#ifdef __cplusplus
}
#endif
#endif /* RPCHOST_PLUGIN_H */
