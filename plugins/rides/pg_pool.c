/* The PostgreSQL writer lanes: see pg_pool.h. */
#include "pg_pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store_pg.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 2000
/* An idle lane looks at its connection this often (seconds). */
#define IDLE_CHECK_S 1

typedef struct pg_lane {
    pg_pool *pool;
    int index;
    pthread_t thread;
    pthread_cond_t wake;    /* jobs queued or stopping */
    writer_job *head, *tail; /* under pool->mu */
    int connected;          /* under pool->mu: for routing */
    /* Lane thread only: */
    pg_store *st;
    uint64_t next_attempt_ms; /* no connection attempt before (monotonic) */
    int backoff_ms;
    char last_error[256];   /* why the lane has no connection, for clients */
} pg_lane;

struct pg_pool {
    pg_pool_config cfg;
    char *uri;
    int n_lanes, started;
    pg_lane lanes[PG_POOL_MAX];
    pthread_mutex_t mu;
    size_t queued_points;
    writer_waiter *waiters;
    int stopping;
    int n_connected;
    pthread_cond_t up;       /* a lane connected (pg_pool_wait_connected) */
    writer_stats stats;
    atomic_uint_fast64_t next_stage_id;
    atomic_uint rr;
    atomic_uint_fast64_t commit_delay_ns;
};

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void plog(pg_pool *p, int error, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void plog(pg_pool *p, int error, const char *fmt, ...)
{
    if (!p->cfg.log)
        return;
    char line[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    p->cfg.log(p->cfg.arg, error, line);
}

static size_t job_points(const writer_job *j)
{
    return j->kind == JOB_POINTS ? j->u.points.n : 0;
}

/* ------------------------------------------------------------ routing */

static pg_lane *lane_for(pg_pool *p, const writer_job *j)
{
    uint64_t stage = j->kind == JOB_POINTS    ? j->u.points.stage_id
                     : j->kind == JOB_TRACK   ? j->u.track.stage_id
                     : j->kind == JOB_DISCARD ? j->u.discard.stage_id
                                              : 0;
    if (stage)
        return &p->lanes[stage % (uint64_t)p->n_lanes];
    /* A ride: the next connected lane (under mu), else the next lane,
     * which fails it at once with the reason. */
    unsigned start = atomic_fetch_add(&p->rr, 1);
    for (int k = 0; k < p->n_lanes; k++) {
        pg_lane *l = &p->lanes[(start + (unsigned)k) % (unsigned)p->n_lanes];
        if (l->connected)
            return l;
    }
    return &p->lanes[start % (unsigned)p->n_lanes];
}

int pg_pool_submit(pg_pool *p, writer_job *j)
{
    j->next = NULL;
    j->rc = 0;
    j->error[0] = '\0';
    pthread_mutex_lock(&p->mu);
    pg_lane *l = lane_for(p, j);
    p->queued_points += job_points(j);
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
    int over = p->queued_points >= p->cfg.max_queued_points;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&p->mu);
    return over;
}

size_t pg_pool_wait_room(pg_pool *p, writer_waiter *wt)
{
    size_t queued = 0;
    pthread_mutex_lock(&p->mu);
    if (p->queued_points >= p->cfg.max_queued_points && !p->stopping) {
        queued = p->queued_points;
        wt->next = p->waiters;
        p->waiters = wt;
        p->stats.waits++;
    }
    pthread_mutex_unlock(&p->mu);
    return queued;
}

/* A Track's jobs go to lane (stage id mod lanes) for its whole life; a
 * new Track gets an id that lands on a connected lane if there is one. */
uint64_t pg_pool_new_stage_id(pg_pool *p)
{
    uint64_t id = atomic_fetch_add(&p->next_stage_id, 1);
    pthread_mutex_lock(&p->mu);
    for (int k = 0; k < p->n_lanes && p->n_connected > 0; k++) {
        if (p->lanes[id % (uint64_t)p->n_lanes].connected)
            break;
        id = atomic_fetch_add(&p->next_stage_id, 1);
    }
    pthread_mutex_unlock(&p->mu);
    return id;
}

void pg_pool_set_commit_delay(pg_pool *p, uint64_t ns)
{
    atomic_store(&p->commit_delay_ns, ns);
}

void pg_pool_get_stats(pg_pool *p, writer_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->stats;
    pthread_mutex_unlock(&p->mu);
}

int pg_pool_wait_connected(pg_pool *p, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&p->mu);
    while (p->n_connected == 0 && !p->stopping)
        if (pthread_cond_timedwait(&p->up, &p->mu, &ts) == ETIMEDOUT)
            break;
    int n = p->n_connected;
    pthread_mutex_unlock(&p->mu);
    return n;
}

