/* The Rides store: see store.h. */
#include "store.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sqlite3.h>

/* Migration N takes the schema from user_version N to N + 1. Append only:
 * a database carries its version, and every older one must still migrate. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    /* 0 -> 1: rides, their passengers, tracks and their points. */
    "CREATE TABLE rides ("
    "  id TEXT PRIMARY KEY NOT NULL,"      /* uuid4, 32 lowercase hex */
    "  car_id INTEGER NOT NULL,"
    "  driver_id TEXT NOT NULL,"
    "  type INTEGER NOT NULL,"             /* RideType: 0 REGULAR, 1 POOL */
    "  lat REAL, lng REAL,"                /* NULL: request had no location */
    "  time_seconds INTEGER, time_nanos INTEGER," /* NULL: no time */
    "  principal TEXT,"                    /* NULL: no interceptor set one */
    "  received_unix_ns INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE ride_passengers ("
    "  ride_id TEXT NOT NULL REFERENCES rides(id),"
    "  position INTEGER NOT NULL,"
    "  passenger_id TEXT NOT NULL,"
    "  PRIMARY KEY (ride_id, position)"
    ") WITHOUT ROWID;"
    "CREATE TABLE tracks ("
    "  id INTEGER PRIMARY KEY,"
    "  point_count INTEGER NOT NULL,"
    "  principal TEXT,"
    "  received_unix_ns INTEGER NOT NULL" /* when the client half-closed */
    ");"
    "CREATE TABLE track_points ("
    "  track_id INTEGER NOT NULL REFERENCES tracks(id),"
    "  seq INTEGER NOT NULL,"              /* 0-based message index */
    "  car_id INTEGER NOT NULL,"
    "  lat REAL, lng REAL,"
    "  time_seconds INTEGER, time_nanos INTEGER,"
    "  PRIMARY KEY (track_id, seq)"
    ") WITHOUT ROWID;",
};

static const char stage_sql[] =
    "CREATE TEMP TABLE track_stage ("
    "  stage_id INTEGER NOT NULL, seq INTEGER NOT NULL, car_id INTEGER NOT NULL,"
    "  lat REAL, lng REAL, time_seconds INTEGER, time_nanos INTEGER,"
    "  PRIMARY KEY (stage_id, seq)"
    ") WITHOUT ROWID";

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_RIDE,
    S_PASSENGER,
    S_STAGE,
    S_TRACK,
    S_MOVE,
    S_DISCARD,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_RIDE] = "INSERT INTO rides (id, car_id, driver_id, type, lat, lng, time_seconds,"
               " time_nanos, principal, received_unix_ns)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    [S_PASSENGER] = "INSERT INTO ride_passengers (ride_id, position, passenger_id)"
                    " VALUES (?1, ?2, ?3)",
    [S_STAGE] = "INSERT INTO temp.track_stage (stage_id, seq, car_id, lat, lng,"
                " time_seconds, time_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_TRACK] = "INSERT INTO tracks (point_count, principal, received_unix_ns)"
                " VALUES (?1, ?2, ?3)",
    [S_MOVE] = "INSERT INTO track_points (track_id, seq, car_id, lat, lng, time_seconds,"
               " time_nanos) SELECT ?1, seq, car_id, lat, lng, time_seconds, time_nanos"
               " FROM temp.track_stage WHERE stage_id = ?2 ORDER BY seq",
    [S_DISCARD] = "DELETE FROM temp.track_stage WHERE stage_id = ?1",
};

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[S_COUNT];
    int code;         /* SQLite code of the last error */
    char error[512];
};

int store_sync_parse(const char *s)
{
    if (strcasecmp(s, "OFF") == 0)
        return STORE_SYNC_OFF;
    if (strcasecmp(s, "NORMAL") == 0)
        return STORE_SYNC_NORMAL;
    if (strcasecmp(s, "FULL") == 0)
        return STORE_SYNC_FULL;
    return -1;
}

const char *store_sync_name(store_sync s)
{
    return s == STORE_SYNC_OFF ? "OFF" : s == STORE_SYNC_NORMAL ? "NORMAL" : "FULL";
}

/* What an operator can do about a SQLite error code. */
static const char *hint(int code)
{
    switch (code & 0xff) {
    case SQLITE_CANTOPEN:
        return "check that the directory exists and the host's user may write to it";
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return "make the file and its directory writable for the host's user, "
               "or set db in [plugin.rides] to another path";
    case SQLITE_FULL:
        return "free disk space";
    case SQLITE_NOTADB:
        return "the file is not an SQLite database; set db in [plugin.rides] to another path";
    case SQLITE_CORRUPT:
        return "the database file is damaged; restore it from a backup";
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return "another process holds a lock on the database";
    case SQLITE_IOERR:
        return "the disk reported an I/O error";
    default:
        return NULL;
    }
}

