"""The plugin metrics API (ABI 1.2) through a real scrape: a test plugin's
counters (updated on workers and on the control thread), gauge and
histogram; the three registrations the host must refuse; the series
continuing across a hot replace; a plugin loading and serving with
metrics off."""
import time

import grpc

import interop_cases as ic
import metrics_lib as ml
from metrics_lib import expect, value

results = ml.rpchost_test.Results()


def calls(ch, ok, failed):
    for _ in range(ok):
        ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
    for _ in range(failed):
        ic.fails_with(lambda: ic.unary_call(ch)(ic.messages.SimpleRequest(
            response_status=ic.messages.EchoStatus(code=5, message="no")), timeout=ic.TIMEOUT),
            grpc.StatusCode.NOT_FOUND)


def plugin_series_and_replace():
    with ml.MetricsHost(plugins=["interop", "metricstest"], plaintext=True) as h:
        ch = h.channel()
        try:
            calls(ch, 4, 2)
            # on_end runs after the status left: wait for the last one
            s = ml.wait_for(h, lambda s: value(s, "metricstest_calls_total", result="error") == 2,
                            "the plugin's counters")
            expect(value(s, "metricstest_calls_total", result="ok") == 4, "ok calls")
            expect(value(s, "metricstest_inits_total") == 1, "inits")
            expect(value(s, "metricstest_in_flight") == 0, "in flight")
            expect(value(s, "metricstest_refused") == 3, "refused registrations %s"
                   % value(s, "metricstest_refused"))
            expect(value(s, "metricstest_request_bytes_count") == 6, "histogram count")
            # EmptyCall: 5 bytes in (prefix, empty message); UnaryCall: a few more
            expect(value(s, "metricstest_request_bytes_bucket", le="10") == 4, "le=10")
            expect(value(s, "metricstest_request_bytes_bucket", le="100") == 6, "le=100")
            expect(value(s, "metricstest_request_bytes_bucket", le="+Inf") == 6, "+Inf")
            expect(value(s, "metricstest_request_bytes_sum") >= 20 + 2 * 5, "sum")
            logs = h.logs()
            for bad in ("grpc_server_started_total", "metricstest_no_suffix"):
                expect("metric %s not registered" % bad in logs, "no log line for %s:\n%s" % (bad, logs))

            # hot replace: the new instance's series are the old ones
            h.add_plugin("metricstest")
            ml.wait_for(h, lambda s: value(s, "metricstest_inits_total") == 2, "the replace")
            calls(ch, 1, 0)
            s = ml.wait_for(h, lambda s: value(s, "metricstest_calls_total", result="ok") == 5,
                            "counting to go on after the replace")
            expect(value(s, "metricstest_calls_total", result="error") == 2, "errors kept")
            expect(value(s, "metricstest_request_bytes_count") == 7, "histogram continued")
            expect(value(s, "rpchost_plugin_replaces_total") == 1, "replaces")
            expect(value(s, "rpchost_plugin_loads_total") == 2, "loads")
            expect(value(s, "rpchost_plugin_refusals_total") == 0, "refusals")
        finally:
            ch.close()


def metrics_off():
    """Without --metrics-listen metric_new returns NULL; the plugin loads
    and its interceptor runs with NULL handles."""
    with ml.rpchost_test.Host(plugins=["interop", "metricstest"], plaintext=True) as h:
        ch = h.channel()
        try:
            calls(ch, 2, 1)
            expect("not registered" not in h.logs(), "metric errors logged with metrics off")
        finally:
            ch.close()


def refused_plugin_counted():
    with ml.MetricsHost(plugins=["interop"], plaintext=True) as h:
        bad = h.add_plugin("interop", src=ml.rpchost_test.RPCHOST_BIN, dest_name="notaplugin")
        ml.wait_for(h, lambda s: value(s, "rpchost_plugin_refusals_total") == 1, "the refusal")
        import os
        os.unlink(bad)
        h.add_plugin("metricstest")
        ml.wait_for(h, lambda s: value(s, "rpchost_plugins", state="serving") == 5,
                    "interop, metricstest and the three built-ins serving")


results.run("plugin counters, gauge, histogram; refusals; hot replace", plugin_series_and_replace)
results.run("plugin with metrics off", metrics_off)
results.run("refused plugin file counted; plugins gauge", refused_plugin_counted)
results.finish()
