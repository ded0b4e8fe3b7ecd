/* Where Rides stores: see backend.h. A switch over two backends, kept
 * thin: each call goes straight to writer.c or pg_pool.c. */
#include "backend.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_pool.h"
#include "store_pg.h"

struct rides_backend {
    int pg;
    char *db;
    /* SQLite */
    store *st;
    writer w;
    /* PostgreSQL */
    pg_pool *pool;
    int lanes;
    store_sync sync;
};

static int open_sqlite(rides_backend *b, const backend_config *cfg, char *err, size_t errlen)
{
    int rc = store_open(cfg->db, cfg->sync, &b->st, err, errlen);
    if (rc != 0)
        return rc;
    rc = writer_init(&b->w, b->st, cfg->max_queued_points, cfg->done, cfg->on_commit, cfg->arg);
    if (rc == 0 && (rc = writer_start(&b->w)) != 0)
        writer_stop(&b->w, NULL);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the writer thread: %s", strerror(-rc));
        store_close(b->st);
        b->st = NULL;
    }
    return rc;
}

static int open_pg(rides_backend *b, const backend_config *cfg, char *err, size_t errlen)
{
    int rc = pg_check_uri(cfg->db, err, errlen);
    if (rc != 0)
        return rc;
    pg_pool_config pc = {
        .uri = cfg->db,
        .lanes = cfg->pool_size,
        .connect_timeout_ms = cfg->connect_timeout_ms,
        .query_timeout_ms = cfg->query_timeout_ms,
        .max_queued_points = cfg->max_queued_points,
        .done = cfg->done,
        .on_commit = cfg->on_commit,
        .on_health = cfg->on_health,
        .log = cfg->log,
        .arg = cfg->arg,
    };
    rc = pg_pool_start(&pc, &b->pool);
    if (rc != 0) {
        snprintf(err, errlen, "cannot start the PostgreSQL writer lanes: %s", strerror(-rc));
        return rc;
    }
    b->lanes = cfg->pool_size;
    /* A build loaded by a rolling update should serve from its first call:
     * give the first connection its connect timeout before init returns
     * (init runs on the host's control thread, never on a worker). If it
     * does not come, the plugin loads anyway, NOT_SERVING, and the lanes
     * keep trying. */
    pg_pool_wait_connected(b->pool, cfg->connect_timeout_ms);
    return 0;
}

int backend_open(const backend_config *cfg, rides_backend **out, char *err, size_t errlen)
{
    *out = NULL;
    rides_backend *b = calloc(1, sizeof *b);
    if (b == NULL || (b->db = strdup(cfg->db)) == NULL) {
        free(b);
        snprintf(err, errlen, "cannot open the rides store: out of memory");
        return -ENOMEM;
    }
    b->pg = pg_is_uri(cfg->db);
    b->sync = cfg->sync;
    int rc = b->pg ? open_pg(b, cfg, err, errlen) : open_sqlite(b, cfg, err, errlen);
    if (rc != 0) {
        free(b->db);
        free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void backend_close(rides_backend *b, writer_stats *final)
{
    if (b == NULL)
        return;
    if (b->pg) {
        pg_pool_stop(b->pool, final);
    } else {
        writer_stop(&b->w, final); /* commits and answers whatever is queued */
        store_close(b->st);
    }
    free(b->db);
    free(b);
}

int backend_submit(rides_backend *b, writer_job *job)
{
    return b->pg ? pg_pool_submit(b->pool, job) : writer_submit(&b->w, job);
}

size_t backend_wait_room(rides_backend *b, writer_waiter *wt)
{
    return b->pg ? pg_pool_wait_room(b->pool, wt) : writer_wait_room(&b->w, wt);
}

uint64_t backend_new_stage_id(rides_backend *b)
{
    return b->pg ? pg_pool_new_stage_id(b->pool) : writer_new_stage_id(&b->w);
}

void backend_set_commit_delay(rides_backend *b, uint64_t ns)
{
    if (b->pg)
        pg_pool_set_commit_delay(b->pool, ns);
    else
        writer_set_commit_delay(&b->w, ns);
}

int backend_set_sync(rides_backend *b, store_sync sync)
{
    if (b->pg)
        return 0;
    writer_set_sync(&b->w, sync);
    b->sync = sync;
    return 1;
}

void backend_describe(rides_backend *b, char *out, size_t len)
{
    if (b->pg) {
        char uri[256];
        pg_safe_uri(b->db, uri, sizeof uri);
        snprintf(out, len, "PostgreSQL %s (%d connections, pipelined group commit, schema v%d)",
                 uri, b->lanes, PG_SCHEMA_VERSION);
    } else {
        snprintf(out, len, "%s (WAL, synchronous=%s, schema v%d)", store_filename(b->st),
                 store_sync_name(b->sync), STORE_SCHEMA_VERSION);
    }
}

const char *backend_db(const rides_backend *b)
{
    return b->db;
}

int backend_is_pg(const rides_backend *b)
{
    return b->pg;
}
