/* A worker: one thread, one epoll loop, its own SO_REUSEPORT listener per
 * listen address, its connections (a connection lives on one worker for
 * life), its timers and a queue other threads post operations to (send /
 * finish / unref of calls it owns, shutdown, instance cancellation),
 * woken through an eventfd. Nothing here is shared between workers, so
 * the hot path takes no lock. */
#ifndef RPCHOST_HOST_WORKER_H
#define RPCHOST_HOST_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "registry/registry.h"
#include "config/settings.h"
#include "core/timer.h"

typedef struct conn conn;
typedef struct worker worker;

typedef enum ev_kind { EV_LISTENER, EV_CONN, EV_WAKE } ev_kind;

/* First member of everything registered with epoll. */
typedef struct ev_handle {
    ev_kind kind;
} ev_handle;

typedef struct listener {
    ev_handle ev;
    int fd;
    bool is_unix;
} listener;

/* An operation posted to a worker from another thread. */
typedef enum xop_kind {
    XOP_SEND,        /* call: queue packed bytes */
    XOP_FINISH,      /* call: status + message */
    XOP_ADD_MD,      /* call: metadata */
    XOP_UNREF,       /* call: drop a reference */
    XOP_LATER,       /* call: arm a call_later timer */
    XOP_PAUSE,       /* call: pause_reading */
    XOP_NOTIFY,      /* call: notify_writable */
    XOP_SHUTDOWN,    /* worker: graceful stop */
    XOP_CANCEL_INST, /* worker: cancel every call of an instance */
    XOP_REFRESH,     /* worker: the registry changed */
} xop_kind;

typedef struct xop {
    struct xop *next;
    xop_kind kind;
    struct rh_call *call;
    union {
        struct {
            size_t len; /* bytes (prefix included) follow in data */
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
            void (*cb)(struct rh_call *call, void *arg);
            void *arg;
        } later;
        struct {
            size_t low_water;
            void (*cb)(struct rh_call *call, void *arg);
            void *arg;
        } notify;
        struct {
            bool paused;
        } pause;
        struct {
            int64_t drain_deadline;
        } shutdown;
        struct {
            reg_instance *inst;
            rh_status code; /* message follows in data */
        } cancel;
    } u;
    _Alignas(16) uint8_t data[];
} xop;

struct worker {
    int id;
    pthread_t thread;
    bool started;
    const rh_settings *s;
    int epfd;
    int evfd;
    ev_handle wake_ev;
    listener *listeners;
    size_t n_listeners;
    timer_heap timers;
    _Atomic(xop *) inbox; /* LIFO of posted ops; drained and reversed */
    /* Set when the loop has ended: from then on worker_post applies ops on
     * the posting thread under late_lock (recursive: an op may post), so a
     * plugin may still answer and release the calls it holds (from its
     * fini, say) until server_free. */
    atomic_bool exited;
    pthread_mutex_t late_lock;

    conn *conns; /* all connections (doubly linked) */
    size_t n_conns;
    conn *dirty;    /* connections with output to produce this iteration */
    conn *readable; /* connections that still had input when their read
                       budget ran out */

    struct rh_call *free_calls; /* recycled call objects */
    size_t n_free_calls;

    reg_snapshot *snap; /* acquired; re-acquired when the generation moves */
    uint64_t snap_gen;

    uint8_t *rbuf; /* input scratch: nghttp2 consumes it synchronously */
    uint8_t *tbuf; /* ciphertext scratch, same size: OpenSSL consumes it */
    size_t rbuf_size;
    buf obuf; /* output scratch: one batch of frames per flush */

    int64_t now; /* CLOCK_MONOTONIC at the last wake-up */
    bool stopping;
    int64_t drain_deadline;
    rh_timer drain_timer;
    rh_timer hard_timer;
    rh_timer tick_timer; /* periodic: drop a stale snapshot when idle */
    rh_timer accept_timer; /* listeners paused after EMFILE & co. */
    bool accept_paused;
    int64_t accept_warned_ns; /* last "cannot accept" log line */
};

/* The worker running on this thread, NULL on other threads. */
extern __thread worker *worker_self;

int worker_init(worker *w, int id, const rh_settings *s);

/* The sockets of one worker, bound (SO_REUSEPORT) by the supervisor before
 * the serving process exists, so they outlive it. */
#define WORKER_MAX_LISTENERS (SETTINGS_MAX_LISTEN * 2)
typedef struct listen_set {
    int fd[WORKER_MAX_LISTENERS];
    bool is_unix[WORKER_MAX_LISTENERS];
    size_t n;
} listen_set;
/* Binds the sockets of worker id (a Unix socket only for worker 0). Logs
 * and fails on error (the port is in use, ...). */
int worker_bind(int id, const rh_settings *s, listen_set *ls);
void listen_set_close(listen_set *ls);
/* Starts listening on ls's sockets and serves them; the worker closes them
 * when it stops. */
int worker_listen(worker *w, const listen_set *ls);
int worker_start(worker *w);
void worker_join(worker *w);
/* After the plugins were finalised: nothing may post to w any more. */
void worker_free(worker *w);

/* Posts an op from any thread and wakes the worker if it was idle; once
 * the worker's loop has ended, applies it at once on the caller's thread. */
void worker_post(worker *w, xop *op);
xop *xop_new(xop_kind kind, size_t extra);

/* The registry snapshot the worker routes with (current generation). */
reg_snapshot *worker_snapshot(worker *w);

/* Connections with output: flushed once at the end of the iteration. */
void worker_mark_dirty(worker *w, conn *c);
void worker_mark_readable(worker *w, conn *c);
void worker_conn_closed(worker *w, conn *c);

#endif
