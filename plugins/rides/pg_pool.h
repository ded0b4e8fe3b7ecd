/* The PostgreSQL writer: a bounded pool of lanes, each one thread that
 * owns one connection (pg_store) and its own job queue. A lane takes every
 * job queued to it so far and commits them in one pipelined transaction
 * (group commit), then reports each job through `done`, as writer.c does
 * for SQLite. Host worker threads only queue; they never wait on the
 * database.
 *
 * Routing: the jobs of one Track call go to one lane (stage id modulo the
 * lanes), so its incomplete track row and its points stay on one
 * connection and in order; a new Track's stage id is picked to land on a
 * connected lane. A Start goes to the next connected lane.
 *
 * Faults: a lane without a connection fails its jobs at once (UNAVAILABLE
 * with the reason) and reconnects in the background, with a backoff from
 * 100 ms to 2 s, also when no calls come (an idle lane looks at its
 * connection every second, so a server that went away is noticed without
 * calls); on_health reports when the
 * first lane connects (serving) and when the last one loses its
 * connection (not serving). Memory is bounded as in writer.h: queued
 * points over all lanes count against max_queued_points. */
#ifndef RIDES_PG_POOL_H
#define RIDES_PG_POOL_H

#include <stddef.h>
#include <stdint.h>

#include "writer.h"

/* Lanes (connections) at most; [plugin.rides] pool_size. */
#define PG_POOL_MAX 32

typedef struct pg_pool pg_pool;

typedef void (*pg_health_fn)(void *arg, int serving);

typedef struct pg_pool_config {
    const char *uri;
    int lanes;              /* 1..PG_POOL_MAX */
    int connect_timeout_ms; /* one connection attempt, set-up included */
    int query_timeout_ms;   /* one batch, from send to the last result */
    size_t max_queued_points;
    writer_done_fn done;
    writer_commit_fn on_commit; /* may be NULL */
    pg_health_fn on_health;     /* may be NULL; called on a lane thread */
    void (*log)(void *arg, int error, const char *line); /* may be NULL */
    void *arg;
} pg_pool_config;

/* Starts the lanes; they connect in the background (init does not wait
 * for the database). 0 or a negative errno (threads, memory). */
int pg_pool_start(const pg_pool_config *cfg, pg_pool **out);
/* Finishes every queued job (committed, or failed if its lane has no
 * connection), stops the lanes, closes the connections. */
void pg_pool_stop(pg_pool *p, writer_stats *final);

/* As writer_submit / writer_wait_room / writer_new_stage_id. */
int pg_pool_submit(pg_pool *p, writer_job *job);
size_t pg_pool_wait_room(pg_pool *p, writer_waiter *wt);
uint64_t pg_pool_new_stage_id(pg_pool *p);
void pg_pool_set_commit_delay(pg_pool *p, uint64_t ns);
void pg_pool_get_stats(pg_pool *p, writer_stats *out);
/* Waits until a lane is connected, at most timeout_ms; returns the lanes
 * connected then (0: none yet, they keep trying). */
int pg_pool_wait_connected(pg_pool *p, int timeout_ms);
/* Lanes connected now. */
int pg_pool_connected(pg_pool *p);

#endif
