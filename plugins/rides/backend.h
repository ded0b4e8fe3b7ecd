/* Where Rides stores: the one interface rides.c talks to, over the two
 * backends. `db` in [plugin.rides] picks one: a libpq URI
 * (postgresql://USER@HOST:PORT/DBNAME) is PostgreSQL (store_pg.c written
 * by the lanes of pg_pool.c); anything else is an SQLite file path
 * (store.c written by the one thread of writer.c), the embedded default.
 *
 * Both take the same writer_job (writer.h), answer each through `done`
 * on a thread of their own only after the COMMIT that holds its rows, and
 * bound the queued track points the same way. */
#ifndef RIDES_BACKEND_H
#define RIDES_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "writer.h"

typedef struct rides_backend rides_backend;

typedef struct backend_config {
    const char *db;          /* a file path or a postgresql:// URI */
    store_sync sync;         /* SQLite only */
    int pool_size;           /* PostgreSQL only: connections (lanes) */
    int connect_timeout_ms;  /* PostgreSQL only */
    int query_timeout_ms;    /* PostgreSQL only: one batch's round trip */
    size_t max_queued_points;
    writer_done_fn done;
    writer_commit_fn on_commit; /* may be NULL */
    /* PostgreSQL: called when the first connection is up (1) and when the
     * last one is lost (0); on a backend thread. SQLite never calls it
     * (the file is open once init returned). May be NULL. */
    void (*on_health)(void *arg, int serving);
    void (*log)(void *arg, int error, const char *line); /* may be NULL */
    void *arg;
} backend_config;

/* Opens the backend and starts its thread(s). SQLite opens and migrates
 * the file now (an error fails init); PostgreSQL checks the URI and
 * connects in the background. On error: one line in err, negative errno. */
int backend_open(const backend_config *cfg, rides_backend **out, char *err, size_t errlen);
/* Answers every queued job, stops the threads, closes. NULL ok. */
void backend_close(rides_backend *b, writer_stats *final);

int backend_submit(rides_backend *b, writer_job *job);
size_t backend_wait_room(rides_backend *b, writer_waiter *wt);
uint64_t backend_new_stage_id(rides_backend *b);
void backend_set_commit_delay(rides_backend *b, uint64_t ns);
/* SQLite: applies before the next commit. PostgreSQL: 0 (not applicable). */
int backend_set_sync(rides_backend *b, store_sync sync);
/* One line for the log: what and where it stores. */
void backend_describe(rides_backend *b, char *out, size_t len);
/* The db setting it was opened with. */
const char *backend_db(const rides_backend *b);
/* Nonzero for PostgreSQL. */
int backend_is_pg(const rides_backend *b);

#endif
