/* walbuf: the WAL write-gathering VFS, on real files in a temporary
 * directory: what reaches the file when, what SQLite and other readers
 * see, and that it stays out of the way unless synchronous is FULL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"
#include "walbuf.h"

typedef struct ctx {
    char dir[64];
    char path[128];
} ctx;

static int setup(void **state)
{
    ctx *c = calloc(1, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/rides-walbuf-XXXXXX");
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

static long long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
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

/* Large and small commits through the VFS with buffering on, read back
 * by another connection (default VFS) as soon as COMMIT returned; a
 * commit larger than WALBUF_MAX and than the 128 KiB a unix VFS write
 * takes; a rolled-back transaction that spilled frames; a clean file. */
static void test_commits_read_back_by_other_connections(void **state)
{
    ctx *c = *state;
    const char *name = walbuf_vfs_acquire();
    assert_non_null(name);
    assert_non_null(sqlite3_vfs_find(name));
    char wal[160];
    snprintf(wal, sizeof wal, "%s-wal", c->path);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(c->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, name),
                     SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                                      "PRAGMA wal_autocheckpoint=0;"
                                      "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(walbuf_set_buffering(db, 1), 0);
    long long before = file_size(wal);
    assert_int_equal(sqlite3_exec(db, "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
                                      " SELECT i + 1 FROM n WHERE i < 1500)"
                                      " INSERT INTO t SELECT i, randomblob(4000) FROM n; COMMIT",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_true(file_size(wal) > before + 6000000);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM t"), 1500);
    assert_int_equal(query_int(c->path, "SELECT sum(length(v)) FROM t"), 1500 * 4000);
    /* Small commits too, each visible as soon as COMMIT returned. */
    for (int i = 0; i < 50; i++) {
        char sql[96];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, randomblob(10))", 10000 + i);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(query_int(c->path, "SELECT count(*) FROM t"), 1500 + i + 1);
    }
    /* A rolled-back transaction that spilled frames leaves nothing. */
    assert_int_equal(sqlite3_exec(db, "PRAGMA cache_size = 10; BEGIN;"
                                      "UPDATE t SET v = randomblob(4000) WHERE k <= 300;"
                                      "ROLLBACK; PRAGMA cache_size = -2000",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(query_int(c->path, "SELECT sum(length(v)) FROM t"), 1500 * 4000 + 500);
    assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(s, 0), "ok");
    sqlite3_finalize(s);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    walbuf_vfs_release();
    /* The last release unregistered it. */
    assert_null(sqlite3_vfs_find(name));
}

/* A connection not opened through the VFS is left alone. */
static void test_other_connections_untouched(void **state)
{
    ctx *c = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(c->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t (k)", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    assert_int_equal(walbuf_set_buffering(db, 1), -1);
    sqlite3_close(db);
}

static store_ride ride(int i)
{
    store_ride r = {0};
    snprintf(r.id, sizeof r.id, "%032x", i);
    r.car_id = i;
    r.driver_id = "Bond";
    r.received_unix_ns = 1;
    return r;
}

/* With NORMAL or OFF no commit syncs, so nothing may wait in a buffer: a
 * reader must find every committed ride at once. Switching to FULL and
 * back keeps that true. */
static void test_store_buffers_only_with_full(void **state)
{
    ctx *c = *state;
    const store_sync modes[] = {STORE_SYNC_NORMAL, STORE_SYNC_FULL, STORE_SYNC_OFF,
                                STORE_SYNC_FULL, STORE_SYNC_NORMAL};
    store *st = NULL;
    char err[512];
    assert_int_equal(store_open(c->path, STORE_SYNC_NORMAL, &st, err, sizeof err), 0);
    int n = 0;
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        assert_int_equal(store_set_sync(st, modes[m]), 0);
        for (int k = 0; k < 40; k++) {
            assert_int_equal(store_begin(st), 0);
            for (int j = 0; j < 25; j++) {
                store_ride r = ride(n++);
                assert_int_equal(store_add_ride(st, &r), 0);
            }
            assert_int_equal(store_commit(st), 0);
            assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), n);
        }
    }
    store_close(st);
    assert_int_equal(query_int(c->path, "SELECT count(*) FROM rides"), n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commits_read_back_by_other_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_connections_untouched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_buffers_only_with_full, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
