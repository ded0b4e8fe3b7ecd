/* The Rides store through its backend interface (backend.h), the way
 * rides.c uses it, against a real database: an SQLite file in a temporary
 * directory, or, when RIDES_TEST_PG holds a URI, a real PostgreSQL (ctest
 * runs this binary both ways; tests/integration/lib/pgtest.py starts the
 * server). The same cases hold for both: a job is done only once its rows
 * are committed and readable by another connection; a Track is visible
 * whole or not at all; a discarded Track leaves nothing. */
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

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "backend.h"

typedef struct result {
    int rc;
    int seen;
    char error[256];
} result;

typedef struct ctx {
    char dir[64];
    char db[256];
    int pg;
    rides_backend *b;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    atomic_int health; /* last on_health value, -1 none */
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

static void on_health(void *arg, int serving)
{
    atomic_store(&((ctx *)arg)->health, serving);
}

static void wait_done(ctx *c, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 30;
    pthread_mutex_lock(&c->mu);
    while (c->done < n)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT)
            break;
    int got = c->done;
    pthread_mutex_unlock(&c->mu);
    assert_int_equal(got, n);
}

/* One integer from a query on a separate connection, as a reader would. */
static int64_t query_int(ctx *c, const char *sql)
{
    if (c->pg) {
        PGconn *conn = PQconnectdb(c->db);
        assert_int_equal(PQstatus(conn), CONNECTION_OK);
        PGresult *r = PQexec(conn, sql);
        if (PQresultStatus(r) != PGRES_TUPLES_OK)
            fail_msg("%s: %s", sql, PQresultErrorMessage(r));
        int64_t v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        PQclear(r);
        PQfinish(conn);
        return v;
    }
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(c->db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return v;
}

/* A fresh, empty PostgreSQL database for each test: the public schema
 * dropped and made again, so every test also runs the migrations. */
static void pg_reset(const char *uri)
{
    PGconn *conn = PQconnectdb(uri);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    PGresult *r = PQexec(conn, "SET client_min_messages = warning;"
                               "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("reset: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(conn);
}

/* connect_ms: generous for a real server (a busy machine may take seconds
 * to set a connection up; open returns as soon as one is up), short where
 * the test wants a refused connection. */
static int open_backend(ctx *c, const char *db, int lanes, int connect_ms, char *err,
                        size_t errlen)
{
    backend_config cfg = {
        .db = db,
        .sync = STORE_SYNC_FULL,
        .pool_size = lanes,
        .connect_timeout_ms = connect_ms,
        .query_timeout_ms = 20000,
        .max_queued_points = 4096,
        .done = on_done,
        .on_health = on_health,
        .arg = c,
    };
    return backend_open(&cfg, &c->b, err, errlen);
}

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    atomic_init(&c->health, -1);
    const char *pg = getenv("RIDES_TEST_PG");
    if (pg && *pg) {
        c->pg = 1;
        snprintf(c->db, sizeof c->db, "%s", pg);
        pg_reset(pg);
    } else {
        snprintf(c->dir, sizeof c->dir, "/tmp/rides-backend-XXXXXX");
        if (mkdtemp(c->dir) == NULL)
            return -1;
        snprintf(c->db, sizeof c->db, "%s/rides.db", c->dir);
    }
    char err[512];
    if (open_backend(c, c->db, 3, 20000, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    backend_close(c->b, NULL);
    int rc = 0;
    if (!c->pg) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
        rc = system(cmd);
    }
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
    return rc == 0 ? 0 : -1;
}

static writer_job *start_job(result *r, int n)
{
    static const char *const pass[] = {"M", "Q \"quoted\" \\ and ünïcode"};
    writer_job *j = calloc(1, sizeof *j);
    j->kind = JOB_START;
    j->call = r;
    snprintf(j->u.ride.id, sizeof j->u.ride.id, "%032x", n);
    j->u.ride.car_id = n;
    j->u.ride.driver_id = "Bond";
    j->u.ride.passenger_ids = pass;
    j->u.ride.n_passengers = 2;
    j->u.ride.type = 1;
    j->u.ride.has_location = 1;
    j->u.ride.lat = 51.4871871;
    j->u.ride.lng = -0.1266743;
    j->u.ride.received_unix_ns = 1;
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
    for (size_t i = 0; i < n; i++) {
        store_point *p = &j->u.points.points[i];
        p->car_id = 7;
        p->has_location = 1;
        p->lat = 51.0 + (double)(first + i) * 1e-4;
        p->lng = -0.1;
        p->has_time = (first + i) % 2;
        p->time_seconds = 1645369687 + (int64_t)(first + i);
        p->time_nanos = 5;
    }
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
    j->u.track.principal = "alice";
    j->u.track.received_unix_ns = 2;
    return j;
}

/* A ride is done after its commit, and then readable, passengers too. */
static void test_ride_committed_before_done(void **state)
{
    ctx *c = *state;
    result r = {0};
    backend_submit(c->b, start_job(&r, 1));
    wait_done(c, 1);
    assert_int_equal(r.rc, 0);
    assert_int_equal(r.seen, 1);
    assert_int_equal(query_int(c, "SELECT count(*) FROM rides WHERE id = "
                                  "'00000000000000000000000000000001' AND car_id = 1"),
                     1);
    assert_int_equal(query_int(c, "SELECT count(*) FROM ride_passengers WHERE position = 1 AND "
                                  "passenger_id = 'Q \"quoted\" \\ and ünïcode'"),
                     1);
}

/* Many rides queued at once: every one stored and answered once. */
static void test_many_rides(void **state)
{
    ctx *c = *state;
    enum { N = 500 };
    result *r = calloc(N, sizeof *r);
    for (int i = 0; i < N; i++)
        backend_submit(c->b, start_job(&r[i], 100 + i));
    wait_done(c, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_int_equal(r[i].seen, 1);
    }
    assert_int_equal(query_int(c, "SELECT count(*) FROM rides"), N);
    free(r);
}

/* The same ride id twice: the second is refused alone (-EEXIST). */
static void test_ride_id_taken(void **state)
{
    ctx *c = *state;
    result a = {0}, b = {0};
    backend_submit(c->b, start_job(&a, 9));
    wait_done(c, 1);
    backend_submit(c->b, start_job(&b, 9));
    wait_done(c, 2);
    assert_int_equal(a.rc, 0);
    assert_int_equal(b.rc, -EEXIST);
    assert_int_equal(query_int(c, "SELECT count(*) FROM rides"), 1);
}

/* A Track's points arrive in batches; only the finished track shows. */
static void test_track_whole_or_nothing(void **state)
{
    ctx *c = *state;
    atomic_int failed = 0;
    result p1 = {0}, p2 = {0}, t = {0};
    uint64_t stage = backend_new_stage_id(c->b);
    backend_submit(c->b, points_job(&p1, &failed, stage, 0, 512));
    backend_submit(c->b, points_job(&p2, &failed, stage, 512, 100));
    wait_done(c, 2);
    assert_int_equal(p1.rc, 0);
    assert_int_equal(p2.rc, 0);
    /* Staged, committed, and still invisible. */
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_points"), 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM tracks"), 0);
    backend_submit(c->b, track_job(&t, &failed, stage, 612));
    wait_done(c, 3);
    assert_int_equal(t.rc, 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM tracks WHERE point_count = 612 AND "
                                  "principal = 'alice'"),
                     1);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_points"), 612);
    assert_int_equal(query_int(c, "SELECT max(seq) FROM track_points"), 611);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_points WHERE time_seconds IS NULL"),
                     306);
}

