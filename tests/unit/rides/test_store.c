/* The SQLite store against real files in a temporary directory. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

typedef struct ctx {
    char dir[64];
    char path[128];
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/rides-store-XXXXXX");
    if (mkdtemp(c->dir) == NULL)
        return -1;
    snprintf(c->path, sizeof c->path, "%s/rides.db", c->dir);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    ctx *c = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", c->dir);
    int rc = system(cmd);
    free(c);
    return rc == 0 ? 0 : -1;
}

/* One integer from a query on a separate connection, as a reader would. */
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

static store *open_ok(ctx *c)
{
    store *st = NULL;
    char err[512] = "";
    int rc = store_open(c->path, STORE_SYNC_FULL, &st, err, sizeof err);
    if (rc != 0)
        fail_msg("store_open: %s", err);
    return st;
}

static store_ride bond(const char *id)
{
    static const char *const pass[] = {"M", "Q"};
    store_ride r = {0};
    snprintf(r.id, sizeof r.id, "%s", id);
    r.car_id = 7;
    r.driver_id = "Bond";
    r.passenger_ids = pass;
    r.n_passengers = 2;
    r.type = 1;
    r.has_location = 1;
    r.lat = 51.4871871;
    r.lng = -0.1266743;
    r.has_time = 1;
    r.time_seconds = 1645369687;
    r.time_nanos = 915156117;
    r.principal = "spiffe://bond";
    r.received_unix_ns = 1700000000123456789;
    return r;
}

static void test_create_and_migrate(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    assert_int_equal(query_int(c->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(store_sqlite(st), "PRAGMA journal_mode", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_prepare_v2(store_sqlite(st), "PRAGMA synchronous", -1, &s, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 2); /* FULL */
    sqlite3_finalize(s);
    store_close(st);
    /* Reopening an up-to-date database changes nothing. */
    st = open_ok(c);
    store_close(st);
    assert_int_equal(query_int(c->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    /* v1's names still read the same data (rides a table, the rest views
     * of the v2 tables). */
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM sqlite_master WHERE type IN"
                                        " ('table','view') AND name IN ('rides','ride_passengers',"
                                        "'tracks','track_points','track_calls','track_call_points')"),
                     6);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM sqlite_master WHERE type='index'"
                                        " AND name = 'rides_by_id'"),
                     1);
}

static void test_ride_round_trip(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_ride r = bond("0123456789abcdef4123456789abcdef");
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_add_ride(st, &r), 0);
    store_ride r2 = bond("fedcba9876543210412345678abcdef0");
    r2.has_location = r2.has_time = 0;
    r2.principal = NULL;
    r2.n_passengers = 0;
    assert_int_equal(store_add_ride(st, &r2), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);

    sqlite3 *db;
    assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT car_id, driver_id, type, lat, lng, time_seconds,"
                                        " time_nanos, principal, received_unix_ns,"
                                        " (SELECT group_concat(passenger_id, ',') FROM"
                                        "  (SELECT passenger_id FROM ride_passengers"
                                        "   WHERE ride_id = rides.id ORDER BY position))"
                                        " FROM rides WHERE id = ?",
                                        -1, &s, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(s, 1, r.id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(s, 0), 7);
    assert_string_equal((const char *)sqlite3_column_text(s, 1), "Bond");
    assert_int_equal(sqlite3_column_int(s, 2), 1);
    assert_true(sqlite3_column_double(s, 3) == 51.4871871);
    assert_true(sqlite3_column_double(s, 4) == -0.1266743);
    assert_int_equal(sqlite3_column_int64(s, 5), 1645369687);
    assert_int_equal(sqlite3_column_int64(s, 6), 915156117);
    assert_string_equal((const char *)sqlite3_column_text(s, 7), "spiffe://bond");
    assert_int_equal(sqlite3_column_int64(s, 8), 1700000000123456789);
    assert_string_equal((const char *)sqlite3_column_text(s, 9), "M,Q");
    sqlite3_reset(s);
    sqlite3_bind_text(s, 1, r2.id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_type(s, 3), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(s, 5), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(s, 7), SQLITE_NULL);
    assert_int_equal(sqlite3_column_type(s, 9), SQLITE_NULL);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_duplicate_id_fails_one_statement_only(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_ride r = bond("0123456789abcdef4123456789abcdef");
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_add_ride(st, &r), 0);
    assert_int_equal(store_add_ride(st, &r), -EEXIST);
    store_ride r2 = bond("1123456789abcdef4123456789abcdef");
    assert_int_equal(store_add_ride(st, &r2), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), 2);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM ride_passengers"), 4);
}