int pg_pool_connected(pg_pool *p)
{
    pthread_mutex_lock(&p->mu);
    int n = p->n_connected;
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* ------------------------------------------------------- connections */

/* Marks the lane (dis)connected; reports a change of the pool's health. */
static void set_connected(pg_lane *l, int up)
{
    pg_pool *p = l->pool;
    pthread_mutex_lock(&p->mu);
    int before = p->n_connected;
    if (up != l->connected) {
        l->connected = up;
        p->n_connected += up ? 1 : -1;
    }
    int after = p->n_connected;
    if (up)
        pthread_cond_broadcast(&p->up);
    pthread_mutex_unlock(&p->mu);
    if (p->cfg.on_health && (before == 0) != (after == 0))
        p->cfg.on_health(p->cfg.arg, after > 0);
}

static void lane_connect(pg_lane *l)
{
    pg_pool *p = l->pool;
    char err[512];
    int rc = pg_store_connect(p->uri, p->cfg.connect_timeout_ms, &l->st, err, sizeof err);
    if (rc == 0) {
        if (l->backoff_ms > 0)
            plog(p, 0, "lane %d: connected to PostgreSQL again", l->index);
        l->backoff_ms = 0;
        set_connected(l, 1);
        return;
    }
    /* Log the first failure of a series, not every retry. */
    if (l->backoff_ms == 0)
        plog(p, 1, "lane %d: %s; retrying in the background", l->index, err);
    l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : BACKOFF_MIN_MS;
    if (l->backoff_ms > BACKOFF_MAX_MS)
        l->backoff_ms = BACKOFF_MAX_MS;
    l->next_attempt_ms = mono_ms() + (uint64_t)l->backoff_ms;
    snprintf(l->last_error, sizeof l->last_error, "%s",
             rc == -EPROTO ? "the database schema is newer than this plugin"
                           : "cannot connect to PostgreSQL");
}

static void lane_disconnect(pg_lane *l)
{
    plog(l->pool, 1, "lane %d: %s; reconnecting", l->index, pg_store_error(l->st));
    snprintf(l->last_error, sizeof l->last_error, "%s", pg_store_reason(l->st));
    pg_store_close(l->st);
    l->st = NULL;
    l->next_attempt_ms = 0; /* the next batch (or the loop) tries at once */
    set_connected(l, 0);
}

/* ---------------------------------------------------------- committing */

/* Every job of a batch that was not stored: each track reports once. */
static void fail_all(writer_job *batch, const char *why)
{
    for (writer_job *j = batch; j; j = j->next) {
        j->rc = -EIO;
        snprintf(j->error, sizeof j->error, "%s", why);
        if (j->track_failed && atomic_exchange(j->track_failed, 1))
            j->rc = -ECANCELED;
    }
}

static void finish_batch(pg_pool *p, writer_job *batch, int fatal, uint64_t ns, const char *why)
{
    size_t n_points = 0, n_jobs = 0, rides = 0, points = 0, tracks = 0;
    for (writer_job *j = batch; j; j = j->next) {
        n_points += job_points(j);
        n_jobs++;
        if (!fatal && j->rc == 0) {
            rides += j->kind == JOB_START;
            points += job_points(j);
            tracks += j->kind == JOB_TRACK;
        }
    }
    pthread_mutex_lock(&p->mu);
    p->queued_points -= n_points;
    writer_waiter *resumed = NULL;
    if (p->queued_points <= p->cfg.max_queued_points / 2) {
        resumed = p->waiters;
        p->waiters = NULL;
    }
    writer_stats *s = &p->stats;
    if (fatal) {
        s->failed_commits++;
    } else {
        s->commits++;
        s->rides += rides;
        s->points += points;
        s->tracks += tracks;
        if (rides > s->max_rides_per_commit)
            s->max_rides_per_commit = rides;
        if (n_jobs > s->max_jobs_per_commit)
            s->max_jobs_per_commit = n_jobs;
        if (rides > 0) {
            int b = 0;
            while (b + 1 < WRITER_HIST && ((size_t)2 << b) <= rides)
                b++;
            s->rides_hist[b]++;
        }
    }
    s->commit_ns += ns;
    pthread_mutex_unlock(&p->mu);

    while (resumed) {
        writer_waiter *wt = resumed;
        resumed = wt->next;
        wt->next = NULL;
        wt->resume(wt);
    }
    if (p->cfg.on_commit)
        p->cfg.on_commit(p->cfg.arg, n_jobs, rides, points, tracks, ns, fatal, why);
    /* Answer only now: the rows are committed (or the call failed). */
    while (batch) {
        writer_job *next = batch->next;
        p->cfg.done(p->cfg.arg, batch);
        free(batch);
        batch = next;
    }
}

static void commit_batch(pg_lane *l, writer_job *batch)
{
    pg_pool *p = l->pool;
    uint64_t delay = atomic_load(&p->commit_delay_ns);
    if (delay) {
        struct timespec ts = {(time_t)(delay / 1000000000u), (long)(delay % 1000000000u)};
        nanosleep(&ts, NULL);
    }
    uint64_t t0 = mono_ns();
    if (l->st == NULL && mono_ms() >= l->next_attempt_ms)
        lane_connect(l);
    int fatal = 0;
    char why[512] = "";
    if (l->st == NULL) {
        fatal = -EIO;
        snprintf(why, sizeof why, "%s", l->last_error);
        fail_all(batch, l->last_error);
    } else if (pg_store_apply(l->st, batch, p->cfg.query_timeout_ms) != 0) {
        fatal = -EIO;
        snprintf(why, sizeof why, "%s", pg_store_error(l->st));
        fail_all(batch, pg_store_reason(l->st));
        if (pg_store_broken(l->st))
            lane_disconnect(l);
    }
    finish_batch(p, batch, fatal, mono_ns() - t0, fatal ? why : NULL);
}

static void *lane_main(void *arg)
{
    pg_lane *l = arg;
    pg_pool *p = l->pool;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        for (;;) {
            if (l->head || p->stopping)
                break;
            uint64_t now = mono_ms();
            if (l->st == NULL && now >= l->next_attempt_ms)
                break; /* time to reconnect, calls or not */
            if (l->st != NULL) {
                /* Idle: look at the connection now and then, so that a
                 * server that went away shows in health without calls. */
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                ts.tv_sec += IDLE_CHECK_S;
                if (pthread_cond_timedwait(&l->wake, &p->mu, &ts) == ETIMEDOUT &&
                    l->head == NULL && !p->stopping)
                    break;
            } else {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                uint64_t wait = l->next_attempt_ms - now;
                ts.tv_sec += (time_t)(wait / 1000);
                ts.tv_nsec += (long)(wait % 1000) * 1000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&l->wake, &p->mu, &ts);
            }
        }
        writer_job *batch = l->head;
        l->head = l->tail = NULL;
        int stopping = p->stopping;
        pthread_mutex_unlock(&p->mu);
        if (batch)
            commit_batch(l, batch);
        else if (stopping)
            break;
        else if (l->st == NULL)
            lane_connect(l);
        else if (pg_store_check_idle(l->st) != 0)
            lane_disconnect(l);
    }
    return NULL;
}

