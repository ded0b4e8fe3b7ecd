/* The Rides store on PostgreSQL: see store_pg.h. */
#include "store_pg.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <jansson.h>
#include <libpq-fe.h>

/* Migration N takes the schema from version N to N + 1. Append only. The
 * shape is the SQLite store's v2 (docs/rides.md): a ride is one row with
 * its passengers as a JSON array; points are written once, under a
 * track_calls row that stays incomplete (owner set) until the half-close;
 * the views show complete tracks only. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    "CREATE TABLE rides ("
    "  id text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{32}$')," /* uuid4, 32 lowercase hex */
    "  car_id bigint NOT NULL,"
    "  driver_id text NOT NULL,"
    "  passengers jsonb NOT NULL,"        /* JSON array of passenger ids, in order */
    "  type integer NOT NULL,"            /* RideType: 0 REGULAR, 1 POOL */
    "  lat double precision, lng double precision," /* NULL: no location */
    "  time_seconds bigint, time_nanos integer,"   /* NULL: no time */
    "  principal text,"                   /* NULL: no interceptor set one */
    "  received_unix_ns bigint NOT NULL"
    ");"
    "CREATE VIEW ride_passengers (ride_id, position, passenger_id) AS"
    "  SELECT r.id, p.ord - 1, p.value"
    "  FROM rides r, jsonb_array_elements_text(r.passengers) WITH ORDINALITY AS p(value, ord);"
    "CREATE TABLE track_calls ("
    "  id bigserial PRIMARY KEY,"
    "  point_count bigint NOT NULL,"
    "  principal text,"
    "  received_unix_ns bigint NOT NULL," /* when the client half-closed */
    "  owner bigint"                      /* NULL: complete; else the writing session's lock */
    ");"
    "CREATE INDEX track_calls_incomplete ON track_calls (owner) WHERE owner IS NOT NULL;"
    "CREATE TABLE track_call_points ("
    "  track_id bigint NOT NULL REFERENCES track_calls(id),"
    "  seq bigint NOT NULL,"              /* 0-based message index */
    "  car_id bigint NOT NULL,"
    "  lat double precision, lng double precision,"
    "  time_seconds bigint, time_nanos integer,"
    "  PRIMARY KEY (track_id, seq)"
    ");"
    "CREATE VIEW tracks AS"
    "  SELECT id, point_count, principal, received_unix_ns FROM track_calls"
    "  WHERE owner IS NULL;"
    "CREATE VIEW track_points AS"
    "  SELECT p.track_id, p.seq, p.car_id, p.lat, p.lng, p.time_seconds, p.time_nanos"
    "  FROM track_calls t JOIN track_call_points p ON p.track_id = t.id"
    "  WHERE t.owner IS NULL;",
};

/* Serialises migrations of hosts that start together (a transaction
 * advisory lock; any fixed number of our own). */
#define MIGRATION_LOCK "7268696465730001"

/* Deletes incomplete tracks whose owner no session holds a lock on: the
 * writing connection is gone. pg_locks shows a bigint advisory key as
 * classid (high 32 bits) and objid (low 32 bits), objsubid 1. */
#define ORPHAN_OWNERS                                                              \
    "SELECT t.id FROM track_calls t WHERE t.owner IS NOT NULL AND NOT EXISTS ("     \
    " SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.objsubid = 1"    \
    " AND ((l.classid::bigint << 32) | l.objid::bigint) = t.owner)"
static const char drop_orphans_sql[] =
    "WITH o AS (" ORPHAN_OWNERS "),"
    " p AS (DELETE FROM track_call_points WHERE track_id IN (SELECT id FROM o))"
    " DELETE FROM track_calls WHERE id IN (SELECT id FROM o)";

enum stmt_id { S_RIDE, S_TRACK_OPEN, S_POINTS, S_TRACK_CLOSE, S_TRACK_EMPTY, S_DISCARD, S_COUNT };