static void test_rollback_stores_nothing(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_ride r = bond("0123456789abcdef4123456789abcdef");
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_add_ride(st, &r), 0);
    store_rollback(st);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), 0);
}

static void fill_points(store_point *p, size_t n, uint64_t first)
{
    for (size_t i = 0; i < n; i++) {
        memset(&p[i], 0, sizeof p[i]);
        p[i].car_id = 7;
        p[i].has_location = 1;
        p[i].lat = 51.4871871 + 0.0001 * (double)(first + i);
        p[i].lng = -0.1266743 - 0.0001 * (double)(first + i);
        p[i].has_time = (first + i) % 2 == 0;
        p[i].time_seconds = 1645369687 + (int64_t)(first + i) * 17;
    }
}

static void test_track_stage_finish_discard(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_point p[100];
    /* Track A: 3 batches in 3 transactions, then stored. Track B staged
     * meanwhile, then discarded. */
    for (int b = 0; b < 3; b++) {
        fill_points(p, 100, (uint64_t)b * 100);
        assert_int_equal(store_begin(st), 0);
        assert_int_equal(store_stage_points(st, 11, (uint64_t)b * 100, p, 100), 0);
        assert_int_equal(store_stage_points(st, 12, (uint64_t)b * 100, p, 100), 0);
        assert_int_equal(store_commit(st), 0);
        /* written once, where they stay, but not visible before the end */
        assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 0);
        assert_int_equal(query_int(c->path, "SELECT count(*) FROM tracks"), 0);
        assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_call_points"),
                         (b + 1) * 200);
    }
    int64_t id = 0;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_finish_track(st, 11, 300, "p", 42, &id), 0);
    assert_int_equal(store_discard_stage(st, 12), 0);
    assert_int_equal(store_commit(st), 0);
    assert_true(id > 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 300);
    assert_int_equal(query_int(c->path, "SELECT max(seq) - min(seq) FROM track_points"), 299);
    assert_int_equal(query_int(c->path, "SELECT point_count FROM tracks"), 300);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points WHERE"
                                        " time_seconds IS NULL"),
                     150);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points WHERE seq = 250"
                                        " AND abs(lat - 51.5121871) < 1e-9"),
                     1);
    /* the discarded track B left nothing behind */
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_call_points"), 300);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_calls"), 1);

    /* An empty track is a tracks row and no points. */
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_finish_track(st, 13, 0, NULL, 43, &id), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM tracks"), 2);

    /* A count that does not match the staged points is refused. */
    fill_points(p, 10, 0);
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_stage_points(st, 14, 0, p, 10), 0);
    assert_int_equal(store_finish_track(st, 14, 11, NULL, 44, &id), -EPROTO);
    store_rollback(st);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM tracks"), 2);
}

/* A Track rolled back in its first transaction leaves nothing, and the
 * track id it had is not reused by a discard of that call. */
static void test_track_rollback_forgets_row(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_point p[10];
    fill_points(p, 10, 0);
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_stage_points(st, 1, 0, p, 10), 0);
    store_rollback(st);
    /* another call's track now gets the same rowid */
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_stage_points(st, 2, 0, p, 10), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(store_discard_stage(st, 1), 0); /* the failed call: no-op */
    int64_t id;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_finish_track(st, 2, 10, NULL, 1, &id), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 10);
}

/* Incomplete tracks of a dead process are deleted at open; those of a
 * sibling store in this process (a hot replace) are kept. */
static void test_orphan_tracks_deleted_at_open(void **state)
{
    ctx *c = *state;
    store *st = open_ok(c);
    store_point p[50];
    fill_points(p, 50, 0);
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_stage_points(st, 1, 0, p, 50), 0);
    assert_int_equal(store_stage_points(st, 2, 0, p, 50), 0);
    assert_int_equal(store_commit(st), 0);
    /* track of stage 2 pretends to be a dead process's */
    assert_int_equal(sqlite3_exec(store_sqlite(st),
                                  "UPDATE track_calls SET owner = owner + 1 WHERE id ="
                                  " (SELECT max(id) FROM track_calls)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_call_points"), 100);
    store *sibling = open_ok(c);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_call_points"), 50);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_calls"), 1);
    store_close(sibling);
    int64_t id;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_finish_track(st, 1, 50, NULL, 1, &id), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 50);
    assert_int_equal(query_int(c->path, "SELECT point_count FROM tracks"), 50);
}

