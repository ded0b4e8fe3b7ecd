/* The writer thread's group commit, against a real SQLite file. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "writer.h"

/* What `done` saw of one job; job->call points at it. */
typedef struct result {
    int rc;
    int seen;
    char error[256];
} result;

typedef struct ctx {
    char dir[64];
    char path[128];
    store *st;
    writer w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} ctx;

static void on_done(void *arg, writer_job *j)
{
    ctx *c = arg;
    result *r = j->call;
    pthread_mutex_lock(&c->mu);
    if (r) {
        r->rc = j->rc;
        r->seen++;
        snprintf(r->error, sizeof r->error, "%s", j->error);
    }
    c->done++;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static void wait_done(ctx *c, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 60;
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT)
            break;
    int got = c->done;
    pthread_mutex_unlock(&c->mu);
    assert_int_equal(got, n);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/rides-writer-XXXXXX");
    if (mkdtemp(c->dir) == NULL)
        return -1;
    snprintf(c->path, sizeof c->path, "%s/rides.db", c->dir);
    char err[512];
    if (store_open(c->path, STORE_SYNC_FULL, &c->st, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    if (writer_init(&c->w, c->st, 1024, on_done, NULL, c) != 0)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    writer_stop(&c->w, NULL); /* idempotent enough: tests stop it themselves */
    store_close(c->st);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    int rc = system(cmd);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc == 0 ? 0 : -1;
}

static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

static writer_job *start_job(result *r, int n, const char *driver)
{
    writer_job *j = calloc(1, sizeof *j);
    j->kind = JOB_START;
    j->call = r;
    snprintf(j->u.ride.id, sizeof j->u.ride.id, "%032x", n);
    j->u.ride.car_id = n;
    j->u.ride.driver_id = driver;
    j->u.ride.received_unix_ns = n;
    return j;
}

static writer_job *points_job(result *r, atomic_int *failed, uint64_t stage, uint64_t first,
                              size_t n)
{
    writer_job *j = calloc(1, sizeof *j + n * sizeof(store_point));
    j->kind = JOB_POINTS;
    j->call = r;
    j->track_failed = failed;
    j->u.points.stage_id = stage;
    j->u.points.first_seq = first;
    j->u.points.n = n;
    j->u.points.points = (store_point *)(j + 1);
    for (size_t i = 0; i < n; i++)
        j->u.points.points[i].car_id = 7;
    return j;
}

static writer_job *track_job(result *r, atomic_int *failed, uint64_t stage, uint64_t count)
{
    writer_job *j = calloc(1, sizeof *j);
    j->kind = JOB_TRACK;
    j->call = r;
    j->track_failed = failed;
    j->u.track.stage_id = stage;
    j->u.track.count = count;
    return j;
}

static void test_jobs_queued_during_a_commit_share_it(void **state)
{
    ctx *c = *state;
    enum { N = 100 };
    result r[N] = {{0}};
    /* Queued before the thread runs, as calls arriving during a commit. */
    for (int i = 0; i < N; i++)
        writer_submit(&c->w, start_job(&r[i], i, "Bond"));
    assert_int_equal(writer_start(&c->w), 0);
    wait_done(c, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].seen, 1);
        assert_int_equal(r[i].rc, 0);
    }
    writer_stats s;
    writer_get_stats(&c->w, &s);
    assert_int_equal(s.commits, 1);
    assert_int_equal(s.rides, N);
    assert_int_equal(s.max_rides_per_commit, N);
    assert_int_equal(s.rides_hist[6], 1); /* 64..127 */
    /* done ran after COMMIT: the rows are visible to another connection */
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), N);
}

typedef struct submitter {
    ctx *c;
    int base;
    result *r;
} submitter;

static void *submit_many(void *arg)
{
    submitter *s = arg;
    for (int i = 0; i < 200; i++)
        writer_submit(&s->c->w, start_job(&s->r[i], s->base + i, "Bond"));
    return NULL;
}

static void test_concurrent_submitters(void **state)
{
    ctx *c = *state;
    enum { T = 8 };
    static result r[T][200];
    memset(r, 0, sizeof r);
    assert_int_equal(writer_start(&c->w), 0);
    pthread_t th[T];
    submitter s[T];
    for (int t = 0; t < T; t++) {
        s[t] = (submitter){c, t * 1000, r[t]};
        pthread_create(&th[t], NULL, submit_many, &s[t]);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    wait_done(c, T * 200);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 200; i++)
            assert_int_equal(r[t][i].rc, 0);
    writer_stats st;
    writer_get_stats(&c->w, &st);
    assert_int_equal(st.rides, T * 200);
    assert_true(st.commits <= T * 200);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), T * 200);
}