static const struct {
    const char *name;
    const char *sql;
} stmts[S_COUNT] = {
    [S_RIDE] = {"ride", "INSERT INTO rides (id, car_id, driver_id, passengers, type, lat, lng,"
                        " time_seconds, time_nanos, principal, received_unix_ns)"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                        " ON CONFLICT (id) DO NOTHING"},
    [S_TRACK_OPEN] = {"track_open", "INSERT INTO track_calls (id, point_count, received_unix_ns,"
                                    " owner) VALUES ($1, 0, 0, $2)"},
    /* A batch of points as five arrays: one statement per batch. */
    [S_POINTS] = {"points",
                  "INSERT INTO track_call_points (track_id, seq, car_id, lat, lng, time_seconds,"
                  " time_nanos) SELECT $1, $2::bigint + u.o - 1, u.c, u.la, u.ln, u.s, u.n"
                  " FROM unnest($3::bigint[], $4::float8[], $5::float8[], $6::bigint[],"
                  " $7::integer[]) WITH ORDINALITY AS u(c, la, ln, s, n, o)"},
    [S_TRACK_CLOSE] = {"track_close",
                       "UPDATE track_calls SET point_count = $2, principal = $3,"
                       " received_unix_ns = $4, owner = NULL WHERE id = $1 AND owner IS NOT NULL"},
    [S_TRACK_EMPTY] = {"track_empty", "INSERT INTO track_calls (id, point_count, principal,"
                                      " received_unix_ns) VALUES ($1, $2, $3, $4)"},
    /* Only ever an incomplete track's rows. */
    [S_DISCARD] = {"discard",
                   "WITH t AS (SELECT id FROM track_calls WHERE id = $1 AND owner IS NOT NULL),"
                   " p AS (DELETE FROM track_call_points WHERE track_id IN (SELECT id FROM t))"
                   " DELETE FROM track_calls WHERE id IN (SELECT id FROM t)"},
};

/* Track ids are taken from the table's sequence ahead of use, so a batch
 * can name a new track's id in the statements it pipelines. */
#define ID_RESERVE 64

/* A Track call being written on this connection: its incomplete row. */
typedef struct open_track {
    uint64_t stage_id;
    int64_t track_id;
    uint64_t points;  /* inserted under it so far (committed or in the batch) */
    uint64_t batch_points; /* of those, inserted in the open batch */
    int uncommitted;  /* its row is inserted by the open batch */
    int closed;       /* finished or discarded in the open batch */
} open_track;

/* What a sent statement is for, to check its result. */
typedef enum op_kind { OP_TX, OP_JOB, OP_JOB_ONE_ROW } op_kind;

typedef struct op {
    op_kind kind;
    writer_job *job;
} op;

/* A growable text buffer for array literals and JSON. */
typedef struct text {
    char *p;
    size_t len, cap;
} text;

struct pg_store {
    PGconn *conn;
    int64_t owner;        /* this session's advisory lock key */
    int broken;
    char error[512];
    char reason[160];
    open_track *open;
    size_t n_open, cap_open;
    int64_t *ids;         /* reserved track ids, used from the end */
    size_t n_ids, cap_ids;
    op *ops;
    size_t cap_ops;
    text arr[5];          /* the points' array literals */
};

/* ------------------------------------------------------------ helpers */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void set_error(pg_store *st, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the operator's line and the client's words. */
static void set_error(pg_store *st, const char *reason, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->error, sizeof st->error, fmt, ap);
    va_end(ap);
    /* libpq messages end with a newline: one line in the log. */
    size_t n = strlen(st->error);
    while (n && (st->error[n - 1] == '\n' || st->error[n - 1] == ' '))
        st->error[--n] = '\0';
    for (char *c = st->error; *c; c++)
        if (*c == '\n')
            *c = ' ';
    snprintf(st->reason, sizeof st->reason, "%s", reason);
}

static int broken(pg_store *st, const char *reason, const char *what)
{
    set_error(st, reason, "%s: %s", what, PQerrorMessage(st->conn));
    st->broken = 1;
    return -EIO;
}

int pg_is_uri(const char *db)
{
    return strncmp(db, "postgresql://", 13) == 0 || strncmp(db, "postgres://", 11) == 0;
}

int pg_check_uri(const char *uri, char *err, size_t errlen)
{
    char *msg = NULL;
    PQconninfoOption *o = PQconninfoParse(uri, &msg);
    if (o == NULL) {
        snprintf(err, errlen, "db = %s in [plugin.rides] is not a PostgreSQL URI: %s", uri,
                 msg ? msg : "out of memory");
        size_t n = strlen(err);
        if (n && err[n - 1] == '\n')
            err[n - 1] = '\0';
        PQfreemem(msg);
        return -EINVAL;
    }
    PQconninfoFree(o);
    return 0;
}

void pg_safe_uri(const char *uri, char *out, size_t len)
{
    const char *user = "", *host = "", *port = "", *db = "";
    PQconninfoOption *o = PQconninfoParse(uri, NULL);
    for (PQconninfoOption *p = o; p && p->keyword; p++) {
        if (!p->val)
            continue;
        if (!strcmp(p->keyword, "user"))
            user = p->val;
        else if (!strcmp(p->keyword, "host"))
            host = p->val;
        else if (!strcmp(p->keyword, "port"))
            port = p->val;
        else if (!strcmp(p->keyword, "dbname"))
            db = p->val;
    }
    snprintf(out, len, "postgresql://%s%s%s%s%s/%s", user, *user ? "@" : "", host,
             *port ? ":" : "", port, db);
    PQconninfoFree(o);
}