/* ------------------------------------------------------------ lifetime */

int pg_pool_start(const pg_pool_config *cfg, pg_pool **out)
{
    *out = NULL;
    if (cfg->lanes < 1 || cfg->lanes > PG_POOL_MAX || !cfg->done)
        return -EINVAL;
    pg_pool *p = calloc(1, sizeof *p);
    if (p == NULL || (p->uri = strdup(cfg->uri)) == NULL) {
        free(p);
        return -ENOMEM;
    }
    p->cfg = *cfg;
    p->cfg.uri = p->uri;
    if (p->cfg.max_queued_points == 0)
        p->cfg.max_queued_points = 1;
    p->n_lanes = cfg->lanes;
    atomic_init(&p->next_stage_id, 1);
    atomic_init(&p->rr, 0);
    atomic_init(&p->commit_delay_ns, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = 0;
    for (int i = 0; i < p->n_lanes; i++) {
        pg_lane *l = &p->lanes[i];
        l->pool = p;
        l->index = i;
        snprintf(l->last_error, sizeof l->last_error, "not connected to PostgreSQL yet");
        pthread_cond_init(&l->wake, &ca);
    }
    pthread_cond_init(&p->up, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < p->n_lanes && rc == 0; i++) {
        rc = -pthread_create(&p->lanes[i].thread, NULL, lane_main, &p->lanes[i]);
        if (rc == 0)
            p->started++;
    }
    *out = p;
    if (rc != 0) {
        pg_pool_stop(p, NULL);
        *out = NULL;
    }
    return rc;
}

void pg_pool_stop(pg_pool *p, writer_stats *final)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    for (int i = 0; i < p->n_lanes; i++)
        pthread_cond_signal(&p->lanes[i].wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->lanes[i].thread, NULL);
    writer_waiter *w = p->waiters; /* nothing is queued any more */
    p->waiters = NULL;
    while (w) {
        writer_waiter *next = w->next;
        w->next = NULL;
        w->resume(w);
        w = next;
    }
    if (final)
        *final = p->stats;
    for (int i = 0; i < p->n_lanes; i++) {
        pg_store_close(p->lanes[i].st);
        pthread_cond_destroy(&p->lanes[i].wake);
    }
    pthread_cond_destroy(&p->up);
    pthread_mutex_destroy(&p->mu);
    free(p->uri);
    free(p);
}
