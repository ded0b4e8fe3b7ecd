/* The Rides store: see store.h. */
#include "store.h"
#include "walbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

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

    /* 1 -> 2: storage laid out for appends (docs/rides.md, "Schema v2").
     * rides becomes a rowid table (new rides go to the right-most page)
     * with its passengers as a JSON array in the row, so a ride is one
     * INSERT; the random uuid lives only in the narrow index rides_by_id.
     * ride_passengers stays readable as a view of that array.
     * Track points are written once, straight into track_call_points,
     * under a track_calls row that is incomplete (owner set) until the
     * half-close; the views tracks and track_points show complete tracks
     * only, as the v1 tables did. */
    "CREATE TABLE rides_v2 ("
    "  id TEXT NOT NULL,"                  /* uuid4, 32 lowercase hex */
    "  car_id INTEGER NOT NULL,"
    "  driver_id TEXT NOT NULL,"
    "  passengers TEXT NOT NULL,"          /* JSON array of passenger ids, in order */
    "  type INTEGER NOT NULL,"
    "  lat REAL, lng REAL,"
    "  time_seconds INTEGER, time_nanos INTEGER,"
    "  principal TEXT,"
    "  received_unix_ns INTEGER NOT NULL"
    ");"
    "INSERT INTO rides_v2 (id, car_id, driver_id, passengers, type, lat, lng,"
    "    time_seconds, time_nanos, principal, received_unix_ns)"
    "  SELECT r.id, r.car_id, r.driver_id,"
    "    (SELECT json_group_array(passenger_id) FROM"
    "       (SELECT passenger_id FROM ride_passengers p WHERE p.ride_id = r.id"
    "        ORDER BY position)),"
    "    r.type, r.lat, r.lng, r.time_seconds, r.time_nanos, r.principal,"
    "    r.received_unix_ns"
    "  FROM rides r ORDER BY r.received_unix_ns, r.id;"
    "DROP TABLE ride_passengers;"
    "DROP TABLE rides;"
    "ALTER TABLE rides_v2 RENAME TO rides;"
    "CREATE UNIQUE INDEX rides_by_id ON rides (id);"
    "CREATE VIEW ride_passengers (ride_id, position, passenger_id) AS"
    "  SELECT r.id, p.key, p.value FROM rides r, json_each(r.passengers) p;"
    "ALTER TABLE tracks RENAME TO track_calls;"
    /* NULL: complete. Else the process writing it (store_owner()). */
    "ALTER TABLE track_calls ADD COLUMN owner INTEGER;"
    "CREATE INDEX track_calls_incomplete ON track_calls (owner) WHERE owner IS NOT NULL;"
    "ALTER TABLE track_points RENAME TO track_call_points;"
    "CREATE VIEW tracks AS"
    "  SELECT id, point_count, principal, received_unix_ns FROM track_calls"
    "  WHERE owner IS NULL;"
    "CREATE VIEW track_points AS"
    "  SELECT p.track_id, p.seq, p.car_id, p.lat, p.lng, p.time_seconds, p.time_nanos"
    "  FROM track_calls t JOIN track_call_points p ON p.track_id = t.id"
    "  WHERE t.owner IS NULL;",
};

enum stmt_id {
    S_BEGIN,
    S_COMMIT,
    S_ROLLBACK,
    S_RIDE,
    S_TRACK_OPEN,
    S_POINT,
    S_TRACK_CLOSE,
    S_TRACK_EMPTY,
    S_DROP_POINTS,
    S_DROP_TRACK,
    S_COUNT
};

