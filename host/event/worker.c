#define _GNU_SOURCE /* accept4 */
#include "event/worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "crash/crash.h"
#include "metrics/metrics.h"

__thread worker *worker_self;

static const worker_hooks *hooks;

void worker_set_hooks(const worker_hooks *h) { hooks = h; }

#define RBUF_SIZE (64 * 1024)
#define MAX_EVENTS 256
#define ACCEPT_BUDGET 64
#define TICK_NS (1000LL * 1000000) /* idle check of the registry generation */
#define ACCEPT_PAUSE_NS (100LL * 1000000)  /* out of descriptors: retry after */
#define ACCEPT_WARN_NS (10LL * 1000000000) /* one log line per 10 s at most */

/* ------------------------------------------------------------------------
 * Setup
 * ---------------------------------------------------------------------- */

int worker_init(worker *w, int id, const rh_settings *s)
{
    memset(w, 0, sizeof *w);
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&w->late_lock, &ma);
    pthread_mutexattr_destroy(&ma);
    w->id = id;
    w->s = s;
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    w->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    w->rbuf_size = RBUF_SIZE;
    w->rbuf = malloc(RBUF_SIZE);
    w->tbuf = s->plaintext ? NULL : malloc(RBUF_SIZE);
    if (w->epfd < 0 || w->evfd < 0 || !w->rbuf || (!s->plaintext && !w->tbuf)) {
        log_error("worker %d: cannot create its event loop: %s", id, strerror(errno));
        return -errno ? -errno : -ENOMEM;
    }
    w->wake_ev.kind = EV_WAKE;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->wake_ev};
    if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->evfd, &ev) < 0) return -errno;
    atomic_init(&w->inbox, NULL);
    return 0;
}

static int add_listener(worker *w, int fd, bool is_unix)
{
    listener *v = realloc(w->listeners, (w->n_listeners + 1) * sizeof *v);
    if (!v) return -ENOMEM;
    w->listeners = v;
    listener *l = &v[w->n_listeners++];
    l->ev.kind = EV_LISTENER;
    l->fd = fd;
    l->is_unix = is_unix;
    return 0;
}

/* Registers the listeners with epoll (after the array stopped moving). */
static int arm_listeners(worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &w->listeners[i].ev};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listeners[i].fd, &ev) < 0) return -errno;
    }
    return 0;
}

static const char *addr_text(const struct sockaddr *sa, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, a, sizeof a);
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
        snprintf(buf, len, "%s:%u", a, port);
    } else {
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, a, sizeof a);
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
        snprintf(buf, len, "[%s]:%u", a, port);
    }
    return buf;
}

/* Fails with EADDRINUSE when another socket (without SO_REUSEPORT, or of
 * another user) holds the address: SO_REUSEPORT alone would silently share
 * the port with a second rpchost of the same user. */
static int probe_free(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6) {
        int zero = 0;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
    int rv = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
    close(fd);
    return rv;
}

static int set_add(listen_set *ls, int fd, bool is_unix)
{
    if (ls->n == WORKER_MAX_LISTENERS) {
        log_error("listen: more than %d sockets per worker", WORKER_MAX_LISTENERS);
        return -ENOSPC;
    }
    ls->fd[ls->n] = fd;
    ls->is_unix[ls->n] = is_unix;
    ls->n++;
    return 0;
}

static int bind_inet(int id, const settings_listen *l, listen_set *ls)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    const char *host = l->host[0] ? l->host : NULL;
    int rv = getaddrinfo(host, l->port, &hints, &res);
    if (rv != 0) {
        log_error("listen %s:%s: cannot resolve: %s", l->host, l->port, gai_strerror(rv));
        return -EINVAL;
    }
    int bound = 0;
    rv = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN + 16];
        addr_text(ai->ai_addr, text, sizeof text);
        if (id == 0 && (rv = probe_free(ai)) < 0) {
            log_error("listen %s: %s%s", text, strerror(-rv),
                      rv == -EADDRINUSE ? "; another process holds the port: stop it or pick "
                                          "another with --listen"
                                        : "");
            break;
        }
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        ai->ai_protocol);
        if (fd < 0) {
            rv = -errno;
            log_error("listen %s: socket: %s", text, strerror(errno));
            break;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        if (ai->ai_family == AF_INET6) {
            int zero = 0; /* "[::]" also takes IPv4 */
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
        }
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            rv = -errno;
            log_error("listen %s: %s", text, strerror(errno));
            close(fd);
            break;
        }
        if ((rv = set_add(ls, fd, false)) < 0) {
            close(fd);
            break;
        }
        bound++;
        /* "localhost" resolves to 127.0.0.1 and ::1: take both. A wildcard
         * "[::]" already covers IPv4; binding 0.0.0.0 too would clash. */
        if (!host && ai->ai_family == AF_INET6) break;
    }
    freeaddrinfo(res);
    if (rv == 0 && bound == 0) {
        log_error("listen %s:%s: no usable address", l->host, l->port);
        rv = -EINVAL;
    }
    return rv;
}

