/* The writer thread and its group commit: see writer.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif
#include "writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int writer_init(writer *w, store *st, size_t max_queued_points, writer_done_fn done,
                writer_commit_fn on_commit, void *arg)
{
    memset(w, 0, sizeof *w);
    w->st = st;
    w->done = done;
    w->on_commit = on_commit;
    w->arg = arg;
    w->max_queued_points = max_queued_points ? max_queued_points : 1;
    atomic_init(&w->pending_sync, -1);
    atomic_init(&w->next_stage_id, 1);
    atomic_init(&w->commit_delay_ns, 0);
    int rc = pthread_mutex_init(&w->mu, NULL);
    if (rc)
        return -rc;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* idle waits ignore clock steps */
    rc = pthread_cond_init(&w->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        pthread_mutex_destroy(&w->mu);
        return -rc;
    }
    return 0;
}

static size_t job_points(const writer_job *j)
{
    return j->kind == JOB_POINTS ? j->u.points.n : 0;
}

uint64_t writer_new_stage_id(writer *w)
{
    return atomic_fetch_add(&w->next_stage_id, 1);
}

void writer_set_sync(writer *w, store_sync sync)
{
    atomic_store(&w->pending_sync, (int)sync);
}

void writer_set_commit_delay(writer *w, uint64_t ns)
{
    atomic_store(&w->commit_delay_ns, ns);
}

int writer_submit(writer *w, writer_job *j)
{
    j->next = NULL;
    j->rc = 0;
    j->error[0] = '\0';
    pthread_mutex_lock(&w->mu);
    w->queued_points += job_points(j);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    int over = w->queued_points >= w->max_queued_points;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    return over;
}

size_t writer_wait_room(writer *w, writer_waiter *wt)
{
    size_t queued = 0;
    pthread_mutex_lock(&w->mu);
    if (w->queued_points >= w->max_queued_points && !w->stopping) {
        queued = w->queued_points;
        wt->next = w->waiters;
        w->waiters = wt;
        w->stats.waits++;
    }
    pthread_mutex_unlock(&w->mu);
    return queued;
}

/* Calls back the waiters taken off the list (outside the lock: resume may
 * post to the host). */
static void resume_all(writer_waiter *list)
{
    while (list) {
        writer_waiter *wt = list;
        list = wt->next;
        wt->next = NULL;
        wt->resume(wt); /* may free wt */
    }
}

static int track_is_failed(const writer_job *j)
{
    return j->track_failed && atomic_load(j->track_failed);
}

/* Applies one job inside the open transaction. */
static int apply(writer *w, writer_job *j)
{
    switch (j->kind) {
    case JOB_START:
        return store_add_ride(w->st, &j->u.ride);
    case JOB_POINTS:
        if (track_is_failed(j))
            return -ECANCELED;
        return store_stage_points(w->st, j->u.points.stage_id, j->u.points.first_seq,
                                  j->u.points.points, j->u.points.n);
    case JOB_TRACK:
        if (track_is_failed(j)) {
            int rc = store_discard_stage(w->st, j->u.track.stage_id);
            return rc ? rc : -ECANCELED;
        }
        return store_finish_track(w->st, j->u.track.stage_id, j->u.track.count,
                                  j->u.track.principal, j->u.track.received_unix_ns,
                                  &j->u.track.track_id);
    case JOB_DISCARD:
        return store_discard_stage(w->st, j->u.discard.stage_id);
    }
    return -EINVAL;
}

/* After a rollback: every job failed. A track reports its failure once
 * (the first job to see it); later jobs of it report -ECANCELED. */
static void fail_all(writer *w, writer_job *batch, const char *why)
{
    for (writer_job *j = batch; j; j = j->next) {
        j->rc = -EIO;
        snprintf(j->error, sizeof j->error, "%s", why);
        if (j->track_failed && atomic_exchange(j->track_failed, 1))
            j->rc = -ECANCELED;
    }
    /* Their staged rows would otherwise stay until the connection closes:
     * best effort, each in its own (temp-only) transaction. */
    for (writer_job *j = batch; j; j = j->next) {
        if (j->kind == JOB_TRACK)
            store_discard_stage(w->st, j->u.track.stage_id);
        else if (j->kind == JOB_DISCARD)
            store_discard_stage(w->st, j->u.discard.stage_id);
    }
}

/* The histogram bucket of n > 0: 2^b <= n < 2^(b+1), the last open-ended. */
static int hist_bucket(size_t n)
{
    int b = 0;
    while (b + 1 < WRITER_HIST && ((size_t)2 << b) <= n)
        b++;
    return b;
}

typedef struct batch_counts {
    size_t jobs, rides, points, tracks;
} batch_counts;