static void test_track_in_batches(void **state)
{
    ctx *c = *state;
    assert_int_equal(writer_start(&c->w), 0);
    atomic_int failed = 0;
    result r[4] = {{0}};
    uint64_t stage = writer_new_stage_id(&c->w);
    assert_true(stage != 0);
    assert_true(writer_new_stage_id(&c->w) != stage);
    for (int b = 0; b < 3; b++)
        writer_submit(&c->w, points_job(&r[b], &failed, stage, (uint64_t)b * 300, 300));
    wait_done(c, 3);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 0);
    writer_submit(&c->w, track_job(&r[3], &failed, stage, 900));
    wait_done(c, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r[i].rc, 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 900);
    assert_int_equal(query_int(c->path, "SELECT point_count FROM tracks"), 900);
    writer_stats s;
    writer_get_stats(&c->w, &s);
    assert_int_equal(s.points, 900);
    assert_int_equal(s.tracks, 1);
}

static void test_storage_failure_fails_every_call_of_the_commit(void **state)
{
    ctx *c = *state;
    /* A full disk, as SQLite sees it: no page may be added. */
    sqlite3 *db = store_sqlite(c->st);
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 8", NULL, NULL, NULL), SQLITE_OK);
    static char big[3000];
    memset(big, 'x', sizeof big - 1);
    atomic_int failed = 0;
    result rp = {0}, rt = {0};
    enum { N = 40 };
    result r[N] = {{0}};
    uint64_t stage = writer_new_stage_id(&c->w);
    writer_submit(&c->w, points_job(&rp, &failed, stage, 0, 10));
    for (int i = 0; i < N; i++)
        writer_submit(&c->w, start_job(&r[i], i, big));
    assert_int_equal(writer_start(&c->w), 0);
    wait_done(c, N + 1);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].rc, -EIO);
        assert_string_equal(r[i].error, "database or disk is full");
    }
    assert_int_equal(rp.rc, -EIO);
    assert_int_equal(atomic_load(&failed), 1);
    /* The track's end, later: already failed, answered once, skipped. */
    writer_submit(&c->w, track_job(&rt, &failed, stage, 10));
    wait_done(c, N + 2);
    assert_int_equal(rt.rc, -ECANCELED);
    writer_stats s;
    writer_get_stats(&c->w, &s);
    assert_true(s.failed_commits >= 1);
    writer_stop(&c->w, NULL);
    writer_init(&c->w, c->st, 1024, on_done, NULL, c);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM tracks"), 0);
}

typedef struct waiter_probe {
    writer_waiter wt;
    atomic_int resumed;
} waiter_probe;

static void probe_resume(writer_waiter *wt)
{
    waiter_probe *p = (waiter_probe *)wt;
    atomic_fetch_add(&p->resumed, 1);
}

static int wait_resumed(waiter_probe *p, int n)
{
    for (int i = 0; i < 6000 && atomic_load(&p->resumed) < n; i++)
        usleep(10 * 1000);
    return atomic_load(&p->resumed);
}

/* Past the bound writer_submit says so at once (it never waits: the Track
 * pauses its call instead); a waiter linked while the queue is full is
 * resumed once the writer drained it, exactly once. */
