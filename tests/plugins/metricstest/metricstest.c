/* metricstest (test only): one interceptor, metricstest.count, and series
 * made through the plugin metrics API:
 *   metricstest_inits_total            +1 per init (control thread: the
 *                                      shared shard); 2 after a replace
 *   metricstest_calls_total{result}    +1 per call at on_end (worker
 *                                      shards), result "ok" or "error"
 *   metricstest_in_flight              gauge: +1 on_start, -1 on_end
 *   metricstest_request_bytes          histogram of bytes_in per call,
 *                                      bounds 10, 100, 1000
 *   metricstest_refused                gauge: registrations the host
 *                                      refused, of three bad ones tried
 *   metricstest_load_total{n}          with [plugin.metricstest] series=N:
 *                                      N series, each 1 (scrape bench) */
#include <stdio.h>
#include <stdlib.h>

#include "rpchost/plugin.h"
#include "rpchost_descriptor_set.h"

static const rh_host_api *api;
static rh_series *calls_ok, *calls_err, *in_flight, *req_bytes;

static rh_status count_start(rh_call *call, const char **message)
{
    (void)call;
    (void)message;
    api->metric_gauge_add(in_flight, 1);
    return RH_OK;
}

static void count_end(rh_call *call, const rh_call_stats *st)
{
    (void)call;
    api->metric_add(st->status == RH_OK ? calls_ok : calls_err, 1);
    api->metric_observe(req_bytes, (double)st->bytes_in);
    api->metric_gauge_add(in_flight, -1);
}

static const rh_interceptor interceptors[] = {
    {.name = "count", .on_start = count_start, .on_end = count_end},
};

static rh_series *one(rh_metric *m, const char *label)
{
    const char *v[1] = {label};
    return api->metric_series(m, label ? v : NULL);
}

static int mt_init(const rh_host_api *a, rh_plugin_ctx *ctx)
{
    api = a;
    if (a->size <= offsetof(rh_host_api, metric_observe)) {
        a->log(ctx, RH_LOG_ERROR, "needs a host with the metrics API (ABI 1.2)");
        return -22;
    }
    rh_metric *inits = a->metric_new(ctx, RH_METRIC_COUNTER, "metricstest_inits_total",
                                     "Plugin inits.", NULL, NULL, 0);
    a->metric_add(one(inits, NULL), 1);
    rh_metric *calls = a->metric_new(ctx, RH_METRIC_COUNTER, "metricstest_calls_total",
                                     "Calls seen, by result.", "result", NULL, 0);
    calls_ok = one(calls, "ok");
    calls_err = one(calls, "error");
    in_flight = one(a->metric_new(ctx, RH_METRIC_GAUGE, "metricstest_in_flight",
                                  "Calls running.", "", NULL, 0),
                    NULL);
    static const double bounds[] = {10, 100, 1000};
    req_bytes = one(a->metric_new(ctx, RH_METRIC_HISTOGRAM, "metricstest_request_bytes",
                                  "Request bytes per call.", NULL, bounds, 3),
                    NULL);
    /* Three registrations the host must refuse. */
    int refused = 0;
    refused += !a->metric_new(ctx, RH_METRIC_COUNTER, "grpc_server_started_total", "x", NULL,
                              NULL, 0);
    refused += !a->metric_new(ctx, RH_METRIC_COUNTER, "metricstest_no_suffix", "x", NULL, NULL, 0);
    refused += !a->metric_new(ctx, RH_METRIC_GAUGE, "metricstest_calls_total", "x", "result",
                              NULL, 0);
    a->metric_set(one(a->metric_new(ctx, RH_METRIC_GAUGE, "metricstest_refused",
                                    "Bad registrations refused.", NULL, NULL, 0),
                      NULL),
                  refused);
    const char *n = a->config_get(ctx, "series");
    long want = n ? strtol(n, NULL, 10) : 0;
    if (want > 0) {
        rh_metric *load = a->metric_new(ctx, RH_METRIC_COUNTER, "metricstest_load_total",
                                        "Scrape bench series.", "n", NULL, 0);
        for (long i = 0; i < want; i++) {
            char id[24];
            snprintf(id, sizeof id, "%ld", i);
            a->metric_add(one(load, id), 1);
        }
    }
    return 0;
}

static const rh_plugin_descriptor desc = {
    .abi = RH_ABI_BLOCK_INIT("metricstest", "1.0.0"),
    .interceptors = interceptors,
    .n_interceptors = sizeof interceptors / sizeof interceptors[0],
    .descriptor_set = rh_descriptor_set,
    .descriptor_set_len = sizeof rh_descriptor_set,
    .init = mt_init,
};

RPCHOST_PLUGIN_NOTE("metricstest", "1.0.0");
RPCHOST_PLUGIN_DEFINE(desc)