/* Records "<what>: <sqlite message>[; <hint>]" and returns -EIO. */
static int set_error(store *st, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(store *st, int code, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    st->code = code;
    const char *h = hint(code);
    snprintf(st->error, sizeof st->error, "%s: %s%s%s", what,
             st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(code), h ? "; " : "",
             h ? h : "");
    return -EIO;
}

/* Runs one statement of SQL without results; 0 or -EIO. */
static int exec(store *st, const char *sql, const char *what)
{
    int rc = sqlite3_exec(st->db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return set_error(st, rc, "%s %s", what, st->path);
    return 0;
}

/* Runs a PRAGMA that returns one value and copies it as text. */
static int pragma_text(store *st, const char *sql, char *out, size_t len)
{
    sqlite3_stmt *s;
    int rc = sqlite3_prepare_v2(st->db, sql, -1, &s, NULL);
    if (rc != SQLITE_OK)
        return set_error(st, rc, "cannot read %s", st->path);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const unsigned char *t = sqlite3_column_text(s, 0);
        snprintf(out, len, "%s", t ? (const char *)t : "");
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        out[0] = '\0';
        rc = SQLITE_OK;
    }
    sqlite3_finalize(s);
    if (rc != SQLITE_OK)
        return set_error(st, rc, "cannot read %s", st->path);
    return 0;
}

static int migrate(store *st)
{
    char v[32];
    int rc = pragma_text(st, "PRAGMA user_version", v, sizeof v);
    if (rc)
        return rc;
    long have = strtol(v, NULL, 10);
    if (have < 0 || have > STORE_SCHEMA_VERSION) {
        snprintf(st->error, sizeof st->error,
                 "database %s has schema version %ld, this plugin knows up to %d; "
                 "use a newer rides plugin or another db path",
                 st->path, have, STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    /* BEGIN IMMEDIATE also when nothing is to migrate: it proves at start
     * that the file, its WAL and the directory are writable. */
    if ((rc = exec(st, "BEGIN IMMEDIATE", "cannot write database")) != 0)
        return rc;
    for (long n = have; n < STORE_SCHEMA_VERSION; n++) {
        char bump[64];
        snprintf(bump, sizeof bump, "PRAGMA user_version = %ld", n + 1);
        if ((rc = exec(st, migrations[n], "cannot migrate the schema of")) != 0 ||
            (rc = exec(st, bump, "cannot migrate the schema of")) != 0) {
            sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
    }
    if ((rc = exec(st, "COMMIT", "cannot write database")) != 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return 0;
}

int store_set_sync(store *st, store_sync sync)
{
    char sql[48];
    snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", store_sync_name(sync));
    return exec(st, sql, "cannot set synchronous on");
}

static int configure(store *st, store_sync sync)
{
    int rc;
    if (sqlite3_db_readonly(st->db, "main") == 1) {
        snprintf(st->error, sizeof st->error,
                 "cannot write database %s: the file is read-only; %s", st->path,
                 hint(SQLITE_READONLY));
        return -EROFS;
    }
    sqlite3_busy_timeout(st->db, 5000);
    char mode[16];
    if ((rc = pragma_text(st, "PRAGMA journal_mode = WAL", mode, sizeof mode)) != 0)
        return rc;
    if (strcasecmp(mode, "wal") != 0) {
        snprintf(st->error, sizeof st->error,
                 "cannot switch database %s to WAL mode (it stays in %s mode); %s",
                 st->path, mode, hint(SQLITE_CANTOPEN));
        return -EIO;
    }
    if ((rc = store_set_sync(st, sync)) != 0)
        return rc;
    /* Keep the WAL file small after a big Track commit; staged points go
     * to a temporary file, never to memory beyond the page cache. */
    if ((rc = exec(st, "PRAGMA journal_size_limit = 67108864", "cannot configure")) ||
        (rc = exec(st, "PRAGMA temp_store = FILE", "cannot configure")))
        return rc;
    if ((rc = migrate(st)) != 0)
        return rc;
    if ((rc = exec(st, stage_sql, "cannot create the staging table of")) != 0)
        return rc;
    for (int i = 0; i < S_COUNT; i++) {
        rc = sqlite3_prepare_v3(st->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                                &st->stmt[i], NULL);
        if (rc != SQLITE_OK)
            return set_error(st, rc, "cannot prepare statements on %s", st->path);
    }
    return 0;
}

int store_open(const char *path, store_sync sync, store **out, char *err, size_t errlen)
{
    *out = NULL;
    store *st = calloc(1, sizeof *st);
    if (st == NULL || (st->path = strdup(path)) == NULL) {
        free(st);
        snprintf(err, errlen, "cannot open database %s: out of memory", path);
        return -ENOMEM;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &st->db, flags, NULL);
    if (rc != SQLITE_OK) {
        set_error(st, rc, "cannot open database %s", path);
        rc = -EIO;
    } else {
        sqlite3_extended_result_codes(st->db, 1);
        rc = configure(st, sync);
    }
    if (rc != 0) {
        snprintf(err, errlen, "%s", st->error);
        store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void store_close(store *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    sqlite3_close(st->db);
    free(st->path);
    free(st);
}

/* Steps a prepared statement to completion and resets it. */
static int run(store *st, sqlite3_stmt *s, const char *what)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc == SQLITE_DONE)
        return 0;
    set_error(st, rc, "%s in %s", what, st->path);
    /* A constraint undoes the one statement; anything else (full disk,
     * I/O error, lost lock) dooms the transaction. */
    if ((rc & 0xff) == SQLITE_CONSTRAINT && !sqlite3_get_autocommit(st->db))
        return -EEXIST;
    return -EIO;
}

int store_begin(store *st)
{
    return run(st, st->stmt[S_BEGIN], "cannot begin a transaction");
}

int store_commit(store *st)
{
    int rc = run(st, st->stmt[S_COMMIT], "cannot commit");
    return rc == -EEXIST ? -EIO : rc;
}

void store_rollback(store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->stmt[S_ROLLBACK]);
        sqlite3_reset(st->stmt[S_ROLLBACK]);
    }
}

static void bind_opt_double(sqlite3_stmt *s, int i, int has, double v)
{
    if (has)
        sqlite3_bind_double(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

static void bind_opt_int(sqlite3_stmt *s, int i, int has, int64_t v)
{
    if (has)
        sqlite3_bind_int64(s, i, v);
    else
        sqlite3_bind_null(s, i);
}

int store_add_ride(store *st, const store_ride *r)
{
    sqlite3_stmt *s = st->stmt[S_RIDE];
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->car_id);
    sqlite3_bind_text(s, 3, r->driver_id, -1, SQLITE_STATIC);
    sqlite3_bind_int(s, 4, r->type);
    bind_opt_double(s, 5, r->has_location, r->lat);
    bind_opt_double(s, 6, r->has_location, r->lng);
    bind_opt_int(s, 7, r->has_time, r->time_seconds);
    bind_opt_int(s, 8, r->has_time, r->time_nanos);
    if (r->principal)
        sqlite3_bind_text(s, 9, r->principal, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 10, r->received_unix_ns);
    int rc = run(st, s, "cannot store ride");
    if (rc)
        return rc;
    s = st->stmt[S_PASSENGER];
    for (size_t i = 0; i < r->n_passengers; i++) {
        sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)i);
        sqlite3_bind_text(s, 3, r->passenger_ids[i], -1, SQLITE_STATIC);
        /* The ride row went in, so a failure here is storage, not a
         * duplicate: the transaction must not commit half a ride. */
        if ((rc = run(st, s, "cannot store passengers")) != 0)
            return -EIO;
    }
    return 0;
}

int store_stage_points(store *st, uint64_t stage_id, uint64_t first_seq,
                       const store_point *pts, size_t n)
{
    sqlite3_stmt *s = st->stmt[S_STAGE];
    for (size_t i = 0; i < n; i++) {
        const store_point *p = &pts[i];
        sqlite3_bind_int64(s, 1, (sqlite3_int64)stage_id);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)(first_seq + i));
        sqlite3_bind_int64(s, 3, p->car_id);
        bind_opt_double(s, 4, p->has_location, p->lat);
        bind_opt_double(s, 5, p->has_location, p->lng);
        bind_opt_int(s, 6, p->has_time, p->time_seconds);
        bind_opt_int(s, 7, p->has_time, p->time_nanos);
        int rc = run(st, s, "cannot stage track points");
        if (rc)
            return -EIO;
    }
    return 0;
}