static const char *const stmt_sql[S_COUNT] = {
    [S_BEGIN] = "BEGIN IMMEDIATE",
    [S_COMMIT] = "COMMIT",
    [S_ROLLBACK] = "ROLLBACK",
    [S_RIDE] = "INSERT INTO rides (id, car_id, driver_id, passengers, type, lat, lng,"
               " time_seconds, time_nanos, principal, received_unix_ns)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    /* An incomplete track: point_count and received_unix_ns are set for
     * real by S_TRACK_CLOSE. */
    [S_TRACK_OPEN] = "INSERT INTO track_calls (point_count, received_unix_ns, owner)"
                     " VALUES (0, 0, ?1)",
    [S_POINT] = "INSERT INTO track_call_points (track_id, seq, car_id, lat, lng,"
                " time_seconds, time_nanos) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [S_TRACK_CLOSE] = "UPDATE track_calls SET point_count = ?2, principal = ?3,"
                      " received_unix_ns = ?4, owner = NULL"
                      " WHERE id = ?1 AND owner IS NOT NULL",
    [S_TRACK_EMPTY] = "INSERT INTO track_calls (point_count, principal, received_unix_ns)"
                      " VALUES (?1, ?2, ?3)",
    /* Only ever an incomplete track's rows. */
    [S_DROP_POINTS] = "DELETE FROM track_call_points WHERE track_id = ?1"
                      " AND (SELECT owner FROM track_calls WHERE id = ?1) IS NOT NULL",
    [S_DROP_TRACK] = "DELETE FROM track_calls WHERE id = ?1 AND owner IS NOT NULL",
};

/* A Track call being written: its incomplete track_calls row. */
typedef struct open_track {
    uint64_t stage_id;
    int64_t track_id;
    uint64_t points;  /* inserted under it so far */
    int uncommitted;  /* its row was inserted in the open transaction */
    int closed;       /* finished or discarded in the open transaction */
} open_track;