static int bind_unix(const char *path, listen_set *ls)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sun.sun_path) {
        log_error("listen unix:%s: path longer than %zu bytes", path, sizeof sun.sun_path - 1);
        return -ENAMETOOLONG;
    }
    strcpy(sun.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            log_error("listen unix:%s: a file that is not a socket is in the way", path);
            close(fd);
            return -EEXIST;
        }
        /* A socket file: in use if someone answers, else stale. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0) {
            close(probe);
            close(fd);
            log_error("listen unix:%s: another process is listening there", path);
            return -EADDRINUSE;
        }
        if (probe >= 0) close(probe);
        unlink(path);
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        int e = errno;
        log_error("listen unix:%s: %s", path, strerror(e));
        close(fd);
        return -e;
    }
    int rv = set_add(ls, fd, true);
    if (rv < 0) close(fd);
    return rv;
}

void listen_set_close(listen_set *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        if (ls->fd[i] >= 0) close(ls->fd[i]);
    ls->n = 0;
}

int worker_bind(int id, const rh_settings *s, listen_set *ls)
{
    int rv = 0;
    ls->n = 0;
    for (size_t i = 0; i < s->n_listen && rv == 0; i++) {
        const settings_listen *l = &s->listen[i];
        if (l->unix_socket) {
            /* One Unix socket for the whole server: worker 0 serves it. */
            if (id == 0) rv = bind_unix(l->host, ls);
        } else {
            rv = bind_inet(id, l, ls);
        }
    }
    if (rv < 0) listen_set_close(ls);
    return rv;
}

int worker_listen(worker *w, const listen_set *ls)
{
    for (size_t i = 0; i < ls->n; i++) {
        /* Bound by the supervisor; listening starts with the first serving
         * process (until then a connection is refused, as before) and
         * stays on across restarts (the backlog holds new connections). */
        if (listen(ls->fd[i], SOMAXCONN) < 0) {
            log_error("listen: %s", strerror(errno));
            return -errno;
        }
        int rv = add_listener(w, ls->fd[i], ls->is_unix[i]);
        if (rv < 0) return rv;
    }
    return arm_listeners(w);
}

/* ------------------------------------------------------------------------
 * The cross-thread queue
 * ---------------------------------------------------------------------- */

void *xop_new(size_t size, void (*apply)(worker *w, xop *op))
{
    xop *op = calloc(1, size);
    if (op) op->apply = apply;
    return op;
}

static void drain_inbox(worker *w);

void worker_post(worker *w, xop *op)
{
    xop *head = atomic_load_explicit(&w->inbox, memory_order_relaxed);
    do {
        op->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&w->inbox, &head, op, memory_order_seq_cst,
                                                    memory_order_relaxed));
    /* The loop has ended (it sets exited, then drains once more): whoever
     * sees exited applies what is queued, under the lock. seq_cst on both
     * sides: either the worker's last drain sees this op or we see exited. */
    if (atomic_load_explicit(&w->exited, memory_order_seq_cst)) {
        pthread_mutex_lock(&w->late_lock);
        drain_inbox(w);
        pthread_mutex_unlock(&w->late_lock);
        return;
    }
    /* Only the post that finds the inbox empty needs to wake the worker:
     * it drains everything in one go. The worker itself looks at its
     * inbox before it waits. */
    if (head == NULL && worker_self != w) {
        uint64_t one = 1;
        ssize_t n = write(w->evfd, &one, sizeof one);
        (void)n;
    }
}

static void apply_inbox(worker *w);

static void drain_inbox(worker *w)
{
    uint64_t v;
    ssize_t n = read(w->evfd, &v, sizeof v);
    (void)n;
    apply_inbox(w);
}

/* Applies what is queued now; what those ops post goes to the next turn. */
static void apply_inbox(worker *w)
{
    xop *list = atomic_exchange_explicit(&w->inbox, NULL, memory_order_seq_cst);
    /* LIFO -> FIFO: ops of one thread keep their order. */
    xop *fifo = NULL;
    while (list) {
        xop *next = list->next;
        list->next = fifo;
        fifo = list;
        list = next;
    }
    while (fifo) {
        xop *op = fifo;
        fifo = op->next;
        op->apply(w, op); /* frees op */
    }
}

void worker_refresh(worker *w, xop *op)
{
    free(op);
    if (w->snap && !atomic_load(&w->exited) && reg_generation() != w->snap_gen)
        worker_snapshot(w);
}