/* A Track with no messages is a track of 0 points. */
static void test_empty_track(void **state)
{
    ctx *c = *state;
    atomic_int failed = 0;
    result t = {0};
    backend_submit(c->b, track_job(&t, &failed, backend_new_stage_id(c->b), 0));
    wait_done(c, 1);
    assert_int_equal(t.rc, 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM tracks WHERE point_count = 0"), 1);
}

/* A cancelled Track's staged points are deleted, nothing is left. */
static void test_discard(void **state)
{
    ctx *c = *state;
    atomic_int failed = 0;
    result p = {0};
    uint64_t stage = backend_new_stage_id(c->b);
    backend_submit(c->b, points_job(&p, &failed, stage, 0, 300));
    writer_job *d = calloc(1, sizeof *d);
    d->kind = JOB_DISCARD;
    d->u.discard.stage_id = stage;
    backend_submit(c->b, d);
    wait_done(c, 2);
    assert_int_equal(p.rc, 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_call_points"), 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_calls"), 0);
}

/* Tracks and rides interleaved from several "calls" at once. */
static void test_interleaved(void **state)
{
    ctx *c = *state;
    enum { T = 8, R = 40 };
    atomic_int failed[T];
    result pts[T][3], fin[T], rides[R];
    memset(pts, 0, sizeof pts);
    memset(fin, 0, sizeof fin);
    memset(rides, 0, sizeof rides);
    uint64_t stage[T];
    for (int t = 0; t < T; t++) {
        atomic_init(&failed[t], 0);
        stage[t] = backend_new_stage_id(c->b);
    }
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < T; t++) {
            backend_submit(c->b, points_job(&pts[t][k], &failed[t], stage[t], (uint64_t)k * 10, 10));
            if (t * 3 + k < R)
                backend_submit(c->b, start_job(&rides[t * 3 + k], 1000 + t * 3 + k));
        }
    for (int i = T * 3; i < R; i++)
        backend_submit(c->b, start_job(&rides[i], 1000 + i));
    for (int t = 0; t < T; t++)
        backend_submit(c->b, track_job(&fin[t], &failed[t], stage[t], 30));
    wait_done(c, T * 3 + R + T);
    for (int t = 0; t < T; t++)
        assert_int_equal(fin[t].rc, 0);
    for (int i = 0; i < R; i++)
        assert_int_equal(rides[i].rc, 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM tracks WHERE point_count = 30"), T);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_points"), T * 30);
    assert_int_equal(query_int(c, "SELECT count(*) FROM rides"), R);
}

