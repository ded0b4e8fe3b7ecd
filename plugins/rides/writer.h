/* The writer thread: the only user of the store. Handlers hand it jobs;
 * it takes every job queued so far, applies them in one transaction
 * (group commit: one fsync for many calls), commits, and then reports
 * each job through the `done` callback, so a call is answered only after
 * its rows are durable.
 *
 * Memory is bounded: queued track points are counted; past
 * max_queued_points writer_submit says so, and the submitter (a Track on a
 * host worker) parks a waiter with writer_wait_room and pauses its call's
 * reading; the writer thread calls the waiter back once the queue is down
 * to half the bound (see docs/rides.md, "Backpressure"). Nothing here ever
 * waits on a submitter's thread. */
#ifndef RIDES_WRITER_H
#define RIDES_WRITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef enum writer_job_kind {
    JOB_START,   /* store one ride */
    JOB_POINTS,  /* stage a batch of track points */
    JOB_TRACK,   /* store a track: move its staged points, in one commit */
    JOB_DISCARD  /* drop the staged points of a failed or cancelled track */
} writer_job_kind;

/* A job is allocated by its submitter (malloc, one block) and freed by the
 * writer after `done` returned. */
typedef struct writer_job {
    struct writer_job *next;
    writer_job_kind kind;
    void *call;              /* opaque to the writer; the submitter's */
    /* Tracks: set (to 1) by the writer when the call's staged points were
     * lost; later jobs of that call are then skipped. NULL for rides. */
    atomic_int *track_failed;
    int rc;                  /* result: 0, -EEXIST, -EIO, -ECANCELED (skipped) */
    char error[256];         /* why, when rc != 0 */
    union {
        store_ride ride;     /* JOB_START */
        struct {
            uint64_t stage_id;
            uint64_t first_seq;
            size_t n;
            store_point *points; /* n entries, in the job's block */
        } points;            /* JOB_POINTS */
        struct {
            uint64_t stage_id;
            uint64_t count;
            const char *principal;
            int64_t received_unix_ns;
            int64_t track_id; /* out */
        } track;             /* JOB_TRACK */
        struct {
            uint64_t stage_id;
        } discard;           /* JOB_DISCARD */
    } u;
} writer_job;

/* Group-commit figures since start. Bucket i of rides_hist counts the
 * commits that stored n rides, 2^i <= n < 2^(i+1) (commits without rides
 * are not in it); calls_hist the same for the calls a commit answered
 * (rides plus completed tracks). */
#define WRITER_HIST 12
typedef struct writer_stats {
    uint64_t commits;
    uint64_t failed_commits;
    uint64_t rides;
    uint64_t points;
    uint64_t tracks;
    uint64_t max_rides_per_commit;
    uint64_t max_jobs_per_commit;
    uint64_t max_calls_per_commit;
    uint64_t rides_hist[WRITER_HIST];
    uint64_t calls_hist[WRITER_HIST];
    uint64_t commit_ns; /* time inside transactions, summed */
    uint64_t waits;     /* submitters that had to wait for room */
} writer_stats;

/* A submitter waiting for room (writer_wait_room). resume runs once, on the
 * writer thread (or in writer_stop), after the waiter was unlinked. */
typedef struct writer_waiter {
    struct writer_waiter *next;
    void (*resume)(struct writer_waiter *wt);
} writer_waiter;

typedef void (*writer_done_fn)(void *arg, writer_job *job);
/* Per-commit report (for debug logs), called on the writer thread. */
typedef void (*writer_commit_fn)(void *arg, size_t jobs, size_t rides, size_t points,
                                 size_t tracks, uint64_t ns, int rc, const char *error);

typedef struct writer {
    store *st;
    writer_done_fn done;
    writer_commit_fn on_commit; /* may be NULL */
    void *arg;
    size_t max_queued_points;

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* jobs queued or stopping */
    writer_job *head, *tail;
    size_t queued_points;
    writer_waiter *waiters; /* resumed when queued_points <= max / 2 */
    int stopping;
    int started;
    pthread_t thread;
    atomic_int pending_sync; /* -1 or a store_sync to apply before the next commit */
    atomic_uint_fast64_t next_stage_id;
    atomic_uint_fast64_t commit_delay_ns; /* test knob: a slow disk */

    writer_stats stats;      /* under mu */
} writer;

/* Sets up the queue; the thread starts with writer_start. The store stays
 * the caller's (closed after writer_stop). */
int writer_init(writer *w, store *st, size_t max_queued_points, writer_done_fn done,
                writer_commit_fn on_commit, void *arg);
int writer_start(writer *w);
/* Finishes every queued job, then stops the thread and tears the writer
 * down; *final (if not NULL) gets the statistics of its whole life. */
void writer_stop(writer *w, writer_stats *final);

/* Queues a job; never waits. Returns 1 when the queued points are at or
 * over the bound afterwards (the submitter should wait for room), else 0. */
int writer_submit(writer *w, writer_job *job);
/* If the queued points are still at or over the bound, links wt (its
 * resume runs once they drop to half the bound, or at stop) and returns
 * the points queued; else returns 0 and wt is not linked. */
size_t writer_wait_room(writer *w, writer_waiter *wt);
/* Test and benchmark knob: sleep this long before each commit (a slow disk). */
void writer_set_commit_delay(writer *w, uint64_t ns);
/* A fresh id for a track's staged points (never 0). */
uint64_t writer_new_stage_id(writer *w);
/* Applies a new synchronous mode before the next transaction. */
void writer_set_sync(writer *w, store_sync sync);
void writer_get_stats(writer *w, writer_stats *out);

#endif