/* ------------------------------------------------------------------------
 * The loop
 * ---------------------------------------------------------------------- */

reg_snapshot *worker_snapshot(worker *w)
{
    uint64_t gen = reg_generation();
    if (!w->snap || gen != w->snap_gen) {
        reg_snapshot *snap = reg_acquire();
        if (w->snap) reg_snapshot_release(w->snap);
        w->snap = snap;
        w->snap_gen = snap ? snap->generation : 0;
        if (snap && snap->generation != gen) w->snap_gen = snap->generation;
    }
    return w->snap;
}

static void accept_resume(rh_timer *t)
{
    worker *w = (worker *)((char *)t - offsetof(worker, accept_timer));
    w->accept_paused = false;
    if (!w->stopping) arm_listeners(w);
}

/* accept(2) failed for want of descriptors or memory; the connection stays
 * in the backlog, so the level-triggered listener would wake us at once,
 * for ever (nginx's accept pause): stop listening for a moment. */
static void accept_pause(worker *w, int err)
{
    if (w->now - w->accept_warned_ns >= ACCEPT_WARN_NS || !w->accept_warned_ns) {
        w->accept_warned_ns = w->now;
        log_warn("worker %d: cannot accept connections: %s; pausing accept for %lld ms%s", w->id,
                 strerror(err), ACCEPT_PAUSE_NS / 1000000,
                 err == EMFILE || err == ENFILE
                     ? " (raise the open-file limit, ulimit -n, or lower max_connections)"
                     : "");
    }
    for (size_t i = 0; i < w->n_listeners; i++)
        if (w->listeners[i].fd >= 0) epoll_ctl(w->epfd, EPOLL_CTL_DEL, w->listeners[i].fd, NULL);
    w->accept_paused = true;
    mx_inc(mxh.accept_paused);
    timer_arm(&w->timers, &w->accept_timer, now_ns() + ACCEPT_PAUSE_NS, accept_resume);
}