/* More new tracks in one commit than the store reserves ids for at once
 * (64 on PostgreSQL): all stored, each with its own id. */
static void test_many_tracks_at_once(void **state)
{
    ctx *c = *state;
    enum { T = 150 };
    atomic_int *failed = calloc(T, sizeof *failed);
    result *pts = calloc(T, sizeof *pts), *fin = calloc(T, sizeof *fin);
    uint64_t *stage = calloc(T, sizeof *stage);
    /* Stage ids that all map to one lane; the commit delay keeps that lane
     * busy while the rest queue, so its next batch holds them all. */
    backend_set_commit_delay(c->b, 50 * 1000 * 1000);
    uint64_t lane = backend_new_stage_id(c->b) % 3; /* 3 lanes (setup) */
    for (int t = 0; t < T; t++) {
        do
            stage[t] = backend_new_stage_id(c->b);
        while (stage[t] % 3 != lane);
        atomic_init(&failed[t], 0);
        backend_submit(c->b, points_job(&pts[t], &failed[t], stage[t], 0, 2));
        backend_submit(c->b, track_job(&fin[t], &failed[t], stage[t], 2));
    }
    wait_done(c, 2 * T);
    for (int t = 0; t < T; t++) {
        assert_int_equal(pts[t].rc, 0);
        assert_int_equal(fin[t].rc, 0);
    }
    assert_int_equal(query_int(c, "SELECT count(DISTINCT id) FROM tracks WHERE point_count = 2"),
                     T);
    assert_int_equal(query_int(c, "SELECT count(*) FROM track_points"), 2 * T);
    free(failed);
    free(pts);
    free(fin);
    free(stage);
}

/* PostgreSQL that does not answer: the plugin's backend still opens (it
 * connects in the background), jobs fail at once with the reason, and
 * health stays not serving. SQLite: nothing to test (no server). */
static void test_pg_unreachable(void **state)
{
    ctx *c = *state;
    if (!c->pg) {
        skip();
        return;
    }
    backend_close(c->b, NULL);
    c->b = NULL;
    atomic_store(&c->health, -1);
    char err[512] = "";
    /* Port 1 on loopback: nothing listens, connect is refused at once. */
    assert_int_equal(open_backend(c, "postgresql://postgres@127.0.0.1:1/rides", 2, 500, err,
                                  sizeof err),
                     0);
    result r = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    backend_submit(c->b, start_job(&r, 5));
    wait_done(c, 1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_int_equal(r.rc, -EIO);
    assert_string_equal(r.error, "cannot connect to PostgreSQL");
    assert_true(t1.tv_sec - t0.tv_sec < 3);
    assert_int_not_equal(atomic_load(&c->health), 1);
}

/* A bad URI is refused at open, with the reason. */
static void test_pg_bad_uri(void **state)
{
    ctx *c = *state;
    rides_backend *b = NULL;
    backend_config cfg = {.db = "postgresql://[::1/x", .pool_size = 1,
                          .connect_timeout_ms = 100, .query_timeout_ms = 100,
                          .max_queued_points = 10, .done = on_done, .arg = c};
    char err[512] = "";
    assert_int_equal(backend_open(&cfg, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "is not a PostgreSQL URI"));
    assert_null(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ride_committed_before_done, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ride_id_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_track_whole_or_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_track, setup, teardown),
        cmocka_unit_test_setup_teardown(test_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_interleaved, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tracks_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pg_bad_uri, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
