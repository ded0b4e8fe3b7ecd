/* The gRPC server series, with go-grpc-prometheus's names, labels and code
 * names, so dashboards built for it work unchanged:
 *   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
 *   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
 *   grpc_server_msg_received_total{grpc_type,grpc_service,grpc_method}
 *   grpc_server_msg_sent_total{grpc_type,grpc_service,grpc_method}
 *   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method} (histogram)
 * A method's series are made when its route is built (registry, control
 * thread): every code of handled_total at 0, as go-grpc-prometheus's
 * Register does. The route carries the mx_method, so counting a call is a
 * handful of shard-local additions. Calls refused before routing (unknown
 * method, bad headers) count under grpc_service="unknown",
 * grpc_method="unknown", grpc_type="unary" (docs/metrics.md). */
#ifndef RPCHOST_HOST_MX_GRPC_H
#define RPCHOST_HOST_MX_GRPC_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics/mx_core.h"

#define MX_GRPC_CODES 17

typedef struct mx_method {
    const mx_series *started;
    const mx_series *handled[MX_GRPC_CODES];
    const mx_series *received, *sent;
    const mx_series *seconds;
} mx_method;

/* Makes the families (bounds NULL: go-grpc-prometheus's defaults). 0, or
 * -errno. Until then (metrics off) mx_grpc_method returns NULL and nothing
 * is counted. */
int mx_grpc_init(const double *bounds, size_t n_bounds);
/* The series of a method path "/pkg.Service/Method" with its streaming
 * kind (made the first time; the same again on hot replace). NULL when
 * metrics are off or out of memory. */
const mx_method *mx_grpc_method(const char *path, bool client_streaming, bool server_streaming);
/* Calls answered before routing; NULL when metrics are off. */
const mx_method *mx_grpc_unrouted(void);
/* Frees the method records (after the workers stopped; before mx_shutdown). */
void mx_grpc_free(void);
/* go-grpc-prometheus's name of a code ("OK", "InvalidArgument", ...). */
const char *mx_grpc_code_name(int code);

#endif