static void test_points_beyond_the_bound_report_and_resume(void **state)
{
    ctx *c = *state;
    atomic_int failed = 0;
    result r[4] = {{0}};
    uint64_t stage = writer_new_stage_id(&c->w);
    /* The bound is 1024 points; the writer is not running yet. */
    assert_int_equal(writer_submit(&c->w, points_job(&r[0], &failed, stage, 0, 1000)), 0);
    waiter_probe early = {{0}, 0};
    early.wt.resume = probe_resume;
    assert_int_equal(writer_wait_room(&c->w, &early.wt), 0); /* room left: not linked */
    assert_int_equal(writer_submit(&c->w, points_job(&r[1], &failed, stage, 1000, 24)), 1);
    /* Over the bound: submitting more returns at once, still saying so. */
    assert_int_equal(writer_submit(&c->w, points_job(&r[2], &failed, stage, 1024, 10)), 1);
    waiter_probe p = {{0}, 0};
    p.wt.resume = probe_resume;
    assert_int_equal(writer_wait_room(&c->w, &p.wt), 1034);
    /* Rides never wait either. */
    writer_submit(&c->w, start_job(&r[3], 1, "Bond"));
    usleep(100 * 1000);
    assert_int_equal(atomic_load(&p.resumed), 0); /* nothing committed yet */
    assert_int_equal(writer_start(&c->w), 0);
    wait_done(c, 4);
    assert_int_equal(wait_resumed(&p, 1), 1);
    assert_int_equal(atomic_load(&early.resumed), 0);
    result rt = {0};
    writer_submit(&c->w, track_job(&rt, &failed, stage, 1034));
    wait_done(c, 5);
    assert_int_equal(rt.rc, 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 1034);
    usleep(50 * 1000);
    assert_int_equal(atomic_load(&p.resumed), 1);
    writer_stats st;
    writer_get_stats(&c->w, &st);
    assert_int_equal(st.waits, 1);
}

/* A waiter still linked when the writer stops is resumed by writer_stop. */
static void test_stop_resumes_waiters(void **state)
{
    ctx *c = *state;
    atomic_int failed = 0;
    result r = {0};
    uint64_t stage = writer_new_stage_id(&c->w);
    assert_int_equal(writer_submit(&c->w, points_job(&r, &failed, stage, 0, 2000)), 1);
    waiter_probe p = {{0}, 0};
    p.wt.resume = probe_resume;
    assert_true(writer_wait_room(&c->w, &p.wt) > 0);
    writer_stop(&c->w, NULL); /* never started: commits, answers, resumes */
    assert_int_equal(atomic_load(&p.resumed), 1);
    assert_int_equal(r.seen, 1);
    writer_init(&c->w, c->st, 1024, on_done, NULL, c); /* for teardown */
}

/* commit_delay_ms: each commit waits that long (the slow-disk test knob). */
static void test_commit_delay(void **state)
{
    ctx *c = *state;
    result r = {0};
    writer_set_commit_delay(&c->w, 300 * 1000000ull);
    assert_int_equal(writer_start(&c->w), 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    writer_submit(&c->w, start_job(&r, 1, "Bond"));
    wait_done(c, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 290);
    assert_int_equal(r.rc, 0);
}

static void test_stop_finishes_queued_work(void **state)
{
    ctx *c = *state;
    enum { N = 50 };
    result r[N] = {{0}};
    assert_int_equal(writer_start(&c->w), 0);
    for (int i = 0; i < N; i++)
        writer_submit(&c->w, start_job(&r[i], i, "Bond"));
    writer_stop(&c->w, NULL);
    pthread_mutex_lock(&c->mu);
    int done = c->done;
    pthread_mutex_unlock(&c->mu);
    assert_int_equal(done, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].rc, 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), N);
    writer_init(&c->w, c->st, 1024, on_done, NULL, c); /* for teardown */
}

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

/* The WAL is copied into the database once the writer has had no jobs for
 * a while (writer.c, IDLE_CHECKPOINT_NS), without any further job: commits
 * one at a time until the WAL passes STORE_CHECKPOINT_IDLE_PAGES, then the
 * database file (empty until a checkpoint: every page is in the WAL) gets
 * its pages. */
static void test_idle_writer_checkpoints(void **state)
{
    ctx *c = *state;
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", c->path);
    assert_int_equal(writer_start(&c->w), 0);
    enum { N = 600 };
    static result r[N];
    memset(r, 0, sizeof r);
    assert_true(file_size(c->path) < 8 * 4096);
    for (int i = 0; i < N; i++) { /* one commit each: 2+ WAL frames each */
        writer_submit(&c->w, start_job(&r[i], i, "Bond"));
        wait_done(c, i + 1);
    }
    assert_true(file_size(wal) >= (long long)STORE_CHECKPOINT_IDLE_PAGES * 4096);
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t);
    } while (file_size(c->path) < 8 * 4096 && t.tv_sec - t0.tv_sec < 20);
    assert_true(file_size(c->path) >= 8 * 4096);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), N);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobs_queued_during_a_commit_share_it, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_submitters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_track_in_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_storage_failure_fails_every_call_of_the_commit,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_points_beyond_the_bound_report_and_resume, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stop_resumes_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_finishes_queued_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_writer_checkpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