static int text_reserve(text *t, size_t more)
{
    if (t->len + more + 1 <= t->cap)
        return 0;
    size_t cap = t->cap ? t->cap : 1024;
    while (cap < t->len + more + 1)
        cap *= 2;
    char *p = realloc(t->p, cap);
    if (p == NULL)
        return -ENOMEM;
    t->p = p;
    t->cap = cap;
    return 0;
}

/* Appends one element of an array literal (NULL when !has). */
static int text_elem(text *t, int first, int has, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int text_elem(text *t, int first, int has, const char *fmt, ...)
{
    if (text_reserve(t, 32) != 0)
        return -ENOMEM;
    if (!first)
        t->p[t->len++] = ',';
    if (!has) {
        memcpy(t->p + t->len, "NULL", 5);
        t->len += 4;
        return 0;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= t->cap - t->len)
        return -ENOMEM;
    t->len += (size_t)n;
    return 0;
}

/* --------------------------------------------------- waiting on the server */

/* Sends what libpq buffered and reads until a result is ready, at most
 * until deadline (CLOCK_MONOTONIC ms). 0, or -EIO with the store broken. */
static int pump(pg_store *st, uint64_t deadline)
{
    for (;;) {
        int f = PQflush(st->conn);
        if (f < 0)
            return broken(st, "the connection to PostgreSQL was lost", "cannot send to PostgreSQL");
        if (f == 0 && !PQisBusy(st->conn))
            return 0;
        uint64_t now = mono_ms();
        if (now >= deadline) {
            set_error(st, "PostgreSQL did not answer in time",
                      "PostgreSQL did not answer within the query timeout; dropping the "
                      "connection");
            st->broken = 1;
            return -EIO;
        }
        struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN | (f ? POLLOUT : 0)};
        int n = poll(&pfd, 1, (int)(deadline - now));
        if (n < 0 && errno != EINTR)
            return broken(st, "the connection to PostgreSQL was lost", "poll");
        if (n > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(st->conn))
            return broken(st, "the connection to PostgreSQL was lost",
                          "cannot read from PostgreSQL");
    }
}

/* The next result (NULL: end of the current query's results). */
static PGresult *next_result(pg_store *st, uint64_t deadline, int *rc)
{
    *rc = pump(st, deadline);
    return *rc ? NULL : PQgetResult(st->conn);
}

/* Runs SQL outside pipeline mode (setup), keeping the last result's
 * first value in out if given. 0 or -EIO. */
static int exec_setup(pg_store *st, const char *sql, uint64_t deadline, char *out, size_t len,
                      const char *what)
{
    if (!PQsendQuery(st->conn, sql))
        return broken(st, "cannot reach PostgreSQL", what);
    int rc = 0, failed = 0;
    PGresult *r;
    while ((r = next_result(st, deadline, &rc)) != NULL) {
        ExecStatusType s = PQresultStatus(r);
        if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK && !failed) {
            set_error(st, "PostgreSQL refused the rides schema", "%s: %s", what,
                      PQresultErrorMessage(r));
            failed = 1;
        } else if (s == PGRES_TUPLES_OK && out && PQntuples(r) > 0) {
            snprintf(out, len, "%s", PQgetvalue(r, 0, 0));
        }
        PQclear(r);
    }
    if (rc)
        return rc;
    return failed ? -EIO : 0;
}

/* ---------------------------------------------------------- connecting */

