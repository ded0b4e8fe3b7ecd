/* Per-method figures for the admin service's WatchStats: a snapshot of the
 * gRPC series (grpc_server_handled_total, grpc_server_handling_seconds)
 * read through mx_read, and the difference of two snapshots turned into
 * rates and latency quantiles.
 *
 * Owner: host/builtin/. Threads: any (mx_read takes the metrics lock); a
 * snapshot belongs to one caller. Memory: stats_snap_take mallocs the
 * snapshot, stats_snap_free frees it. */
#ifndef RPCHOST_HOST_ADMIN_STATS_H
#define RPCHOST_HOST_ADMIN_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/metrics.h"

#define STATS_MAX_METHODS 512 /* methods reported; more are left out */

typedef struct stats_method {
    char path[160]; /* "/pkg.Service/Method" */
    char type[16];  /* "unary", "server_stream", ... */
    uint64_t handled[MX_GRPC_CODES];
    uint64_t buckets[MX_MAX_BUCKETS + 1]; /* cumulative, last = +Inf */
} stats_method;

typedef struct stats_snap {
    int64_t mono_ns;
    size_t n_bounds;
    double bounds[MX_MAX_BUCKETS];
    size_t n;
    stats_method m[STATS_MAX_METHODS];
} stats_snap;

/* A snapshot of every method; NULL when out of memory. With metrics off it
 * holds no method. */
stats_snap *stats_snap_take(void);
void stats_snap_free(stats_snap *s);
/* The entry of path/type in s, or NULL. */
const stats_method *stats_snap_find(const stats_snap *s, const char *path, const char *type);
/* The q quantile (0..1) of the calls between prev and cur (prev may be
 * NULL: since start), interpolated linearly inside the bucket as
 * Prometheus' histogram_quantile does; the highest finite bound when it
 * falls in +Inf; 0 without calls. */
double stats_quantile(const stats_snap *snap, const stats_method *cur, const stats_method *prev,
                      double q);

#endif
