/* host/metrics: Prometheus metrics (docs/metrics.md). A layer right above
 * core: every layer above counts through it. The interface the layers
 * above include:
 *   mx_core.h     per-worker shards of cells, families, series, mx_read
 *   mx_grpc.h     the gRPC series (go-grpc-prometheus names)
 *   mx_host.h     the host's rpchost_ series
 *   mx_collect.h  collectors run before a read; the process_ series
 *   mx_expose.h   the text formats
 *   mx_http.h     the scrape listener */
#ifndef RPCHOST_HOST_METRICS_H
#define RPCHOST_HOST_METRICS_H

#include "metrics/mx_collect.h"
#include "metrics/mx_core.h"
#include "metrics/mx_expose.h"
#include "metrics/mx_grpc.h"
#include "metrics/mx_host.h"
#include "metrics/mx_http.h"

#endif