/* Server notices ("relation already exists, skipping") are not errors;
 * libpq would print them on the host's stderr. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static int connect_within(pg_store *st, const char *uri, uint64_t deadline)
{
    st->conn = PQconnectStart(uri);
    if (st->conn == NULL) {
        set_error(st, "out of memory", "cannot connect to PostgreSQL: out of memory");
        return -EIO;
    }
    PQsetNoticeProcessor(st->conn, ignore_notice, NULL);
    if (PQstatus(st->conn) == CONNECTION_BAD)
        return broken(st, "cannot connect to PostgreSQL", "cannot connect to PostgreSQL");
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    while (ps != PGRES_POLLING_OK) {
        if (ps == PGRES_POLLING_FAILED)
            return broken(st, "cannot connect to PostgreSQL", "cannot connect to PostgreSQL");
        uint64_t now = mono_ms();
        if (now >= deadline) {
            set_error(st, "cannot connect to PostgreSQL",
                      "cannot connect to PostgreSQL: no answer within the connect timeout");
            st->broken = 1;
            return -EIO;
        }
        struct pollfd pfd = {.fd = PQsocket(st->conn),
                             .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT};
        int n = poll(&pfd, 1, (int)(deadline - now));
        if (n < 0 && errno != EINTR)
            return broken(st, "cannot connect to PostgreSQL", "poll");
        if (n > 0)
            ps = PQconnectPoll(st->conn);
    }
    if (PQsetnonblocking(st->conn, 1) != 0)
        return broken(st, "cannot connect to PostgreSQL", "cannot set non-blocking mode");
    return 0;
}

static int migrate(pg_store *st, uint64_t deadline)
{
    int rc = exec_setup(st,
                        "BEGIN; SELECT pg_advisory_xact_lock(" MIGRATION_LOCK ");"
                        "CREATE TABLE IF NOT EXISTS rides_schema_migrations ("
                        " version integer PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())",
                        deadline, NULL, 0, "cannot create rides_schema_migrations");
    char have_s[32] = "0";
    if (rc == 0)
        rc = exec_setup(st, "SELECT coalesce(max(version), 0) FROM rides_schema_migrations",
                        deadline, have_s, sizeof have_s, "cannot read the schema version");
    long have = strtol(have_s, NULL, 10);
    if (rc == 0 && (have < 0 || have > PG_SCHEMA_VERSION)) {
        set_error(st, "the database schema is newer than this plugin",
                  "database has rides schema version %ld, this plugin knows up to %d; use a "
                  "newer rides plugin or another database",
                  have, PG_SCHEMA_VERSION);
        rc = -EPROTO;
    }
    for (long n = have; rc == 0 && n < PG_SCHEMA_VERSION; n++) {
        char bump[96];
        snprintf(bump, sizeof bump, "INSERT INTO rides_schema_migrations (version) VALUES (%ld)",
                 n + 1);
        rc = exec_setup(st, migrations[n], deadline, NULL, 0, "cannot migrate the rides schema");
        if (rc == 0)
            rc = exec_setup(st, bump, deadline, NULL, 0, "cannot migrate the rides schema");
    }
    if (rc == 0)
        rc = exec_setup(st, "COMMIT", deadline, NULL, 0, "cannot commit the rides schema");
    if (rc != 0 && !st->broken) {
        char keep[sizeof st->error];
        memcpy(keep, st->error, sizeof keep);
        exec_setup(st, "ROLLBACK", deadline, NULL, 0, "rollback");
        memcpy(st->error, keep, sizeof keep);
    }
    return rc;
}

/* Takes this session's owner lock, then deletes what dead sessions left. */
static int own_and_clean(pg_store *st, uint64_t deadline)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof r, 0) != (ssize_t)sizeof r)
        r = (uint64_t)mono_ms() * 2654435761u ^ (uint64_t)(uintptr_t)st;
    st->owner = (int64_t)(r & INT64_MAX) | 1;
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_advisory_lock(%lld)", (long long)st->owner);
    int rc = exec_setup(st, sql, deadline, NULL, 0, "cannot take the owner lock");
    if (rc == 0)
        rc = exec_setup(st, drop_orphans_sql, deadline, NULL, 0,
                        "cannot delete unfinished tracks of ended sessions");
    return rc;
}

static int prepare_all(pg_store *st, uint64_t deadline)
{
    for (int i = 0; i < S_COUNT; i++) {
        if (!PQsendPrepare(st->conn, stmts[i].name, stmts[i].sql, 0, NULL))
            return broken(st, "cannot reach PostgreSQL", "cannot prepare statements");
        int rc = 0, failed = 0;
        PGresult *r;
        while ((r = next_result(st, deadline, &rc)) != NULL) {
            if (PQresultStatus(r) != PGRES_COMMAND_OK && !failed) {
                set_error(st, "PostgreSQL refused the rides statements",
                          "cannot prepare statement %s: %s", stmts[i].name,
                          PQresultErrorMessage(r));
                failed = 1;
            }
            PQclear(r);
        }
        if (rc || failed)
            return rc ? rc : -EIO;
    }
    return 0;
}

int pg_store_connect(const char *uri, int timeout_ms, pg_store **out, char *err, size_t errlen)
{
    *out = NULL;
    pg_store *st = calloc(1, sizeof *st);
    if (st == NULL) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: out of memory");
        return -ENOMEM;
    }
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    int rc = connect_within(st, uri, deadline);
    if (rc == 0)
        rc = migrate(st, deadline);
    if (rc == 0)
        rc = own_and_clean(st, deadline);
    if (rc == 0)
        rc = prepare_all(st, deadline);
    if (rc == 0 && PQenterPipelineMode(st->conn) != 1)
        rc = broken(st, "cannot use PostgreSQL", "cannot enter pipeline mode");
    if (rc != 0) {
        snprintf(err, errlen, "%s", st->error);
        pg_store_close(st);
        return rc;
    }
    *out = st;
    return 0;
}