static void do_accept(worker *w, listener *l)
{
    for (int i = 0; i < ACCEPT_BUDGET; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int fd = accept4(l->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                accept_pause(w, errno);
            else if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("accept: %s", strerror(errno));
            return;
        }
        if (w->stopping || (w->s->max_connections && w->n_conns >= w->s->max_connections)) {
            close(fd);
            continue;
        }
        const char *upath = NULL;
        char pathbuf[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
        if (l->is_unix) {
            struct sockaddr_un sun;
            socklen_t sl = sizeof sun;
            pathbuf[0] = 0;
            if (getsockname(l->fd, (struct sockaddr *)&sun, &sl) == 0) {
                memcpy(pathbuf, sun.sun_path, sizeof sun.sun_path);
                pathbuf[sizeof sun.sun_path] = 0;
            }
            upath = pathbuf;
        } else {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        hooks->accept(w, fd, (struct sockaddr *)&ss, len, upath);
        if (w->n_conns > w->conns_peak) w->conns_peak = w->n_conns;
    }
}

static void close_listeners(worker *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        listener *l = &w->listeners[i];
        if (l->fd < 0) continue;
        epoll_ctl(w->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        if (l->is_unix) {
            struct sockaddr_un sun;
            socklen_t sl = sizeof sun;
            if (getsockname(l->fd, (struct sockaddr *)&sun, &sl) == 0 && sun.sun_path[0])
                unlink(sun.sun_path);
        }
        close(l->fd);
        l->fd = -1;
    }
}

bool worker_stop_accepting(worker *w)
{
    if (w->stopping) return false;
    w->stopping = true;
    timer_cancel(&w->timers, &w->accept_timer);
    close_listeners(w);
    return true;
}

/* A storm of connections leaves their memory (TLS objects, buffers, the
 * connection and call structs) in the allocator's free lists when they
 * close: glibc gives a thread arena's pages back only from its top, so the
 * process would keep its peak RSS for good. Once the worker holds at most
 * half the connections it held at its peak since the last trim, free pages
 * go back to the system (malloc_trim walks every arena: at most once a
 * second per worker, and never while the connection count is steady). */
static void trim_after_storm(worker *w)
{
    if (!w->conns_peak || w->n_conns > w->conns_peak / 2) return;
    malloc_trim(0);
    w->conns_peak = w->n_conns;
}

static void tick(rh_timer *t)
{
    worker *w = (worker *)((char *)t - offsetof(worker, tick_timer));
    trim_after_storm(w);
    /* An idle worker must not pin a retired plugin instance forever. */
    if (w->snap && reg_generation() != w->snap_gen) worker_snapshot(w);
    hooks->tick(w);
    timer_arm(&w->timers, &w->tick_timer, now_ns() + TICK_NS, tick);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    worker_self = w;
    crash_thread_init(CRASH_THREAD_WORKER); /* a stack overflow in a handler is still reported */
    mx_thread_attach(w->id);
    const mx_series *busy = mx_host_worker_busy(w->id);
    struct epoll_event evs[MAX_EVENTS];
    timer_arm(&w->timers, &w->tick_timer, now_ns() + TICK_NS, tick);
    /* Busy time without a clock read of its own: from one wake-up to the
     * clock read that computes the next wait's timeout (a wait with
     * timeout 0 counts as busy). */
    int64_t woke = now_ns();
    for (;;) {
        if (w->stopping && w->n_conns == 0) break;
        int timeout = -1;
        int64_t wait_from = 0;
        if (w->readable || w->dirty || atomic_load_explicit(&w->inbox, memory_order_relaxed)) {
            timeout = 0;
        } else {
            int64_t next = timer_next(&w->timers);
            if (next >= 0) {
                wait_from = now_ns();
                int64_t d = next - wait_from;
                timeout = d <= 0 ? 0 : (int)((d + 999999) / 1000000);
            }
        }
        int n = epoll_wait(w->epfd, evs, MAX_EVENTS, timeout);
        if (n < 0 && errno != EINTR) {
            log_error("worker %d: epoll_wait: %s", w->id, strerror(errno));
            break;
        }
        w->now = now_ns();
        if (busy) mx_count(busy, (uint64_t)((wait_from ? wait_from : w->now) - woke));
        woke = w->now;
        for (int i = 0; i < n; i++) {
            ev_handle *h = evs[i].data.ptr;
            switch (h->kind) {
            case EV_LISTENER:
                do_accept(w, (listener *)h);
                break;
            case EV_IO:
                h->on_event(h, evs[i].events);
                break;
            case EV_WAKE:
                drain_inbox(w);
                break;
            }
        }
        /* Posted by this worker itself (no wake-up was written). */
        if (atomic_load_explicit(&w->inbox, memory_order_relaxed)) apply_inbox(w);
        timer_run(&w->timers, now_ns());
        hooks->iteration_end(w);
    }
    /* Stopped: timers still armed are call_later callbacks of cancelled
     * calls; each runs exactly once, as promised. */
    timer_cancel(&w->timers, &w->tick_timer);
    timer_cancel(&w->timers, &w->drain_timer);
    timer_cancel(&w->timers, &w->hard_timer);
    timer_cancel(&w->timers, &w->accept_timer);
    timer_run(&w->timers, INT64_MAX);
    /* Plugins may hold calls past this point (answered from their fini):
     * what they post from now on is applied by worker_post itself. */
    pthread_mutex_lock(&w->late_lock);
    atomic_store_explicit(&w->exited, true, memory_order_seq_cst);
    drain_inbox(w);
    /* No call starts any more: the registry may finalise what we pinned. */
    if (w->snap) reg_snapshot_release(w->snap);
    w->snap = NULL;
    pthread_mutex_unlock(&w->late_lock);
    hooks->loop_end(w);
    crash_thread_fini();
    worker_self = NULL;
    mx_thread_attach(-1);
    return NULL;
}

/* glibc sets its allocator up on first use, and malloc_trim's set-up is
 * not thread-safe: two workers making the first call at once both adopt
 * the main arena while it counts one user, and the second to exit aborts
 * in glibc's thread clean-up ("a->attached_threads > 0"). That first use
 * is normally a malloc long before, but not where malloc is replaced (as
 * AddressSanitizer does). So the starting thread makes it, once, before
 * any worker runs. */
static pthread_once_t trim_set_up = PTHREAD_ONCE_INIT;

static void set_up_trim(void) { malloc_trim(0); }

int worker_start(worker *w)
{
    pthread_once(&trim_set_up, set_up_trim);
    int rv = pthread_create(&w->thread, NULL, worker_main, w);
    if (rv != 0) {
        log_error("worker %d: cannot start its thread: %s", w->id, strerror(rv));
        return -rv;
    }
    w->started = true;
    return 0;
}

void worker_join(worker *w)
{
    if (w->started) pthread_join(w->thread, NULL);
    w->started = false;
}

void worker_free(worker *w)
{
    close_listeners(w);
    if (w->snap) reg_snapshot_release(w->snap);
    w->snap = NULL;
    timer_heap_free(&w->timers);
    free(w->listeners);
    free(w->rbuf);
    free(w->tbuf);
    free(w->obuf.p);
    if (w->epfd >= 0) close(w->epfd);
    if (w->evfd >= 0) close(w->evfd);
    w->epfd = w->evfd = -1;
    pthread_mutex_destroy(&w->late_lock);
}
