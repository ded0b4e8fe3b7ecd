/* The authlog instance: thread records, RCU tables, background thread (see
 * al_state.h). */
#define _GNU_SOURCE /* pthread_setname_np */
#include "al_state.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "al_auth.h"

#define LOG(s, lvl, ...) (s)->api->log((s)->ctx, (lvl), __VA_ARGS__)

static int64_t now_ms(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void al_config_free(al_config *c)
{
    if (!c)
        return;
    free(c->log_file);
    free(c->tokens_file);
    al_perms_free(&c->exempt);
    memset(c, 0, sizeof *c);
}

/* --- thread records ---------------------------------------------------- */

al_thread *al_thread_register(al_state *s)
{
    size_t size = (sizeof(al_thread) + 63) & ~(size_t)63;
    al_thread *t = aligned_alloc(64, size);
    if (!t)
        return NULL;
    memset(t, 0, sizeof *t);
    atomic_init(&t->rcu_seq, 0);
    t->tc.sec = INT64_MIN;
    if (al_ring_init(&t->ring, s->ring_cap)) {
        free(t);
        return NULL;
    }
    if (al_hasher_init(&t->hasher) || pthread_setspecific(s->key, t)) {
        al_hasher_free(&t->hasher);
        al_ring_destroy(&t->ring);
        free(t);
        return NULL;
    }
    t->next = atomic_load_explicit(&s->threads, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&s->threads, &t->next, t,
                                                  memory_order_release,
                                                  memory_order_relaxed))
        ;
    return t;
}

/* Waits until no thread is still inside a read section it entered before
 * the caller's last pointer swap. */