void pg_store_close(pg_store *st)
{
    if (st == NULL)
        return;
    PQfinish(st->conn);
    for (size_t i = 0; i < sizeof st->arr / sizeof st->arr[0]; i++)
        free(st->arr[i].p);
    free(st->open);
    free(st->ops);
    free(st->ids);
    free(st);
}

int pg_store_check_idle(pg_store *st)
{
    struct pollfd pfd = {.fd = PQsocket(st->conn), .events = POLLIN};
    if (pfd.fd < 0 || PQstatus(st->conn) == CONNECTION_BAD)
        return broken(st, "the connection to PostgreSQL was lost", "connection lost");
    if (poll(&pfd, 1, 0) <= 0)
        return 0; /* nothing sent: still fine as far as we can tell */
    if (!PQconsumeInput(st->conn) || PQstatus(st->conn) == CONNECTION_BAD)
        return broken(st, "the connection to PostgreSQL was lost",
                      "PostgreSQL closed an idle connection");
    /* An idle pipeline has no result coming: anything now is the server
     * ending the session (e.g. "terminating connection due to
     * administrator command"); the next read would see the end. */
    return 0;
}

int pg_store_broken(const pg_store *st)
{
    return st->broken;
}

const char *pg_store_error(const pg_store *st)
{
    return st->error;
}

const char *pg_store_reason(const pg_store *st)
{
    return st->reason;
}

/* ------------------------------------------------------- track bookkeeping */

static open_track *find_track(pg_store *st, uint64_t stage_id)
{
    for (size_t i = st->n_open; i-- > 0;)
        if (st->open[i].stage_id == stage_id && !st->open[i].closed)
            return &st->open[i];
    return NULL;
}

/* Takes ids for new tracks from the sequence before a batch is sent: one
 * round trip per ID_RESERVE new tracks (more if one batch needs more). */
static int reserve_ids(pg_store *st, size_t need, uint64_t deadline)
{
    if (st->n_ids >= need)
        return 0;
    size_t want = need - st->n_ids < ID_RESERVE ? ID_RESERVE : need - st->n_ids;
    if (st->n_ids + want > st->cap_ids) {
        int64_t *p = realloc(st->ids, (st->n_ids + want) * sizeof *p);
        if (p == NULL) {
            set_error(st, "out of memory", "cannot reserve track ids: out of memory");
            return -EIO;
        }
        st->ids = p;
        st->cap_ids = st->n_ids + want;
    }
    char count[24];
    snprintf(count, sizeof count, "%zu", want);
    const char *v[1] = {count};
    if (!PQsendQueryParams(st->conn,
                           "SELECT nextval('track_calls_id_seq') FROM generate_series(1, $1::int)",
                           1, NULL, v, NULL, NULL, 0) ||
        !PQpipelineSync(st->conn))
        return broken(st, "the connection to PostgreSQL was lost", "cannot reserve track ids");
    int rc = 0, failed = 0;
    PGresult *r;
    while ((r = next_result(st, deadline, &rc)) != NULL) {
        if (PQresultStatus(r) == PGRES_TUPLES_OK) {
            for (int i = 0; i < PQntuples(r) && st->n_ids < st->cap_ids; i++)
                st->ids[st->n_ids++] = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        } else {
            set_error(st, "PostgreSQL refused a track id", "cannot reserve track ids: %s",
                      PQresultErrorMessage(r));
            failed = 1;
        }
        PQclear(r);
    }
    /* Then the sync's own result, and the NULL after it. */
    if (rc == 0 && (r = next_result(st, deadline, &rc)) != NULL) {
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC)
            failed = 1;
        PQclear(r);
    }
    if (rc)
        return rc;
    if (failed || st->n_ids < need) {
        st->broken = 1; /* out of step with the server: start over */
        return -EIO;
    }
    return 0;
}

static int new_track_count(pg_store *st, writer_job *batch)
{
    int n = 0;
    for (writer_job *j = batch; j; j = j->next)
        if (((j->kind == JOB_POINTS && j->u.points.first_seq == 0) ||
             (j->kind == JOB_TRACK && j->u.track.count == 0)) &&
            find_track(st, j->kind == JOB_POINTS ? j->u.points.stage_id : j->u.track.stage_id) ==
                NULL)
            n++;
    return n;
}

