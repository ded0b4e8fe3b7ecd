/* Plugin metrics (api_metrics.h; the contract is in plugin.h). An rh_metric
 * is an mx_family and an rh_series an mx_series: the handles a plugin
 * holds point straight at the host's records, so an update costs what a
 * host update costs. */
#include "rpc/api_metrics.h"

#include <stdio.h>
#include <string.h>

#include "metrics/metrics.h"
#include "registry/registry.h"

static const char *const reserved[] = {"grpc_", "rpchost_", "process_"};

rh_metric *mx_plugin_metric_new(rh_plugin_ctx *ctx, rh_metric_type type, const char *name,
                                const char *help, const char *labels, const double *buckets,
                                size_t n_buckets)
{
    if (!mx_enabled() || !ctx) return NULL;
    char why[256] = "";
    if (type != RH_METRIC_COUNTER && type != RH_METRIC_GAUGE && type != RH_METRIC_HISTOGRAM)
        snprintf(why, sizeof why, "unknown metric type %d", (int)type);
    for (size_t i = 0; !why[0] && name && i < sizeof reserved / sizeof reserved[0]; i++)
        if (strncmp(name, reserved[i], strlen(reserved[i])) == 0)
            snprintf(why, sizeof why, "the prefix %s is the host's", reserved[i]);
    size_t n = name ? strlen(name) : 0;
    if (!why[0] && type == RH_METRIC_COUNTER && (n < 7 || strcmp(name + n - 6, "_total") != 0))
        snprintf(why, sizeof why, "a counter's name ends in _total");
    mx_family *f = NULL;
    if (!why[0])
        f = mx_family_new(type == RH_METRIC_COUNTER ? MX_COUNTER
                          : type == RH_METRIC_GAUGE ? MX_GAUGE
                                                    : MX_HISTOGRAM,
                          name, help, labels, type == RH_METRIC_HISTOGRAM ? buckets : NULL,
                          type == RH_METRIC_HISTOGRAM ? n_buckets : 0, plugin_ctx_name(ctx), why,
                          sizeof why);
    if (!f)
        plugin_ctx_log(ctx, RH_LOG_ERROR, "metric %.100s not registered: %s",
                       name ? name : "(null)", why);
    return (rh_metric *)f;
}

rh_series *mx_plugin_series(rh_metric *metric, const char *const *label_values)
{
    mx_family *f = (mx_family *)metric;
    if (!f) return NULL;
    if (f->n_labels && !label_values) return NULL;
    return (rh_series *)mx_series_get(f, label_values);
}

void mx_plugin_add(rh_series *series, uint64_t n)
{
    const mx_series *s = (const mx_series *)series;
    if (s && s->family->type == MX_COUNTER) mx_add(s->cell, n);
}

void mx_plugin_set(rh_series *series, double value)
{
    const mx_series *s = (const mx_series *)series;
    if (s && s->family->type == MX_GAUGE) mx_gauge_set(s, value);
}

void mx_plugin_gauge_add(rh_series *series, double delta)
{
    const mx_series *s = (const mx_series *)series;
    if (s && s->family->type == MX_GAUGE) mx_gauge_add(s, delta);
}

void mx_plugin_observe(rh_series *series, double value)
{
    const mx_series *s = (const mx_series *)series;
    if (s && s->family->type == MX_HISTOGRAM) mx_observe(s, value);
}