static void commit_batch(writer *w, writer_job *batch)
{
    int sync = atomic_exchange(&w->pending_sync, -1);
    if (sync >= 0)
        store_set_sync(w->st, (store_sync)sync);

    batch_counts c = {0};
    uint64_t delay = atomic_load(&w->commit_delay_ns);
    if (delay) {
        struct timespec ts = {(time_t)(delay / 1000000000u), (long)(delay % 1000000000u)};
        nanosleep(&ts, NULL);
    }
    uint64_t t0 = now_ns();
    int fatal = store_begin(w->st);
    for (writer_job *j = batch; j && !fatal; j = j->next) {
        c.jobs++;
        j->rc = apply(w, j);
        if (j->rc == 0) {
            c.rides += j->kind == JOB_START;
            c.points += job_points(j);
            c.tracks += j->kind == JOB_TRACK;
        } else if (j->rc == -EEXIST) {
            snprintf(j->error, sizeof j->error, "%s", store_reason(w->st));
        } else if (j->rc != -ECANCELED) {
            fatal = j->rc;
        }
    }
    if (!fatal)
        fatal = store_commit(w->st);
    char why[512] = "";
    if (fatal) {
        snprintf(why, sizeof why, "%s", store_error(w->st));
        char reason[128];
        snprintf(reason, sizeof reason, "%s", store_reason(w->st));
        store_rollback(w->st);
        fail_all(w, batch, reason);
    }
    uint64_t ns = now_ns() - t0;

    size_t n_points = 0, n_jobs = 0;
    for (writer_job *j = batch; j; j = j->next) {
        n_points += job_points(j);
        n_jobs++;
    }
    pthread_mutex_lock(&w->mu);
    w->queued_points -= n_points;
    /* Room again: let the waiting Tracks read on. Half the bound, so a
     * resumed Track does not pause again at its next batch. */
    writer_waiter *resumed = NULL;
    if (w->queued_points <= w->max_queued_points / 2) {
        resumed = w->waiters;
        w->waiters = NULL;
    }
    writer_stats *s = &w->stats;
    if (fatal) {
        s->failed_commits++;
    } else {
        s->commits++;
        s->rides += c.rides;
        s->points += c.points;
        s->tracks += c.tracks;
        if (c.rides > s->max_rides_per_commit)
            s->max_rides_per_commit = c.rides;
        if (n_jobs > s->max_jobs_per_commit)
            s->max_jobs_per_commit = n_jobs;
        if (c.rides > 0)
            s->rides_hist[hist_bucket(c.rides)]++;
        size_t calls = c.rides + c.tracks;
        if (calls > s->max_calls_per_commit)
            s->max_calls_per_commit = calls;
        if (calls > 0)
            s->calls_hist[hist_bucket(calls)]++;
    }
    s->commit_ns += ns;
    pthread_mutex_unlock(&w->mu);

    resume_all(resumed);
    if (w->on_commit)
        w->on_commit(w->arg, n_jobs, c.rides, c.points, c.tracks, ns, fatal,
                     fatal ? why : NULL);
    /* Answer only now: the rows are committed (or the call failed). */
    while (batch) {
        writer_job *next = batch->next;
        w->done(w->arg, batch);
        free(batch);
        batch = next;
    }
}

/* How long the queue must stay empty before the writer checkpoints a
 * small WAL (store_checkpoint's idle case). Under load a batch's calls
 * come back within a millisecond or two, once their clients have the
 * answers: an empty queue right after a commit is not idleness, and
 * checkpointing then (as before) copied pages that the next commits
 * dirtied again. */
#define IDLE_CHECKPOINT_NS 20000000u

/* Waits for jobs (or stop). Checkpoints the WAL if none came for
 * IDLE_CHECKPOINT_NS after a commit. Called and returns with mu held. */
static void wait_for_jobs(writer *w, int *ckpt_due)
{
    while (w->head == NULL && !w->stopping) {
        if (!*ckpt_due) {
            pthread_cond_wait(&w->wake, &w->mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        uint64_t ns = (uint64_t)until.tv_nsec + IDLE_CHECKPOINT_NS;
        until.tv_sec += (time_t)(ns / 1000000000u);
        until.tv_nsec = (long)(ns % 1000000000u);
        if (pthread_cond_timedwait(&w->wake, &w->mu, &until) == ETIMEDOUT &&
            w->head == NULL && !w->stopping) {
            *ckpt_due = 0;
            pthread_mutex_unlock(&w->mu);
            store_checkpoint(w->st, 1);
            pthread_mutex_lock(&w->mu);
        }
    }
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    int ckpt_due = 0;
    pthread_setname_np(pthread_self(), "rides-writer"); /* for top -H, perf */
    for (;;) {
        pthread_mutex_lock(&w->mu);
        wait_for_jobs(w, &ckpt_due);
        writer_job *batch = w->head;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);
        if (batch == NULL)
            break; /* stopping, and nothing left to do */
        /* Everything queued while the last commit ran goes into this one:
         * that is the group commit, with no timer and no added latency. */
        commit_batch(w, batch);
        /* Its calls are answered: checkpoint the WAL now rather than in
         * a COMMIT (store_checkpoint) if it is large; a small one when
         * the writer has been idle for a while (wait_for_jobs). */
        store_checkpoint(w->st, 0);
        ckpt_due = 1;
    }
    return NULL;
}

int writer_start(writer *w)
{
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc)
        return -rc;
    w->started = 1;
    return 0;
}

void writer_stop(writer *w, writer_stats *final)
{
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->wake);
    pthread_mutex_unlock(&w->mu);
    if (w->started)
        pthread_join(w->thread, NULL);
    else if (w->head)
        commit_batch(w, w->head); /* never started: still answer the jobs */
    w->head = w->tail = NULL;
    w->started = 0;
    resume_all(w->waiters); /* nothing is queued any more */
    w->waiters = NULL;
    if (final)
        *final = w->stats;
    pthread_cond_destroy(&w->wake);
    pthread_mutex_destroy(&w->mu);
}

void writer_get_stats(writer *w, writer_stats *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
