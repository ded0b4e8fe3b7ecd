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

/* What an interceptor sees when a call ends. */
typedef struct rh_call_stats {
    rh_status status;
    const char *message;     /* grpc-message sent, "" if none */
    uint64_t duration_ns;    /* from headers received to status sent */
    uint64_t bytes_in;       /* gRPC payload bytes received (with prefixes) */
    uint64_t bytes_out;      /* gRPC payload bytes sent (with prefixes) */
    uint64_t messages_in;
    uint64_t messages_out;
} rh_call_stats;

/* ----------------------------------------------------------------------
 * The host function table, handed to a plugin's init. Valid until fini
 * returns. Fields are only ever appended; check `size` before using a field
 * added after minor 0 (offsetof(rh_host_api, field) < api->size).
 *
 * Threading: every rh_call function may be called from any thread. When
 * called off the call's worker thread, the host queues the operation to
 * that worker and wakes it; order between operations of one call from one
 * thread is kept.
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
    int (*send)(rh_call *call, const ProtobufCMessage *msg);
    int (*finish)(rh_call *call, rh_status code, const char *message);

    /* Response metadata. Initial metadata must be added before the first
     * send (or finish, which then sends it with the headers). Trailing
     * metadata must be added before finish. Key and value are copied. */
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
    /* Principal attached by an interceptor, NULL if none. set copies. */
    const char *(*principal)(rh_call *call);
    int (*set_principal)(rh_call *call, const char *principal);

    /* --- memory -------------------------------------------------------
     * The call arena: freed in one go when the call's last reference is
     * dropped. Use it for response messages built in a handler. */
    void *(*arena_alloc)(rh_call *call, size_t size);
    ProtobufCAllocator *(*arena)(rh_call *call);

    /* --- timers -------------------------------------------------------
     * Run cb(call, arg) on the call's worker after delay_ns. The timer
     * holds a call reference, so cb always runs exactly once, even if the
     * call was cancelled meanwhile (then send/finish return
     * RH_E_CANCELLED). */
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
     * Returns 0, RH_E_INVALID (no cb) or RH_E_NOMEM (cb will not run). */
    int (*notify_writable)(rh_call *call, size_t low_water,
                           void (*cb)(rh_call *call, void *arg), void *arg);

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

/* Handlers of one method. All run on the call's worker thread and must not
 * block. Every call gets: zero or more on_message, then either
 * on_half_close (client done sending) or on_cancel (client reset, deadline,
 * drain timeout, connection lost). After on_cancel no other callback of
 * the call runs. A request message passed to on_message is owned by the
 * host and stays valid until the next on_message of the same call or the
 * end of the call (for a unary request: the whole call). */
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

typedef struct rh_plugin_descriptor {
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