static open_track *open_track_new(pg_store *st, uint64_t stage_id)
{
    if (st->n_open == st->cap_open) {
        size_t cap = st->cap_open ? 2 * st->cap_open : 16;
        open_track *p = realloc(st->open, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        st->open = p;
        st->cap_open = cap;
    }
    open_track *t = &st->open[st->n_open++];
    memset(t, 0, sizeof *t);
    t->stage_id = stage_id;
    t->track_id = st->ids[--st->n_ids];
    t->uncommitted = 1;
    return t;
}

/* After the batch committed: forget the finished tracks. */
static void tracks_committed(pg_store *st)
{
    for (size_t i = st->n_open; i-- > 0;) {
        st->open[i].uncommitted = 0;
        st->open[i].batch_points = 0;
        if (st->open[i].closed)
            st->open[i] = st->open[--st->n_open];
    }
}

/* After the batch failed: undo what it did to the bookkeeping. */
static void tracks_rolled_back(pg_store *st)
{
    for (size_t i = st->n_open; i-- > 0;) {
        open_track *t = &st->open[i];
        t->closed = 0;
        t->points -= t->batch_points;
        t->batch_points = 0;
        if (t->uncommitted)
            st->open[i] = st->open[--st->n_open];
    }
}

/* -------------------------------------------------------- sending a batch */

static int send_prepared(pg_store *st, enum stmt_id s, int n, const char *const *v)
{
    if (PQsendQueryPrepared(st->conn, stmts[s].name, n, v, NULL, NULL, 0))
        return 0;
    return broken(st, "the connection to PostgreSQL was lost", "cannot send a statement");
}

static int push_op(pg_store *st, size_t *n_ops, op_kind kind, writer_job *j)
{
    st->ops[(*n_ops)++] = (op){kind, j};
    return 0;
}

/* A job whose track cannot go on: reported once per track. */
static void job_track_lost(writer_job *j, const char *why)
{
    j->rc = (j->track_failed && atomic_exchange(j->track_failed, 1)) ? -ECANCELED : -EIO;
    snprintf(j->error, sizeof j->error, "%s", why);
}

static int send_ride(pg_store *st, writer_job *j, size_t *n_ops)
{
    const store_ride *r = &j->u.ride;
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->n_passengers; i++)
        if (json_array_append_new(a, json_string(r->passenger_ids[i])) != 0) {
            json_decref(a);
            a = NULL;
        }
    char *pass = a ? json_dumps(a, JSON_COMPACT) : NULL;
    json_decref(a);
    if (pass == NULL) {
        set_error(st, "out of memory", "cannot encode a ride's passengers");
        return -ENOMEM;
    }
    char car[24], type[16], lat[32], lng[32], sec[24], nanos[16], recv[24];
    snprintf(car, sizeof car, "%lld", (long long)r->car_id);
    snprintf(type, sizeof type, "%d", r->type);
    snprintf(lat, sizeof lat, "%.17g", r->lat);
    snprintf(lng, sizeof lng, "%.17g", r->lng);
    snprintf(sec, sizeof sec, "%lld", (long long)r->time_seconds);
    snprintf(nanos, sizeof nanos, "%d", (int)r->time_nanos);
    snprintf(recv, sizeof recv, "%lld", (long long)r->received_unix_ns);
    const char *v[11] = {r->id,
                         car,
                         r->driver_id,
                         pass,
                         type,
                         r->has_location ? lat : NULL,
                         r->has_location ? lng : NULL,
                         r->has_time ? sec : NULL,
                         r->has_time ? nanos : NULL,
                         r->principal,
                         recv};
    int rc = send_prepared(st, S_RIDE, 11, v);
    free(pass);
    if (rc == 0)
        push_op(st, n_ops, OP_JOB_ONE_ROW, j);
    return rc;
}

