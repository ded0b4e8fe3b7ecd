/* The Rides store: one SQLite database in WAL mode, schema created and
 * migrated by numbered migrations recorded in PRAGMA user_version.
 *
 * Not thread-safe: one thread (the writer) owns a store after store_open.
 * Transactions are explicit (store_begin .. store_commit), so the writer
 * can put the work of many calls into one commit (group commit).
 *
 * Track points are staged before they are stored: store_stage_points puts
 * a batch into a TEMP table of this connection, store_finish_track moves
 * every staged point of a call into track_points in the caller's
 * transaction, store_discard_stage drops them. The TEMP table lives in a
 * temporary file that SQLite deletes with the connection, so a crash can
 * leave no orphaned staged rows and staged rows cost no fsync. */
#ifndef RIDES_STORE_H
#define RIDES_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct store store;
typedef struct sqlite3 sqlite3;

/* PRAGMA synchronous values. */
typedef enum store_sync {
    STORE_SYNC_OFF = 0,
    STORE_SYNC_NORMAL = 1,
    STORE_SYNC_FULL = 2
} store_sync;

/* The schema version this code creates and understands. */
#define STORE_SCHEMA_VERSION 1

/* "OFF" | "NORMAL" | "FULL" (any case) -> store_sync; -1 if unknown. */
int store_sync_parse(const char *s);
const char *store_sync_name(store_sync s);

typedef struct store_ride {
    char id[33];                      /* 32 hex + NUL */
    int64_t car_id;
    const char *driver_id;
    const char *const *passenger_ids; /* n_passengers entries */
    size_t n_passengers;
    int type;                         /* RideType number */
    int has_location;
    double lat, lng;
    int has_time;
    int64_t time_seconds;
    int32_t time_nanos;
    const char *principal;            /* NULL if none */
    int64_t received_unix_ns;
} store_ride;

typedef struct store_point {
    int64_t car_id;
    double lat, lng;
    int64_t time_seconds;
    int32_t time_nanos;
    uint8_t has_location;
    uint8_t has_time;
} store_point;

/* Opens (creating if needed) and migrates the database at path. On error
 * writes one line into err ("cannot open database X: reason; hint") and
 * returns a negative errno-style code. */
int store_open(const char *path, store_sync sync, store **out, char *err, size_t errlen);
/* Finalises statements and closes (SQLite checkpoints the WAL). NULL ok. */
void store_close(store *st);
int store_set_sync(store *st, store_sync sync);

/* Transactions. begin takes the write lock at once (BEGIN IMMEDIATE).
 * Every function below returns 0, -EEXIST when one statement broke a
 * constraint (that statement was undone, the transaction goes on), or
 * -EIO when the storage failed: then the caller rolls back and fails
 * every call of the transaction. store_error() says why. */
int store_begin(store *st);
int store_commit(store *st);
void store_rollback(store *st);

int store_add_ride(store *st, const store_ride *ride);
/* Stages n points of call `stage_id`, numbered first_seq, first_seq+1... */
int store_stage_points(store *st, uint64_t stage_id, uint64_t first_seq,
                       const store_point *pts, size_t n);
/* Adds a tracks row and moves the call's staged points under it. The
 * number of staged points must equal count (else -EPROTO: a bug). */
int store_finish_track(store *st, uint64_t stage_id, uint64_t count,
                       const char *principal, int64_t received_unix_ns,
                       int64_t *track_id);
int store_discard_stage(store *st, uint64_t stage_id);

/* The last error, as SQLite put it, with a hint for the operator. */
const char *store_error(const store *st);
/* The same error in SQLite's generic words, no path (for clients). */
const char *store_reason(const store *st);
const char *store_path(const store *st);
/* The database file's absolute path, as SQLite resolved it. */
const char *store_filename(store *st);
/* The connection, for tests and diagnostics only. */
sqlite3 *store_sqlite(store *st);

#endif