/* The v1 schema, as migration 0 -> 1 created it. */
static const char v1_schema[] =
    "CREATE TABLE rides (id TEXT PRIMARY KEY NOT NULL, car_id INTEGER NOT NULL,"
    " driver_id TEXT NOT NULL, type INTEGER NOT NULL, lat REAL, lng REAL,"
    " time_seconds INTEGER, time_nanos INTEGER, principal TEXT,"
    " received_unix_ns INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE ride_passengers (ride_id TEXT NOT NULL REFERENCES rides(id),"
    " position INTEGER NOT NULL, passenger_id TEXT NOT NULL,"
    " PRIMARY KEY (ride_id, position)) WITHOUT ROWID;"
    "CREATE TABLE tracks (id INTEGER PRIMARY KEY, point_count INTEGER NOT NULL,"
    " principal TEXT, received_unix_ns INTEGER NOT NULL);"
    "CREATE TABLE track_points (track_id INTEGER NOT NULL REFERENCES tracks(id),"
    " seq INTEGER NOT NULL, car_id INTEGER NOT NULL, lat REAL, lng REAL,"
    " time_seconds INTEGER, time_nanos INTEGER, PRIMARY KEY (track_id, seq)) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

static void test_migrate_v1_keeps_data(void **state)
{
    ctx *c = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, v1_schema, NULL, NULL, NULL), SQLITE_OK);
    /* 300 rides: passengers in reverse insertion order, one with a quote
     * and a backslash, every third without passengers; 2 tracks. */
    assert_int_equal(
        sqlite3_exec(db,
                     "BEGIN;"
                     "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 299)"
                     " INSERT INTO rides SELECT printf('%032x', i * 7919), i, 'driver' || i, i % 2,"
                     " CASE WHEN i % 5 THEN 1.5 END, 2.5, 1645369687 + i, i, NULL,"
                     " 1700000000000000000 + i FROM n;"
                     "INSERT INTO ride_passengers SELECT id, 1, 'Q\"\\' || car_id FROM rides"
                     " WHERE car_id % 3 != 0;"
                     "INSERT INTO ride_passengers SELECT id, 0, 'M' || car_id FROM rides"
                     " WHERE car_id % 3 != 0;"
                     "INSERT INTO tracks VALUES (1, 3, 'p', 5), (2, 0, NULL, 6);"
                     "INSERT INTO track_points VALUES (1, 0, 7, 1, 2, 3, 4), (1, 1, 7, 1, 2, NULL, NULL),"
                     " (1, 2, 7, NULL, NULL, 3, 4);"
                     "COMMIT;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    store *st = open_ok(c);
    assert_int_equal(query_int(c->path, "PRAGMA user_version"), 2);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), 300);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM ride_passengers"), 400);
    /* in position order, escaped right, and the JSON column itself */
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides r WHERE car_id % 3 != 0 AND"
                                        " (SELECT group_concat(passenger_id, '|') FROM"
                                        "  (SELECT passenger_id FROM ride_passengers p"
                                        "   WHERE p.ride_id = r.id ORDER BY position))"
                                        " = 'M' || car_id || '|Q\"\\' || car_id"),
                     200);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides WHERE car_id % 3 = 0 AND"
                                        " passengers = '[]'"),
                     100);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides WHERE id = printf('%032x',"
                                        " 299 * 7919) AND driver_id = 'driver299' AND type = 1"
                                        " AND lat = 1.5 AND time_nanos = 299"
                                        " AND received_unix_ns = 1700000000000000299"),
                     1);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides WHERE lat IS NULL"), 60);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM tracks"), 2);
    assert_int_equal(query_int(c->path, "SELECT sum(point_count) FROM tracks"), 3);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points WHERE track_id = 1"
                                        " AND time_seconds IS NULL"),
                     1);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 3);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM pragma_integrity_check"
                                        " WHERE integrity_check = 'ok'"),
                     1);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);

    /* New rides and tracks go on after the migrated ones; ids stay unique. */
    store_ride r = bond("00000000000000000000000000001eef"); /* 1 * 7919, migrated */
    store_ride r2 = bond("abcdef0123456789abcdef0123456789");
    store_point p[4];
    fill_points(p, 4, 0);
    int64_t id;
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_add_ride(st, &r), -EEXIST);
    assert_int_equal(store_add_ride(st, &r2), 0);
    assert_int_equal(store_stage_points(st, 1, 0, p, 4), 0);
    assert_int_equal(store_finish_track(st, 1, 4, NULL, 7, &id), 0);
    assert_int_equal(store_commit(st), 0);
    assert_int_equal(id, 3);
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), 301);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM ride_passengers WHERE ride_id ="
                                        " 'abcdef0123456789abcdef0123456789'"),
                     2);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM track_points"), 7);
}