static int send_points(pg_store *st, writer_job *j, size_t *n_ops)
{
    if (j->track_failed && atomic_load(j->track_failed)) {
        j->rc = -ECANCELED;
        return 0;
    }
    open_track *t = find_track(st, j->u.points.stage_id);
    if (t == NULL && j->u.points.first_seq != 0) {
        job_track_lost(j, "the track's earlier points were lost with a database connection");
        return 0;
    }
    char id[24], own[24], first[24];
    if (t == NULL) {
        if ((t = open_track_new(st, j->u.points.stage_id)) == NULL) {
            set_error(st, "out of memory", "cannot store a track: out of memory");
            return -ENOMEM;
        }
        snprintf(id, sizeof id, "%lld", (long long)t->track_id);
        snprintf(own, sizeof own, "%lld", (long long)st->owner);
        const char *v[2] = {id, own};
        if (send_prepared(st, S_TRACK_OPEN, 2, v) != 0)
            return -EIO;
        push_op(st, n_ops, OP_TX, NULL);
    }
    for (size_t k = 0; k < 5; k++) {
        st->arr[k].len = 0;
        if (text_reserve(&st->arr[k], 1) != 0)
            return -ENOMEM;
        st->arr[k].p[st->arr[k].len++] = '{';
    }
    int bad = 0;
    for (size_t i = 0; i < j->u.points.n; i++) {
        const store_point *p = &j->u.points.points[i];
        int f = i == 0;
        bad |= text_elem(&st->arr[0], f, 1, "%lld", (long long)p->car_id);
        bad |= text_elem(&st->arr[1], f, p->has_location, "%.17g", p->lat);
        bad |= text_elem(&st->arr[2], f, p->has_location, "%.17g", p->lng);
        bad |= text_elem(&st->arr[3], f, p->has_time, "%lld", (long long)p->time_seconds);
        bad |= text_elem(&st->arr[4], f, p->has_time, "%d", (int)p->time_nanos);
    }
    for (size_t k = 0; k < 5 && !bad; k++) {
        bad |= text_reserve(&st->arr[k], 2);
        if (!bad) {
            st->arr[k].p[st->arr[k].len++] = '}';
            st->arr[k].p[st->arr[k].len] = '\0';
        }
    }
    if (bad) {
        set_error(st, "out of memory", "cannot store track points: out of memory");
        return -ENOMEM;
    }
    snprintf(id, sizeof id, "%lld", (long long)t->track_id);
    snprintf(first, sizeof first, "%llu", (unsigned long long)j->u.points.first_seq);
    const char *v[7] = {id, first, st->arr[0].p, st->arr[1].p, st->arr[2].p, st->arr[3].p,
                        st->arr[4].p};
    if (send_prepared(st, S_POINTS, 7, v) != 0)
        return -EIO;
    t->points += j->u.points.n;
    t->batch_points += j->u.points.n;
    push_op(st, n_ops, OP_JOB, j);
    return 0;
}

static int send_discard(pg_store *st, uint64_t stage_id, size_t *n_ops)
{
    open_track *t = find_track(st, stage_id);
    if (t == NULL)
        return 0;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)t->track_id);
    const char *v[1] = {id};
    if (send_prepared(st, S_DISCARD, 1, v) != 0)
        return -EIO;
    t->closed = 1;
    push_op(st, n_ops, OP_TX, NULL);
    return 0;
}

static int send_track(pg_store *st, writer_job *j, size_t *n_ops)
{
    if (j->track_failed && atomic_load(j->track_failed)) {
        j->rc = -ECANCELED;
        return send_discard(st, j->u.track.stage_id, n_ops);
    }
    open_track *t = find_track(st, j->u.track.stage_id);
    uint64_t have = t ? t->points : 0;
    if (t == NULL && j->u.track.count > 0) {
        job_track_lost(j, "the track's points were lost with a database connection");
        return 0;
    }
    if (have != j->u.track.count) {
        job_track_lost(j, "the track's stored points do not add up (a bug in the rides plugin)");
        return send_discard(st, j->u.track.stage_id, n_ops);
    }
    char id[24], count[24], recv[24];
    int64_t track_id = t ? t->track_id : st->ids[--st->n_ids];
    snprintf(id, sizeof id, "%lld", (long long)track_id);
    snprintf(count, sizeof count, "%llu", (unsigned long long)j->u.track.count);
    snprintf(recv, sizeof recv, "%lld", (long long)j->u.track.received_unix_ns);
    const char *v[4] = {id, count, j->u.track.principal, recv};
    if (send_prepared(st, t ? S_TRACK_CLOSE : S_TRACK_EMPTY, 4, v) != 0)
        return -EIO;
    if (t)
        t->closed = 1;
    j->u.track.track_id = track_id;
    push_op(st, n_ops, OP_JOB_ONE_ROW, j);
    return 0;
}

