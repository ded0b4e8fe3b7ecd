"""Helpers for the metrics tests: an rpchost with --metrics-listen, a
scrape over plain HTTP/1.1 (http.client), and a parser of the Prometheus
text format that keeps every sample by name and labels."""
import http.client
import os
import re
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

SVC = "grpc.testing.TestService"
_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


class MetricsHost(rpchost_test.Host):
    """An rpchost serving metrics on its own loopback port."""

    def __init__(self, token_file=None, metrics_args=(), metrics_tls=False, **kw):
        self.metrics_tls = metrics_tls
        # the scrape listener is up before the plugins load: ready means
        # the built-ins (reflection, health, admin) and these serve
        self.expect_serving = 3 + len(kw.get("plugins", ("interop",)))
        self.metrics_port = rpchost_test.free_port()
        args = ["--metrics-listen", "127.0.0.1:%d" % self.metrics_port]
        self.token = None
        if token_file:
            with open(token_file) as f:
                self.token = f.readline().strip()
            args += ["--metrics-token-file", token_file]
        args += list(metrics_args)
        kw["args"] = list(kw.get("args", ())) + args
        super().__init__(**kw)

    def wait_ready(self, timeout=15):
        super().wait_ready(timeout)
        deadline = time.time() + timeout
        while True:
            try:
                serving = value(self.scrape(), "rpchost_plugins", state="serving")
            except OSError:
                serving = None
            if serving is not None and serving >= self.expect_serving:
                return
            if time.time() > deadline:
                raise RuntimeError("metrics listener up with %s plugins serving (want %d):\n%s"
                                   % (serving, self.expect_serving, self.logs()))
            time.sleep(0.05)

    def http(self, path="/metrics", headers=None, method="GET", auth=True):
        """(status, headers dict lowercased, body text) of one request;
        with the host's token unless auth is False or headers carry one."""
        headers = dict(headers or {})
        if auth and self.token:
            headers.setdefault("Authorization", "Bearer " + self.token)
        if self.metrics_tls:
            ctx = ssl.create_default_context(cafile=rpchost_test.CA)
            conn = http.client.HTTPSConnection("127.0.0.1", self.metrics_port, timeout=10,
                                               context=ctx)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.metrics_port, timeout=10)
        try:
            conn.request(method, path, headers=headers)
            r = conn.getresponse()
            body = r.read().decode()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            conn.close()

    def scrape(self, headers=None):
        status, _, body = self.http(headers=headers)
        expect(status == 200, "scrape answered %d: %s" % (status, body[:200]))
        return parse(body)


def parse(text):
    """{(name, frozenset of (label, value))): float} of every sample."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        expect(m is not None, "unparsable sample line %r" % line)
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        expect(key not in out, "sample %r twice" % line)
        out[key] = float(m.group(3))
    return out


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), None)


def method_labels(method, kind):
    return dict(grpc_type=kind, grpc_service=SVC, grpc_method=method)


def wait_for(host, cond, what, timeout=10):
    """Scrapes until cond(samples) holds; returns those samples. The counts
    of a call are updated by the server before its status leaves, but a
    client's cancellation reaches the server after the client returned."""
    deadline = time.time() + timeout
    while True:
        s = host.scrape()
        if cond(s):
            return s
        if time.time() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.05)