struct store {
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmt[S_COUNT];
    int code;         /* SQLite code of the last error */
    char error[512];
    int64_t owner;    /* marks this process's incomplete tracks */
    open_track *open; /* the Track calls in progress (a few; linear search) */
    size_t n_open, cap_open;
    char *json;       /* scratch for a ride's passengers array */
    size_t json_cap;
    int wal_pages;    /* frames in the WAL after the last commit */
    store_sync sync;
    int vfs_held;     /* opened through walbuf's VFS (released at close) */
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

/* This process, as the owner of incomplete tracks: a hash of the boot,
 * the pid and the process's start time, so that a new process (after a
 * crash or restart) tells its predecessors' leftovers from the tracks a
 * sibling instance in this same process (the old build draining during a
 * hot replace) is still writing. */
static int64_t process_owner(void)
{
    char buf[1024] = "";
    size_t n = 0;
    FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
    if (f) {
        n = fread(buf, 1, 40, f);
        fclose(f);
    }
    if ((f = fopen("/proc/self/stat", "r")) != NULL) {
        n += fread(buf + n, 1, sizeof buf - 1 - n, f);
        fclose(f);
    }
    buf[n] = '\0';
    /* Field 22 (starttime) follows the parenthesised command name. */
    unsigned long long start = 0;
    const char *rp = strrchr(buf, ')');
    if (rp)
        sscanf(rp + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d"
                       " %*d %*d %llu", &start);
    char id[96];
    snprintf(id, sizeof id, "%.36s/%ld/%llu", buf, (long)getpid(), start);
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (const char *c = id; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ull;
    h &= INT64_MAX;
    return h ? (int64_t)h : 1;
}

/* Deletes the incomplete tracks of processes that are gone: a Track they
 * were receiving when they died or were killed. */
static int drop_orphan_tracks(store *st)
{
    char sql[320];
    snprintf(sql, sizeof sql,
             "DELETE FROM track_call_points WHERE track_id IN (SELECT id FROM track_calls"
             " WHERE owner IS NOT NULL AND owner != %lld);"
             "DELETE FROM track_calls WHERE owner IS NOT NULL AND owner != %lld",
             (long long)st->owner, (long long)st->owner);
    return exec(st, sql, "cannot delete unfinished tracks from");
}

/* Whether another process left unfinished tracks (read only). */
static int has_orphan_tracks(store *st, int *found)
{
    sqlite3_stmt *s = NULL;
    int rc = sqlite3_prepare_v2(st->db,
                                "SELECT EXISTS (SELECT 1 FROM track_calls"
                                " WHERE owner IS NOT NULL AND owner != ?1)",
                                -1, &s, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(s, 1, (sqlite3_int64)st->owner);
        rc = sqlite3_step(s);
        if (rc == SQLITE_ROW) {
            *found = sqlite3_column_int(s, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(s);
    return rc == SQLITE_OK ? 0 : set_error(st, rc, "cannot read database %s", st->path);
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
    /* Nothing to write: no write lock either. During a hot replace the
     * old instance's writer still commits batch after batch, and a write
     * lock asked for here (busy handler polling every 100 ms) can miss
     * every gap between its transactions until the busy timeout ends,
     * refusing the replace. Writability is proven without it: the file
     * opened read-write (configure) and reading created or opened the WAL
     * and its index read-write next to it. */
    if (have == STORE_SCHEMA_VERSION) {
        int orphans = 0;
        if ((rc = has_orphan_tracks(st, &orphans)) != 0 || !orphans)
            return rc;
    }
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
    if ((rc = drop_orphan_tracks(st)) != 0) {
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
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
    int rc = exec(st, sql, "cannot set synchronous on");
    if (rc == 0) {
        st->sync = sync;
        /* Only FULL syncs every commit, which is what makes gathering a
         * commit's WAL writes invisible to readers (walbuf.h). Before the
         * WAL is open this changes nothing: configure calls it again. */
        walbuf_set_buffering(st->db, sync == STORE_SYNC_FULL);
    }
    return rc;
}

/* Called by SQLite after each commit with the WAL's size in frames.
 * Installing it also turns SQLite's automatic checkpoint off. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((store *)arg)->wal_pages = pages;
    return SQLITE_OK;
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
    /* journal_size_limit: the WAL file shrinks back after a burst.
     * cache_size: 8 MiB instead of 2, so the random pages of the id index
     * of a few hundred thousand rides stay cached (no pread per ride).
     * wal_autocheckpoint off: SQLite would checkpoint inside COMMIT, on
     * the path of every call in the batch; store_checkpoint runs it after
     * the answers instead (writer.c), tracked by wal_hook below. */
    if ((rc = exec(st, "PRAGMA journal_size_limit = 67108864", "cannot configure")) ||
        (rc = exec(st, "PRAGMA cache_size = -8192", "cannot configure")))
        return rc;
    sqlite3_wal_hook(st->db, wal_hook, st);
    st->owner = process_owner();
    if ((rc = migrate(st)) != 0)
        return rc;
    walbuf_set_buffering(st->db, st->sync == STORE_SYNC_FULL); /* the WAL is open now */
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
    const char *vfs = walbuf_vfs_acquire(); /* NULL: SQLite's default, unbuffered */
    st->vfs_held = vfs != NULL;
    int rc = sqlite3_open_v2(path, &st->db, flags, vfs);
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
    /* Every call has ended: a track still open lost its call without a
     * discard (e.g. a storage failure answered it). Best effort; what
     * stays is deleted by the next process's store_open. */
    while (st->n_open > 0 && st->stmt[S_DROP_TRACK] != NULL)
        if (store_discard_stage(st, st->open[0].stage_id) != 0)
            break;
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(st->stmt[i]);
    /* The VFS may go only with the last connection using it. */
    if (sqlite3_close(st->db) == SQLITE_OK && st->vfs_held)
        walbuf_vfs_release();
    free(st->open);
    free(st->json);
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
    if (rc == 0)
        for (size_t i = st->n_open; i-- > 0;) {
            st->open[i].uncommitted = 0;
            if (st->open[i].closed)
                st->open[i] = st->open[--st->n_open];
        }
    return rc == -EEXIST ? -EIO : rc;
}

/* A track is finished or discarded: forgotten once that is committed. */
static void close_track(store *st, size_t i)
{
    if (sqlite3_get_autocommit(st->db))
        st->open[i] = st->open[--st->n_open];
    else
        st->open[i].closed = 1;
}

void store_rollback(store *st)
{
    if (!sqlite3_get_autocommit(st->db)) {
        sqlite3_step(st->stmt[S_ROLLBACK]);
        sqlite3_reset(st->stmt[S_ROLLBACK]);
    }
    /* A track row inserted in the rolled-back transaction is gone, and its
     * id may be given to another track next: forget it. One finished or
     * discarded in it is open again (its call failed and will discard it). */
    for (size_t i = st->n_open; i-- > 0;) {
        st->open[i].closed = 0;
        if (st->open[i].uncommitted)
            st->open[i] = st->open[--st->n_open];
    }
}

int store_checkpoint(store *st, int idle)
{
    if (st->wal_pages < (idle ? STORE_CHECKPOINT_IDLE_PAGES : STORE_CHECKPOINT_BUSY_PAGES))
        return 0;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(st->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
        return set_error(st, rc, "cannot checkpoint the WAL of %s", st->path);
    /* Everything copied: the next transaction starts the WAL over. */
    st->wal_pages = done >= log ? 0 : log - done;
    return 0;
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

/* Appends s to the scratch buffer as a JSON string. */
static int json_string(store *st, size_t *len, const char *s)
{
    size_t need = *len + 2 + 6 * strlen(s) + 2; /* worst case: all \u00XX, then ",]" */
    if (need > st->json_cap) {
        size_t cap = st->json_cap ? st->json_cap : 256;
        while (cap < need)
            cap *= 2;
        char *p = realloc(st->json, cap);
        if (p == NULL)
            return -ENOMEM;
        st->json = p;
        st->json_cap = cap;
    }
    char *o = st->json + *len;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            *o++ = '\\';
            *o++ = (char)*c;
        } else if (*c < 0x20) {
            o += sprintf(o, "\\u%04x", *c);
        } else {
            *o++ = (char)*c;
        }
    }
    *o++ = '"';
    *len = (size_t)(o - st->json);
    return 0;
}

/* ["M","Q"]: the passengers as a JSON array, in the scratch buffer. */
static int passengers_json(store *st, const store_ride *r, size_t *len)
{
    *len = 0;
    if (json_string(st, len, "") != 0) /* makes room for "[]" at least */
        return -ENOMEM;
    *len = 0;
    st->json[(*len)++] = '[';
    for (size_t i = 0; i < r->n_passengers; i++) {
        if (i)
            st->json[(*len)++] = ',';
        if (json_string(st, len, r->passenger_ids[i]) != 0)
            return -ENOMEM;
    }
    st->json[(*len)++] = ']';
    return 0;
}

int store_add_ride(store *st, const store_ride *r)
{
    size_t jlen;
    if (passengers_json(st, r, &jlen) != 0) {
        snprintf(st->error, sizeof st->error, "cannot store ride in %s: out of memory",
                 st->path);
        st->code = SQLITE_NOMEM;
        return -EIO;
    }
    sqlite3_stmt *s = st->stmt[S_RIDE];
    sqlite3_bind_text(s, 1, r->id, 32, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, r->car_id);
    sqlite3_bind_text(s, 3, r->driver_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, st->json, (int)jlen, SQLITE_STATIC);
    sqlite3_bind_int(s, 5, r->type);
    bind_opt_double(s, 6, r->has_location, r->lat);
    bind_opt_double(s, 7, r->has_location, r->lng);
    bind_opt_int(s, 8, r->has_time, r->time_seconds);
    bind_opt_int(s, 9, r->has_time, r->time_nanos);
    if (r->principal)
        sqlite3_bind_text(s, 10, r->principal, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 11, r->received_unix_ns);
    return run(st, s, "cannot store ride");
}

static open_track *find_track(store *st, uint64_t stage_id, size_t *index)
{
    for (size_t i = st->n_open; i-- > 0;) /* the newest first */
        if (st->open[i].stage_id == stage_id && !st->open[i].closed) {
            if (index)
                *index = i;
            return &st->open[i];
        }
    return NULL;
}

/* Inserts the incomplete track_calls row of a new Track call. */
static open_track *open_track_row(store *st, uint64_t stage_id)
{
    if (st->n_open == st->cap_open) {
        size_t cap = st->cap_open ? 2 * st->cap_open : 16;
        open_track *p = realloc(st->open, cap * sizeof *p);
        if (p == NULL) {
            snprintf(st->error, sizeof st->error, "cannot store track in %s: out of memory",
                     st->path);
            st->code = SQLITE_NOMEM;
            return NULL;
        }
        st->open = p;
        st->cap_open = cap;
    }
    sqlite3_stmt *s = st->stmt[S_TRACK_OPEN];
    sqlite3_bind_int64(s, 1, st->owner);
    if (run(st, s, "cannot store track") != 0)
        return NULL;
    open_track *t = &st->open[st->n_open++];
    t->stage_id = stage_id;
    t->track_id = sqlite3_last_insert_rowid(st->db);
    t->points = 0;
    t->uncommitted = !sqlite3_get_autocommit(st->db);
    t->closed = 0;
    return t;
}

int store_stage_points(store *st, uint64_t stage_id, uint64_t first_seq,
                       const store_point *pts, size_t n)
{
    open_track *t = find_track(st, stage_id, NULL);
    if (t == NULL && (t = open_track_row(st, stage_id)) == NULL)
        return -EIO;
    sqlite3_stmt *s = st->stmt[S_POINT];
    for (size_t i = 0; i < n; i++) {
        const store_point *p = &pts[i];
        sqlite3_bind_int64(s, 1, t->track_id);
        sqlite3_bind_int64(s, 2, (sqlite3_int64)(first_seq + i));
        sqlite3_bind_int64(s, 3, p->car_id);
        bind_opt_double(s, 4, p->has_location, p->lat);
        bind_opt_double(s, 5, p->has_location, p->lng);
        bind_opt_int(s, 6, p->has_time, p->time_seconds);
        bind_opt_int(s, 7, p->has_time, p->time_nanos);
        if (run(st, s, "cannot store track points") != 0)
            return -EIO;
    }
    t->points += n;
    return 0;
}

int store_finish_track(store *st, uint64_t stage_id, uint64_t count,
                       const char *principal, int64_t received_unix_ns, int64_t *track_id)
{
    size_t i;
    open_track *t = find_track(st, stage_id, &i);
    uint64_t have = t ? t->points : 0;
    if (have != count) {
        snprintf(st->error, sizeof st->error,
                 "track of %llu points has %llu stored points (a bug in the rides plugin)",
                 (unsigned long long)count, (unsigned long long)have);
        return -EPROTO;
    }
    sqlite3_stmt *s = st->stmt[t ? S_TRACK_CLOSE : S_TRACK_EMPTY];
    int k = 1;
    if (t)
        sqlite3_bind_int64(s, k++, t->track_id);
    sqlite3_bind_int64(s, k++, (sqlite3_int64)count);
    if (principal)
        sqlite3_bind_text(s, k, principal, -1, SQLITE_STATIC);
    k++;
    sqlite3_bind_int64(s, k, received_unix_ns);
    if (run(st, s, "cannot store track") != 0)
        return -EIO;
    if (t && sqlite3_changes(st->db) != 1) {
        snprintf(st->error, sizeof st->error,
                 "track %lld is no longer in %s (deleted while it was written?)",
                 (long long)t->track_id, st->path);
        st->code = SQLITE_NOTFOUND;
        return -EIO;
    }
    int64_t id = t ? t->track_id : sqlite3_last_insert_rowid(st->db);
    if (t)
        close_track(st, i);
    if (track_id)
        *track_id = id;
    return 0;
}

int store_discard_stage(store *st, uint64_t stage_id)
{
    size_t i;
    open_track *t = find_track(st, stage_id, &i);
    if (t == NULL)
        return 0;
    int64_t id = t->track_id;
    close_track(st, i);
    sqlite3_bind_int64(st->stmt[S_DROP_POINTS], 1, id);
    sqlite3_bind_int64(st->stmt[S_DROP_TRACK], 1, id);
    if (run(st, st->stmt[S_DROP_POINTS], "cannot discard track points") != 0 ||
        run(st, st->stmt[S_DROP_TRACK], "cannot discard track") != 0)
        return -EIO;
    return 0;
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
