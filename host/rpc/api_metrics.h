/* The plugin metrics API of rh_host_api (ABI 1.2): families owned by a
 * plugin's name, series handles that are mx_series (host/metrics). */
#ifndef RPCHOST_HOST_API_METRICS_H
#define RPCHOST_HOST_API_METRICS_H

#include "rpchost/plugin.h"

rh_metric *mx_plugin_metric_new(rh_plugin_ctx *ctx, rh_metric_type type, const char *name,
                                const char *help, const char *labels, const double *buckets,
                                size_t n_buckets);
rh_series *mx_plugin_series(rh_metric *metric, const char *const *label_values);
void mx_plugin_add(rh_series *series, uint64_t n);
void mx_plugin_set(rh_series *series, double value);
void mx_plugin_gauge_add(rh_series *series, double delta);
void mx_plugin_observe(rh_series *series, double value);

#endif