static void expect_open_fails(const char *path, const char *want)
{
    store *st = (store *)1;
    char err[512] = "";
    int rc = store_open(path, STORE_SYNC_FULL, &st, err, sizeof err);
    assert_true(rc < 0);
    assert_null(st);
    if (strstr(err, want) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
    assert_null(strchr(err, '\n'));
}

/* A hot replace opens the store while the old instance's writer commits
 * nonstop: with the schema current, opening must not wait for the write
 * lock (it used to, and failed after the busy timeout). */
static void test_open_while_another_writes(void **state)
{
    ctx *c = *state;
    store_close(open_ok(c)); /* the schema is current from here on */
    sqlite3 *other = NULL;
    assert_int_equal(sqlite3_open(c->path, &other), SQLITE_OK);
    assert_int_equal(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    store *st = open_ok(c);
    assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    store_ride r = bond("0123456789abcdef4123456789abcde1");
    assert_int_equal(store_begin(st), 0);
    assert_int_equal(store_add_ride(st, &r), 0);
    assert_int_equal(store_commit(st), 0);
    store_close(st);
}

static void test_missing_directory(void **state)
{
    ctx *c = *state;
    char path[192];
    snprintf(path, sizeof path, "%s/no/such/dir/rides.db", c->dir);
    expect_open_fails(path, "cannot open database ");
    expect_open_fails(path, "/no/such/dir/rides.db: unable to open database file; check that "
                            "the directory exists");
}

static void test_not_a_database(void **state)
{
    ctx *c = *state;
    FILE *f = fopen(c->path, "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an SQLite database, it is a text file. ", f);
    fclose(f);
    expect_open_fails(c->path, "file is not a database");
}

static void test_newer_schema_refused(void **state)
{
    ctx *c = *state;
    store_close(open_ok(c));
    sqlite3 *db;
    assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    expect_open_fails(c->path, "has schema version 99, this plugin knows up to 2");
}

/* Drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH from this process, so
 * that root, too, is held to file modes. 0, or -1 if the kernel refused. */
static int drop_dac_override(void)
{
    struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return -1;
    data[0].effective &= ~(1u << CAP_DAC_OVERRIDE | 1u << CAP_DAC_READ_SEARCH);
    return (int)syscall(SYS_capset, &hdr, data);
}

static void test_read_only_file(void **state)
{
    ctx *c = *state;
    store_close(open_ok(c));
    assert_int_equal(chmod(c->path, 0444), 0);
    /* In a child: root ignores file modes unless it drops the capability,
     * and the drop must not outlive this test. */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (geteuid() == 0 && drop_dac_override() != 0)
            _exit(3);
        store *st = NULL;
        char err[512] = "";
        int rc = store_open(c->path, STORE_SYNC_FULL, &st, err, sizeof err);
        if (rc == 0)
            _exit(1);
        fprintf(stderr, "  (read-only file gives: %s)\n", err);
        _exit(strstr(err, "the file is read-only; make the file and its directory writable")
                  ? 0 : 2);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 3)
        skip(); /* no capability to drop (not root, or a locked-down sandbox) */
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_sync_names(void **state)
{
    (void)state;
    assert_int_equal(store_sync_parse("full"), STORE_SYNC_FULL);
    assert_int_equal(store_sync_parse("NORMAL"), STORE_SYNC_NORMAL);
    assert_int_equal(store_sync_parse("Off"), STORE_SYNC_OFF);
    assert_int_equal(store_sync_parse("extra"), -1);
    assert_int_equal(store_sync_parse(""), -1);
    assert_string_equal(store_sync_name(STORE_SYNC_NORMAL), "NORMAL");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_and_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ride_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_id_fails_one_statement_only, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rollback_stores_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_track_stage_finish_discard, setup, teardown),
        cmocka_unit_test_setup_teardown(test_track_rollback_forgets_row, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphan_tracks_deleted_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_migrate_v1_keeps_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_while_another_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_only_file, setup, teardown),
        cmocka_unit_test(test_sync_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