static void grace(al_state *s)
{
    al_thread *t = atomic_load_explicit(&s->threads, memory_order_acquire);
    for (; t; t = t->next) {
        uint_fast64_t v = atomic_load(&t->rcu_seq);
        if (!(v & 1))
            continue;
        while (atomic_load(&t->rcu_seq) == v) {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

static void publish_tokens(al_state *s, al_tokens *t)
{
    al_tokens *old = atomic_exchange(&s->tokens, t);
    grace(s);
    al_tokens_free(old);
}

static void publish_exempt(al_state *s, al_perms *p)
{
    al_perms *old = atomic_exchange(&s->exempt, p);
    grace(s);
    if (old) {
        al_perms_free(old);
        free(old);
    }
}

void al_state_wake(al_state *s)
{
    uint64_t one = 1;
    ssize_t w = write(s->wake_fd, &one, sizeof one);
    (void)w; /* EAGAIN: a wake is already pending */
}

/* --- draining the rings ------------------------------------------------ */

#define DRAIN_BATCH 256 /* threads per writev */

static void report_write_error(al_state *s, int err, uint64_t lines)
{
    s->lost_unreported += lines;
    if (err != s->last_write_errno) {
        LOG(s, RH_LOG_ERROR,
            "cannot write the access log to %s: %s; lines are lost until it "
            "works again (check the disk, or send SIGHUP to reopen)",
            al_sink_name(&s->sink), strerror(-err));
        s->last_write_errno = err;
    }
}

static uint64_t count_lines(const char *p, size_t n)
{
    uint64_t c = 0;
    for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        c++;
    return c;
}

static void drain(al_state *s)
{
    struct iovec iov[2 * DRAIN_BATCH];
    al_thread *batch[DRAIN_BATCH];
    size_t taken[DRAIN_BATCH];
    al_thread *t = atomic_load_explicit(&s->threads, memory_order_acquire);
    while (t) {
        int nb = 0, niov = 0;
        for (; t && nb < DRAIN_BATCH; t = t->next) {
            uint64_t d = atomic_load_explicit(&t->ring.dropped, memory_order_relaxed);
            s->dropped_unreported += d - t->ring.dropped_seen;
            t->ring.dropped_seen = d;
            atomic_store(&t->ring.wake_pending, false);
            const char *p1, *p2;
            size_t n1, n2;
            size_t n = al_ring_peek(&t->ring, &p1, &n1, &p2, &n2);
            if (!n)
                continue;
            iov[niov++] = (struct iovec){(void *)p1, n1};
            if (n2)
                iov[niov++] = (struct iovec){(void *)p2, n2};
            batch[nb] = t;
            taken[nb++] = n;
        }
        if (!nb)
            continue;
        int rc = al_sink_writev(&s->sink, iov, niov);
        for (int i = 0; i < nb; i++) {
            if (rc) {
                const char *p1, *p2;
                size_t n1, n2;
                al_ring_peek(&batch[i]->ring, &p1, &n1, &p2, &n2);
                /* Partial writes were retried, so a failure loses at most
                 * these lines; count them for the operator. */
                report_write_error(s, rc, count_lines(p1, n1) + count_lines(p2, n2));
            }
            al_ring_consume(&batch[i]->ring, taken[i]);
        }
        if (!rc)
            s->last_write_errno = 0;
    }
}

static void report_drops(al_state *s, bool now)
{
    int64_t t = now_ms(CLOCK_MONOTONIC);
    if (!s->dropped_unreported && !s->lost_unreported)
        return;
    if (!now && t - s->last_drop_report_ms < 1000)
        return;
    if (s->dropped_unreported)
        LOG(s, RH_LOG_WARN,
            "%" PRIu64 " access log lines dropped: %s is slower than the calls "
            "(raise log_buffer in [plugin.authlog] or use a faster disk)",
            s->dropped_unreported, al_sink_name(&s->sink));
    if (s->lost_unreported)
        LOG(s, RH_LOG_WARN, "%" PRIu64 " access log lines lost to write errors on %s",
            s->lost_unreported, al_sink_name(&s->sink));
    s->dropped_unreported = s->lost_unreported = 0;
    s->last_drop_report_ms = t;
}

/* --- the tokens file --------------------------------------------------- */

static bool stat_same(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
           a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
           a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

static void watch_reset(al_watch *w, char *path)
{
    free(w->path);
    memset(w, 0, sizeof *w);
    w->path = path;
}

/* What stays in force when the tokens file cannot be used. */
static const char *keeping(al_state *s, char *buf, size_t n)
{
    const al_tokens *t = atomic_load(&s->tokens);
    if (!t)
        return "authlog.auth refuses every call but exempt ones until it can be read";
    snprintf(buf, n, "the previous tokens (%zu entries) stay in force", t->n);
    return buf;
}

/* Re-reads the tokens file if it changed (or if force). A change must be
 * stable for one poll before it is read, so a file being written is not
 * caught half-way; a file whose mtime is recent is re-read and compared by
 * content, because a second write within the same timestamp tick leaves
 * the stat unchanged. */
static void tokens_check(al_state *s, bool force)
{
    al_watch *w = &s->watch;
    char kb[80];
    if (!w->path)
        return;
    struct stat st;
    if (stat(w->path, &st) < 0) {
        int e = errno;
        if (e != w->last_errno)
            LOG(s, RH_LOG_ERROR, "tokens file %s: %s; %s", w->path, strerror(e),
                keeping(s, kb, sizeof kb));
        w->last_errno = e;
        w->have_seen = false;
        return;
    }
    int64_t mono = now_ms(CLOCK_MONOTONIC);
    if (!force) {
        if (!w->have_seen || !stat_same(&st, &w->seen)) {
            if (!w->changing_since_ms)
                w->changing_since_ms = mono;
            w->seen = st;
            w->have_seen = true;
            if (mono - w->changing_since_ms < 500)
                return; /* wait until it stops changing (at most 500 ms) */
        }
        w->changing_since_ms = 0;
        int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
        /* Content read less than 2 s after its mtime may predate a second
         * write within the same tick, which leaves the stat as it was: it
         * is compared by content until a read comes 2 s after the mtime.
         * Judged by when we read, not by now, so a watcher that did not
         * run for 2 s (a loaded machine) does not miss that write. */
        bool recent = now_ms(CLOCK_REALTIME) - mtime_ms < 2000 ||
                      (w->have_read && w->read_ms - mtime_ms < 2000);
        if (!recent && w->have_loaded && stat_same(&st, &w->loaded))
            return;
        if (!recent && w->have_failed && stat_same(&st, &w->failed))
            return;
    }
    char err[512];
    char *buf;
    size_t len;
    int64_t read_ms = now_ms(CLOCK_REALTIME);
    int rc = al_read_file(w->path, AL_TOKENS_FILE_MAX, &buf, &len, err, sizeof err);
    if (rc == 0) {
        w->read_ms = read_ms;
        w->have_read = true;
    }
    if (rc) {
        if (rc != -EAGAIN && -rc != w->last_errno)
            LOG(s, RH_LOG_ERROR, "tokens file %s; %s", err, keeping(s, kb, sizeof kb));
        w->last_errno = rc == -EAGAIN ? w->last_errno : -rc;
        return;
    }
    uint8_t hash[AL_DIGEST_LEN];
    al_sha256(buf, len, hash);
    if (w->have_hash && memcmp(hash, w->loaded_hash, sizeof hash) == 0) {
        free(buf);
        w->loaded = st;
        w->have_loaded = true;
        w->last_errno = 0;
        return;
    }
    if (w->have_failed && memcmp(hash, w->failed_hash, sizeof hash) == 0) {
        free(buf);
        w->failed = st;
        return;
    }
    al_tokens *t = NULL;
    char perr[400];
    rc = al_tokens_parse(buf, len, &t, perr, sizeof perr);
    free(buf);
    w->last_errno = 0;
    if (rc) {
        LOG(s, RH_LOG_ERROR, "tokens file %s %s; %s until the file is fixed", w->path,
            perr, keeping(s, kb, sizeof kb));
        memcpy(w->failed_hash, hash, sizeof hash);
        w->failed = st;
        w->have_failed = true;
        return;
    }
    size_t nt = t->n_tokens, nc = t->n_certs;
    publish_tokens(s, t);
    memcpy(w->loaded_hash, hash, sizeof hash);
    w->have_hash = true;
    w->loaded = st;
    w->have_loaded = true;
    w->have_failed = false;
    LOG(s, RH_LOG_INFO, "tokens file %s loaded: %zu tokens, %zu certificate mappings",
        w->path, nt, nc);
}

/* --- reconfiguration (SIGHUP) ------------------------------------------ */

static bool str_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void apply_config(al_state *s, al_config *c)
{
    char err[512];
    drain(s); /* what was logged so far goes to the file it was meant for */
    if (al_sink_reopen(&s->sink, c->log_file, err, sizeof err))
        LOG(s, RH_LOG_ERROR, "%s; still logging to %s", err, al_sink_name(&s->sink));
    atomic_store(&s->log_format, (int)c->log_format);
    atomic_store(&s->mtls, c->mtls);
    atomic_store(&s->auth_on, c->auth);
    atomic_store(&s->log_on, c->log);
    al_perms *ex = malloc(sizeof *ex);
    if (ex) {
        *ex = c->exempt;
        memset(&c->exempt, 0, sizeof c->exempt);
        publish_exempt(s, ex);
    }
    if (!str_eq(c->tokens_file, s->watch.path)) {
        watch_reset(&s->watch, c->tokens_file);
        c->tokens_file = NULL;
        if (!s->watch.path) {
            publish_tokens(s, NULL);
            LOG(s, RH_LOG_WARN, "tokens_file removed from the configuration: "
                "only exempt methods pass authlog.auth now");
        }
    }
    tokens_check(s, true);
    LOG(s, RH_LOG_INFO,
        "in force now: auth %s, log %s to %s as %s, tokens_file %s",
        c->auth ? "on" : "off", c->log ? "on" : "off", al_sink_name(&s->sink),
        c->log_format == AL_FMT_JSON ? "json" : "text",
        s->watch.path ? s->watch.path : "(none)");
    al_config_free(c);
    free(c);
}

void al_state_reconfigure(al_state *s, al_config *cfg)
{
    pthread_mutex_lock(&s->pending_mu);
    al_config *old = s->pending;
    s->pending = cfg;
    pthread_mutex_unlock(&s->pending_mu);
    if (old) {
        al_config_free(old);
        free(old);
    }
    al_state_wake(s);
}

/* --- the background thread --------------------------------------------- */

static void *bg_main(void *arg)
{
    al_state *s = arg;
    int64_t next_check = 0;
    s->last_drop_report_ms = now_ms(CLOCK_MONOTONIC);
    for (;;) {
        bool stopping = atomic_load(&s->stop);
        pthread_mutex_lock(&s->pending_mu);
        al_config *c = s->pending;
        s->pending = NULL;
        pthread_mutex_unlock(&s->pending_mu);
        if (c)
            apply_config(s, c);
        drain(s);
        report_drops(s, stopping);
        if (stopping)
            return NULL;
        int64_t t = now_ms(CLOCK_MONOTONIC);
        if (t >= next_check) {
            tokens_check(s, false);
            next_check = t + AL_TOKENS_POLL_MS;
        }
        struct pollfd pfd = {s->wake_fd, POLLIN, 0};
        if (poll(&pfd, 1, AL_FLUSH_INTERVAL_MS) > 0) {
            uint64_t v;
            ssize_t r = read(s->wake_fd, &v, sizeof v);
            (void)r;
        }
    }
}

/* --- start / stop ------------------------------------------------------- */

static void state_free(al_state *s)
{
    al_thread *t = atomic_load(&s->threads);
    while (t) {
        al_thread *next = t->next;
        al_hasher_free(&t->hasher);
        al_ring_destroy(&t->ring);
        free(t);
        t = next;
    }
    al_tokens_free(atomic_load(&s->tokens));
    al_perms *ex = atomic_load(&s->exempt);
    if (ex) {
        al_perms_free(ex);
        free(ex);
    }
    if (s->pending) {
        al_config_free(s->pending);
        free(s->pending);
    }
    al_sink_close(&s->sink);
    watch_reset(&s->watch, NULL);
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    pthread_mutex_destroy(&s->pending_mu);
    free(s);
}

int al_state_start(al_state **out, const rh_host_api *api, rh_plugin_ctx *ctx,
                   al_config *cfg, char *err, size_t errlen)
{
    int rc;
    al_state *s = calloc(1, sizeof *s);
    if (!s) {
        al_config_free(cfg);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    s->api = api;
    s->ctx = ctx;
    s->wake_fd = -1;
    s->sink.fd = -1;
    s->ring_cap = cfg->log_buffer;
    atomic_init(&s->threads, NULL);
    atomic_init(&s->tokens, NULL);
    atomic_init(&s->exempt, NULL);
    atomic_init(&s->log_format, (int)cfg->log_format);
    atomic_init(&s->mtls, cfg->mtls);
    atomic_init(&s->auth_on, cfg->auth);
    atomic_init(&s->log_on, cfg->log);
    atomic_init(&s->stop, false);
    pthread_mutex_init(&s->pending_mu, NULL);
    bool key_made = false;

    al_perms *ex = malloc(sizeof *ex);
    if (!ex) {
        rc = -ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    *ex = cfg->exempt;
    memset(&cfg->exempt, 0, sizeof cfg->exempt);
    atomic_store(&s->exempt, ex);

    if ((rc = al_sink_open(&s->sink, cfg->log_file, err, errlen)))
        goto fail;
    /* The tokens file is read like any later change of it. If it cannot
     * be used, the instance still starts and refuses every non-exempt
     * call (fail closed; a refused plugin would mean no authentication at
     * all), and the watcher picks the file up once it is fixed. */
    watch_reset(&s->watch, cfg->tokens_file);
    cfg->tokens_file = NULL;
    tokens_check(s, true);
    s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd < 0) {
        rc = -errno;
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if ((rc = -pthread_key_create(&s->key, NULL))) {
        snprintf(err, errlen, "pthread_key_create: %s", strerror(-rc));
        goto fail;
    }
    key_made = true;
    /* The thread takes no signals: they belong to the host. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = -pthread_create(&s->thread, NULL, bg_main, s);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        snprintf(err, errlen, "cannot start the log thread: %s", strerror(-rc));
        goto fail;
    }
    pthread_setname_np(s->thread, "authlog");
    al_config_free(cfg);
    *out = s;
    return 0;
fail:
    if (key_made)
        pthread_key_delete(s->key);
    al_config_free(cfg);
    state_free(s);
    return rc;
}

void al_state_stop(al_state *s)
{
    atomic_store(&s->stop, true);
    al_state_wake(s);
    pthread_join(s->thread, NULL);
    pthread_key_delete(s->key);
    state_free(s);
}
