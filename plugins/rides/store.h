/* The Rides store: one SQLite database in WAL mode, schema created and
 * migrated by numbered migrations recorded in PRAGMA user_version.
 *
 * Not thread-safe: one thread (the writer) owns a store after store_open.
 * Transactions are explicit (store_begin .. store_commit), so the writer
 * can put the work of many calls into one commit (group commit).
 *
 * Track points are written once, as they come: the first
 * store_stage_points of a call inserts an incomplete track_calls row
 * (owner set), every batch goes straight into track_call_points under it,
 * store_finish_track marks it complete (owner NULL) in the transaction
 * that answers the call, store_discard_stage deletes it. The views tracks
 * and track_points show complete tracks only; store_open deletes the
 * incomplete tracks of processes that are gone (docs/rides.md). */
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
#define STORE_SCHEMA_VERSION 2

/* WAL size (frames of 4 KiB) from which store_checkpoint copies the WAL
 * into the database: when the writer is idle (no jobs for a while, see
 * writer.c), and in any case. */
#define STORE_CHECKPOINT_IDLE_PAGES 1000
#define STORE_CHECKPOINT_BUSY_PAGES 8000

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
/* Stores n points of call `stage_id` (numbered first_seq, first_seq+1...)
 * under its incomplete track, created by the first call. */
int store_stage_points(store *st, uint64_t stage_id, uint64_t first_seq,
                       const store_point *pts, size_t n);
/* Marks the call's track complete (or adds an empty one). The number of
 * points stored for it must equal count (else -EPROTO: a bug). */
int store_finish_track(store *st, uint64_t stage_id, uint64_t count,
                       const char *principal, int64_t received_unix_ns,
                       int64_t *track_id);
/* Deletes the call's incomplete track and its points (none: 0). */
int store_discard_stage(store *st, uint64_t stage_id);

/* Between transactions: a PASSIVE checkpoint if the WAL has grown past
 * STORE_CHECKPOINT_IDLE_PAGES and idle is set (no calls wait), or past
 * STORE_CHECKPOINT_BUSY_PAGES. SQLite's automatic checkpoint is off, so
 * no COMMIT (and no call waiting for one) pays for a checkpoint. */
int store_checkpoint(store *st, int idle);

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
