"""A real Prometheus (Debian's prometheus) scrapes rpchost on loopback
(HTTPS with a bearer token);
after known calls the counts read back through its HTTP API match
exactly. The test waits for a scrape that started after the calls (by its
timestamp), with a deadline."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request

import grpc

import interop_cases as ic
import metrics_lib as ml
from metrics_lib import expect

results = ml.rpchost_test.Results()
PROMETHEUS = shutil.which("prometheus")
TOKEN = "prom-scrape-token"


class Prometheus:
    def __init__(self, target, token_file, ca_file):
        self.tmp = tempfile.mkdtemp(prefix="rpchost-prom-")
        self.port = ml.rpchost_test.free_port()
        cfg = os.path.join(self.tmp, "prometheus.yml")
        with open(cfg, "w") as f:
            # A scrape is TLS + the whole exposition: under ASan on a loaded
            # 2-core machine that has taken over 200 ms, which Prometheus
            # records as a failed scrape (up == 0). 1 s keeps every wait
            # below short and leaves a failed scrape to a real fault.
            f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                    "scrape_configs:\n  - job_name: rpchost\n    scheme: https\n"
                    "    tls_config:\n      ca_file: %s\n      server_name: localhost\n"
                    "    authorization:\n      credentials_file: %s\n"
                    "    static_configs:\n      - targets: ['%s']\n" % (ca_file, token_file, target))
        self.log = open(os.path.join(self.tmp, "prometheus.log"), "wb")
        self.proc = subprocess.Popen(
            [PROMETHEUS, "--config.file", cfg, "--storage.tsdb.path", os.path.join(self.tmp, "data"),
             "--web.listen-address", "127.0.0.1:%d" % self.port], stdout=self.log,
            stderr=subprocess.STDOUT, cwd=self.tmp)

    def api(self, path, **params):
        url = "http://127.0.0.1:%d/api/v1/%s?%s" % (self.port, path, urllib.parse.urlencode(params))
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        expect(body["status"] == "success", "prometheus: %r" % body)
        return body["data"]

    def query(self, q, at=None):
        """{frozenset(labels): value} of an instant query."""
        params = {"query": q}
        if at is not None:
            # timestamps are whole ms: a float a hair below one would
            # select the sample before it
            params["time"] = "%.3f" % at
        data = self.api("query", **params)
        return {frozenset((k, v) for k, v in r["metric"].items() if k not in ("job", "instance")):
                float(r["value"][1]) for r in data["result"]}

    def wait_scrape_after(self, t0, timeout=60):
        """The time of a successful scrape that began after t0."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited:\n" + self.logs())
            try:
                r = self.query('timestamp(up{job="rpchost"} == 1)')
            except OSError:
                r = {}
            if r and max(r.values()) > t0:
                return max(r.values())
            time.sleep(0.1)
        raise AssertionError("no scrape after the calls within %ss:\n%s" % (timeout, self.logs()))

    def logs(self):
        self.log.flush()
        with open(self.log.name, "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def through_prometheus():
    tmp = tempfile.mkdtemp(prefix="rpchost-promtok-")
    token_file = os.path.join(tmp, "token")
    with open(token_file, "w") as f:
        f.write(TOKEN + "\n")
    try:
        # the host over TLS, the scrape over TLS with the host's certificate
        with ml.MetricsHost(plugins=["interop", "metricstest"], token_file=token_file,
                            config="[rpchost]\nmetrics_tls = true\n", metrics_tls=True) as h:
            prom = Prometheus("127.0.0.1:%d" % h.metrics_port, token_file, ml.rpchost_test.CA)
            try:
                prom.wait_scrape_after(0)  # Prometheus up and scraping
                ch = h.channel()
                try:
                    for _ in range(7):
                        ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
                    for _ in range(3):
                        ic.fails_with(lambda: ic.unary_call(ch)(ic.messages.SimpleRequest(
                            response_status=ic.messages.EchoStatus(code=9, message="no")),
                            timeout=ic.TIMEOUT), grpc.StatusCode.FAILED_PRECONDITION)
                    out = list(ic.output_call(ch)(ic.messages.StreamingOutputCallRequest(
                        response_parameters=ic.params(1, 1)), timeout=ic.TIMEOUT))
                    expect(len(out) == 2, "stream")
                finally:
                    ch.close()
                # the plugin's on_end runs after the status left
                ml.wait_for(h, lambda s: ml.value(s, "metricstest_calls_total", result="error") == 3,
                            "the plugin's last count")
                svc = 'grpc_service="grpc.testing.TestService"'
                checks = [
                    ('grpc_server_started_total{%s,grpc_method="EmptyCall"}' % svc, 7),
                    ('grpc_server_handled_total{%s,grpc_method="EmptyCall",grpc_code="OK"}' % svc, 7),
                    ('grpc_server_handled_total{%s,grpc_method="UnaryCall",grpc_code="FailedPrecondition"}'
                     % svc, 3),
                    ('grpc_server_msg_received_total{%s,grpc_method="UnaryCall"}' % svc, 3),
                    ('grpc_server_msg_sent_total{%s,grpc_method="StreamingOutputCall",'
                     'grpc_type="server_stream"}' % svc, 2),
                    ('grpc_server_handling_seconds_count{%s,grpc_method="EmptyCall"}' % svc, 7),
                    ('sum(grpc_server_started_total)', 11),
                    ('count(grpc_server_handled_total{%s,grpc_code!~"OK|FailedPrecondition"} > 0) or vector(0)'
                     % svc, 0),
                    ('metricstest_calls_total{result="ok"}', 8),
                    ('metricstest_calls_total{result="error"}', 3),
                    ('metricstest_request_bytes_count', 11),
                ]
                # Every figure as of one scrape that began after the calls
                # were counted. Counters only grow: a figure above what is
                # expected never comes right, and fails at the deadline.
                t0 = time.time()
                deadline = t0 + 30
                while True:
                    t = prom.wait_scrape_after(t0)
                    got = {}
                    for q, want in checks:
                        r = prom.query(q, t)
                        got[q] = list(r.values())[0] if len(r) == 1 else r
                    wrong = ["%s = %r, want %d" % (q, got[q], want) for q, want in checks
                             if got[q] != want]
                    if not wrong:
                        break
                    if time.time() > deadline:
                        raise AssertionError("through Prometheus at %.3f (calls done by %.3f):\n  %s"
                                             % (t, t0, "\n  ".join(wrong)))
                    t0 = t
                # every series rpchost exposes was ingested
                names = set(prom.api("label/__name__/values"))
                for n in ("grpc_server_handling_seconds_bucket", "rpchost_connections_opened_total",
                          "process_cpu_seconds_total", "rpchost_build_info"):
                    expect(n in names, "%s not in Prometheus" % n)
                # every query of the Grafana dashboard in docs/ is valid PromQL
                # and finds data (authlog is not loaded here)
                with open(os.path.join(ml.rpchost_test.SOURCE_DIR, "docs", "grafana-rpchost.json")) as f:
                    dash = json.load(f)
                # rate() needs two samples in its window: one more scrape
                t = prom.wait_scrape_after(t)
                for panel in dash["panels"]:
                    for tgt in panel["targets"]:
                        q = (tgt["expr"].replace("$__rate_interval", "1m").replace("$__range", "5m")
                             .replace("$job", "rpchost").replace("$instance", ".*"))
                        r = prom.query(q, t)
                        expect(r or "authlog" in q or "rides" in q,
                               "dashboard query finds nothing: %s" % q)
            finally:
                prom.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if PROMETHEUS is None:
    print("prometheus not installed (scripts/install-deps installs it)")
    raise SystemExit(77)
results.run("counts read back through Prometheus match exactly", through_prometheus)
results.finish()