/* Sends BEGIN, every job's statement, COMMIT and the sync. */
static int send_batch(pg_store *st, writer_job *batch, size_t *n_ops)
{
    if (!PQsendQueryParams(st->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return broken(st, "the connection to PostgreSQL was lost", "cannot send BEGIN");
    push_op(st, n_ops, OP_TX, NULL);
    for (writer_job *j = batch; j; j = j->next) {
        int rc = 0;
        j->rc = 0;
        switch (j->kind) {
        case JOB_START:
            rc = send_ride(st, j, n_ops);
            break;
        case JOB_POINTS:
            rc = send_points(st, j, n_ops);
            break;
        case JOB_TRACK:
            rc = send_track(st, j, n_ops);
            break;
        case JOB_DISCARD:
            rc = send_discard(st, j->u.discard.stage_id, n_ops);
            break;
        }
        if (rc)
            return rc;
    }
    if (!PQsendQueryParams(st->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(st->conn))
        return broken(st, "the connection to PostgreSQL was lost", "cannot send COMMIT");
    push_op(st, n_ops, OP_TX, NULL);
    return 0;
}

/* Reads one statement's result and checks it against its op. */
static int read_op(pg_store *st, const op *o, uint64_t deadline, int *failed)
{
    int rc = 0;
    PGresult *r = next_result(st, deadline, &rc);
    if (rc)
        return rc;
    if (r == NULL) { /* out of step with the server */
        set_error(st, "PostgreSQL answered out of order", "PostgreSQL answered out of order");
        st->broken = 1;
        return -EIO;
    }
    ExecStatusType s = PQresultStatus(r);
    if (s == PGRES_PIPELINE_ABORTED) {
        *failed = 1;
    } else if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        if (!*failed) {
            const char *code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            char why[160];
            snprintf(why, sizeof why, "PostgreSQL error %s", code ? code : "?");
            set_error(st, why, "PostgreSQL refused a rides statement: %s",
                      PQresultErrorMessage(r));
        }
        *failed = 1;
    } else if (o->kind == OP_JOB_ONE_ROW && strcmp(PQcmdTuples(r), "1") != 0) {
        writer_job *j = o->job;
        if (j->kind == JOB_START) {
            j->rc = -EEXIST;
            snprintf(j->error, sizeof j->error, "the ride id is already taken");
        } else {
            job_track_lost(j, "the track's row is gone (deleted while it was written)");
        }
    }
    PQclear(r);
    /* The NULL that ends this statement's results. */
    if ((r = next_result(st, deadline, &rc)) != NULL) {
        PQclear(r);
        set_error(st, "PostgreSQL answered out of order", "PostgreSQL answered out of order");
        st->broken = 1;
        return -EIO;
    }
    return rc;
}

/* After a failed transaction the session may sit in an aborted block. */
static int rollback_if_needed(pg_store *st, uint64_t deadline)
{
    if (PQtransactionStatus(st->conn) == PQTRANS_IDLE)
        return 0;
    if (!PQsendQueryParams(st->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(st->conn))
        return broken(st, "the connection to PostgreSQL was lost", "cannot send ROLLBACK");
    int rc = 0;
    PGresult *r;
    while ((r = next_result(st, deadline, &rc)) != NULL) /* ROLLBACK's result(s) */
        PQclear(r);
    if (rc == 0 && (r = next_result(st, deadline, &rc)) != NULL) /* the sync */
        PQclear(r);
    return rc;
}

int pg_store_apply(pg_store *st, writer_job *batch, int timeout_ms)
{
    uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 1);
    size_t jobs = 0;
    for (writer_job *j = batch; j; j = j->next)
        jobs++;
    /* At most two statements per job, BEGIN and COMMIT. */
    if (2 * jobs + 2 > st->cap_ops) {
        op *p = realloc(st->ops, (2 * jobs + 2) * sizeof *p);
        if (p == NULL) {
            set_error(st, "out of memory", "cannot send a batch: out of memory");
            return -EIO;
        }
        st->ops = p;
        st->cap_ops = 2 * jobs + 2;
    }
    if (reserve_ids(st, (size_t)new_track_count(st, batch), deadline) != 0)
        return -EIO;
    size_t n_ops = 0;
    int rc = send_batch(st, batch, &n_ops);
    if (rc != 0) {
        /* Half a batch may sit in libpq's buffer: the session cannot go on. */
        st->broken = 1;
        tracks_rolled_back(st);
        return -EIO;
    }
    int failed = 0;
    for (size_t i = 0; i < n_ops && rc == 0; i++)
        rc = read_op(st, &st->ops[i], deadline, &failed);
    PGresult *r = NULL;
    if (rc == 0 && (r = next_result(st, deadline, &rc)) != NULL) {
        if (PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
            set_error(st, "PostgreSQL answered out of order", "PostgreSQL answered out of order");
            st->broken = 1;
            rc = -EIO;
        }
        PQclear(r);
    }
    if (rc == 0 && failed) {
        rollback_if_needed(st, deadline);
        rc = -EIO;
    }
    if (rc != 0) {
        tracks_rolled_back(st);
        return -EIO;
    }
    tracks_committed(st);
    return 0;
}
