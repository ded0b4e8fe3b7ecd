/* The Rides store on PostgreSQL: one libpq connection, its schema
 * migrations, and the group commit of a batch of writer jobs in one
 * transaction sent in pipeline mode (one round trip for the whole batch).
 *
 * Same promise and shape as the SQLite store (store.h, docs/rides.md):
 * a job is reported done only after the COMMIT that holds its rows; a
 * Track becomes visible (views tracks, track_points) only complete; the
 * tables are rides (id = the 32-hex ride id, passengers as a JSON array,
 * view ride_passengers), track_calls and track_call_points.
 *
 * Incomplete tracks belong to the connection that writes them: every
 * connection holds a session advisory lock on a random owner number and
 * marks its incomplete track_calls rows with it. A connection that ends
 * (the host was killed, the network dropped) releases its lock, and the
 * next connection to start (on any host) deletes the incomplete tracks
 * whose owner no session holds. Several hosts share one database safely.
 *
 * Not thread-safe: one writer lane (pg_pool.c) owns a pg_store. Every
 * wait on the server is bounded by a deadline (poll on the socket), so a
 * stopped or frozen server fails a batch, never hangs a lane. */
#ifndef RIDES_STORE_PG_H
#define RIDES_STORE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "writer.h"

typedef struct pg_store pg_store;

/* The schema version this code creates and understands (table
 * rides_schema_migrations holds one row per applied migration). */
#define PG_SCHEMA_VERSION 1

/* Nonzero when db names a PostgreSQL database (a libpq URI). */
int pg_is_uri(const char *db);
/* Checks that uri parses as libpq connection parameters. 0, or -EINVAL
 * with one line in err. Connects to nothing. */
int pg_check_uri(const char *uri, char *err, size_t errlen);
/* The URI without its password, for logs: "postgresql://u@h:p/db". */
void pg_safe_uri(const char *uri, char *out, size_t len);

/* Connects within timeout_ms, migrates the schema, deletes the incomplete
 * tracks of connections that are gone, prepares the statements and enters
 * pipeline mode. On error writes one line into err and returns -EIO
 * (unreachable, refused, timeout) or -EPROTO (schema too new). */
int pg_store_connect(const char *uri, int timeout_ms, pg_store **out, char *err,
                     size_t errlen);
/* Closes the connection (its incomplete tracks are then orphans, deleted
 * by the next connection to start). NULL ok. */
void pg_store_close(pg_store *st);

/* Applies every job of the list in one transaction: BEGIN, the jobs'
 * statements, COMMIT and a pipeline sync, sent together, results read
 * after. Each job gets its rc as in writer.h: 0, -EEXIST (ride id taken;
 * nothing stored for it), -ECANCELED (its track failed earlier), -EIO
 * (its track's earlier points were lost with a connection; the track is
 * marked failed). Returns 0 when the transaction committed, else -EIO:
 * nothing of the batch is stored (or, if the connection died after the
 * COMMIT was sent, the outcome is unknown and treated as failed), every
 * job must be failed, and pg_store_broken() says whether the connection
 * is unusable. Waits at most timeout_ms for the server. */
int pg_store_apply(pg_store *st, writer_job *batch, int timeout_ms);
/* For an idle connection: reads what the server sent unasked (the notice
 * of a shutdown, the end of the stream) without waiting. Nonzero when the
 * connection turned out to be lost (then pg_store_broken() is set too). */
int pg_store_check_idle(pg_store *st);
/* Nonzero once the connection is lost or timed out: close it. */
int pg_store_broken(const pg_store *st);
/* The last error for the operator (logs). */
const char *pg_store_error(const pg_store *st);
/* The same in a few words for clients (no host names, no SQL). */
const char *pg_store_reason(const pg_store *st);

#endif