int store_finish_track(store *st, uint64_t stage_id, uint64_t count,
                       const char *principal, int64_t received_unix_ns, int64_t *track_id)
{
    sqlite3_stmt *s = st->stmt[S_TRACK];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)count);
    if (principal)
        sqlite3_bind_text(s, 2, principal, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, received_unix_ns);
    int rc = run(st, s, "cannot store track");
    if (rc)
        return -EIO;
    int64_t id = sqlite3_last_insert_rowid(st->db);
    s = st->stmt[S_MOVE];
    sqlite3_bind_int64(s, 1, id);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)stage_id);
    if ((rc = run(st, s, "cannot store track points")) != 0)
        return -EIO;
    uint64_t moved = (uint64_t)sqlite3_changes64(st->db);
    if (moved != count) {
        snprintf(st->error, sizeof st->error,
                 "track of %llu points has %llu staged points (a bug in the rides plugin)",
                 (unsigned long long)count, (unsigned long long)moved);
        return -EPROTO;
    }
    if ((rc = store_discard_stage(st, stage_id)) != 0)
        return rc;
    if (track_id)
        *track_id = id;
    return 0;
}

int store_discard_stage(store *st, uint64_t stage_id)
{
    sqlite3_stmt *s = st->stmt[S_DISCARD];
    sqlite3_bind_int64(s, 1, (sqlite3_int64)stage_id);
    return run(st, s, "cannot discard staged points") ? -EIO : 0;
}

const char *store_error(const store *st)
{
    return st->error;
}

const char *store_reason(const store *st)
{
    return sqlite3_errstr(st->code);
}

const char *store_path(const store *st)
{
    return st->path;
}

const char *store_filename(store *st)
{
    const char *f = sqlite3_db_filename(st->db, "main");
    return f && *f ? f : st->path;
}

sqlite3 *store_sqlite(store *st)
{
    return st->db;
}
