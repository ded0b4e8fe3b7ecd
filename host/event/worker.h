/* A worker: one thread, one epoll loop, its own SO_REUSEPORT listener per
 * listen address, its connections (a connection lives on one worker for
 * life), its timers and a queue other threads post operations to (send /
 * finish / unref of calls it owns, shutdown, instance cancellation),
 * woken through an eventfd. Nothing here is shared between workers, so
 * the hot path takes no lock.
 *
 * The event layer knows no connection and no call: the layers above plug
 * in through three seams, each set up by server.c before the workers run:
 *  - an ev_handle's on_event, called for its epoll events (a connection);
 *  - worker_hooks: a socket accepted, the end of a loop iteration, the 1 s
 *    tick, the loop's end;
 *  - an xop's apply: what a posted operation does on the worker. */
#ifndef RPCHOST_HOST_WORKER_H
#define RPCHOST_HOST_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/config.h"
#include "core/core.h"
#include "registry/registry.h"

typedef struct conn conn;
typedef struct worker worker;

typedef enum ev_kind { EV_LISTENER, EV_IO, EV_WAKE } ev_kind;

/* First member of everything registered with epoll. EV_IO handles (the
 * transport's connections) get their events through on_event. */
typedef struct ev_handle {
    ev_kind kind;
    void (*on_event)(struct ev_handle *h, uint32_t events);
} ev_handle;

typedef struct listener {
    ev_handle ev;
    int fd;
    bool is_unix;
} listener;

/* An operation posted to a worker from another thread. The layer that
 * posts it embeds an xop first in its own struct (rpc/api.c: the call
 * operations; server.c: shutdown, cancellation) and says with apply what
 * it does: apply runs on the worker's thread (or, once the loop has ended,
 * on the posting thread under late_lock) and frees op. */
typedef struct xop {
    struct xop *next;
    void (*apply)(worker *w, struct xop *op);
} xop;

/* What the layers above do at the loop's fixed points (server.c sets
 * them once, before any worker starts; every one is required). */
typedef struct worker_hooks {
    /* A socket accepted on one of w's listeners; takes ownership of fd
     * (non-blocking, close-on-exec). unix_path is the listener's path for
     * a Unix socket, else NULL. */
    void (*accept)(worker *w, int fd, const struct sockaddr *sa, socklen_t salen,
                   const char *unix_path);
    /* After each iteration's events and timers: pending reads, output. */
    void (*iteration_end)(worker *w);
    /* Once a second, on the worker (idle connections). */
    void (*tick)(worker *w);
    /* The loop has ended: free what the connections left. */
    void (*loop_end)(worker *w);
} worker_hooks;

void worker_set_hooks(const worker_hooks *hooks);

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

    /* The transport's: all connections (doubly linked), those with output
     * to produce this iteration, those that still had input when their
     * read budget ran out (transport/conns.c). */
    conn *conns;
    size_t n_conns;
    size_t conns_peak; /* most connections at once since the last trim */
    conn *dirty;
    conn *readable;

    /* The rpc layer's: recycled call objects (rpc/call.c), and the codecs
     * and buffers of message compression, made on first use
     * (rpc/compress.c). */
    struct rh_call *free_calls;
    size_t n_free_calls;
    struct compress_scratch *zs;

    reg_snapshot *snap; /* acquired; re-acquired when the generation moves */
    uint64_t snap_gen;

    uint8_t *rbuf; /* input scratch: nghttp2 consumes it synchronously */
    uint8_t *tbuf; /* ciphertext scratch, same size: OpenSSL consumes it */
    size_t rbuf_size;
    buf obuf; /* output scratch: one batch of frames per flush */

    int64_t now; /* CLOCK_MONOTONIC at the last wake-up */
    bool stopping; /* listeners closed; the loop ends with the last connection */
    /* Graceful stop (server.c arms them on the worker). */
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
/* A zeroed op of `size` bytes (the poster's struct, xop first) that will
 * run apply; NULL without memory. */
void *xop_new(size_t size, void (*apply)(worker *w, xop *op));
/* Posted by server.c when the registry changed: an idle worker drops the
 * snapshot that pins retired instances. */
void worker_refresh(worker *w, xop *op);

/* Graceful stop, stage one on the event side: no more accepts, listeners
 * closed, `stopping` set (the loop ends once n_conns is 0). False if the
 * worker was already stopping. */
bool worker_stop_accepting(worker *w);

/* The registry snapshot the worker routes with (current generation). */
reg_snapshot *worker_snapshot(worker *w);


#endif
