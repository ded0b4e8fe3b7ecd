"""The metrics listener as a scraper and an operator see it: text format
0.0.4 that promtool accepts, OpenMetrics on request, a bearer token,
strict HTTP (404, 405, 431, 400 for a body), keep-alive and HTTP/1.0,
start-up refusals, and the host and process_ series."""
import os
import select
import tempfile
import socket
import subprocess
import time

import interop_cases as ic
import metrics_lib as ml
from metrics_lib import expect, value

results = ml.rpchost_test.Results()

# An empty plugin directory of our own (/tmp itself is writable by all,
# which the host refuses as a plugin directory).
EMPTY_PLUGINS = tempfile.mkdtemp(prefix="rpchost-mx-plugins-")


def promtool_accepts():
    with ml.MetricsHost(plugins=["interop", "metricstest"], plaintext=True) as h:
        ch = h.channel()
        try:
            ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
        finally:
            ch.close()
        status, hdrs, body = h.http()
        expect(hdrs["content-type"] == "text/plain; version=0.0.4; charset=utf-8",
               "content-type %r" % hdrs["content-type"])
        r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True,
                           text=True, timeout=60)
        expect(r.returncode == 0, "promtool: %s%s" % (r.stdout, r.stderr))
        # OpenMetrics when asked, as Prometheus asks
        accept = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;"
                  "version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
        status, hdrs, om = h.http(headers={"Accept": accept})
        expect(status == 200 and hdrs["content-type"].startswith("application/openmetrics-text; "
                                                                 "version=1.0.0"), "OM %r" % hdrs)
        expect(om.endswith("# EOF\n"), "no # EOF")
        expect("# TYPE grpc_server_started counter\n" in om, "OM counter family name")
        expect('grpc_server_handling_seconds_bucket{grpc_type="unary",grpc_service="grpc.testing.'
               'TestService",grpc_method="EmptyCall",le="1.0"} 1' in om, "OM le as a float")


def host_series():
    with ml.MetricsHost(plugins=["interop"], plaintext=True) as h:
        ch = h.channel()
        try:
            for _ in range(2):
                ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
            s = h.scrape()
            expect(value(s, "rpchost_connections_opened_total") >= 1, "connections opened")
            expect(value(s, "rpchost_connections_open") >= 1, "connections open")
            expect(value(s, "rpchost_http2_streams_opened_total") >= 2, "streams")
            expect(value(s, "rpchost_received_bytes_total") > 0, "bytes in")
            expect(value(s, "rpchost_sent_bytes_total") > 0, "bytes out")
            busy = sum(value(s, "rpchost_worker_busy_seconds_total", worker=str(w)) for w in (0, 1))
            expect(busy > 0, "busy time")
            expect(any(k[0] == "rpchost_build_info" and v == 1 for k, v in s.items()), "build_info")
            expect(value(s, "process_open_fds") > 3, "open fds")
            expect(value(s, "process_resident_memory_bytes") > 1 << 20, "rss")
            expect(value(s, "process_virtual_memory_bytes") > value(s, "process_resident_memory_bytes"), "vsize")
            expect(value(s, "process_max_fds") >= 64, "max fds")
            expect(abs(value(s, "process_start_time_seconds") - time.time()) < 600, "start time")
            expect(value(s, "process_cpu_seconds_total") >= 0, "cpu")
        finally:
            ch.close()
        # the client went away: the connection is counted closed
        ml.wait_for(h, lambda s: value(s, "rpchost_connections_open") == 0, "the close")
        s = h.scrape()
        closed = sum(v for k, v in s.items() if k[0] == "rpchost_connections_closed_total")
        expect(closed == value(s, "rpchost_connections_opened_total"), "closed == opened")
        expect(value(s, "rpchost_http2_streams_open") == 0, "streams open")
        expect(value(s, "rpchost_http2_streams_closed_total") ==
               value(s, "rpchost_http2_streams_opened_total"), "streams closed == opened")


def tls_handshakes():
    with ml.MetricsHost(plugins=["interop"]) as h:
        # one address: "localhost" would let grpcio race IPv4 and IPv6
        ch = h.channel(target="127.0.0.1:%d" % h.port)
        try:
            ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
        finally:
            ch.close()
        s = ml.wait_for(h, lambda s: value(s, "rpchost_connections_open") == 0, "grpcio to go")
        expect(value(s, "rpchost_tls_handshakes_total") == 1, "handshakes %s"
               % value(s, "rpchost_tls_handshakes_total"))
        failed = value(s, "rpchost_tls_handshake_failures_total", reason="error")
        # a client that is not TLS at all
        with socket.create_connection(("127.0.0.1", h.port), timeout=5) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.recv(100)
        ml.wait_for(h, lambda s: value(s, "rpchost_tls_handshake_failures_total",
                                       reason="error") == failed + 1, "the failed handshake")


def metrics_over_tls():
    """metrics_tls: the scrape over HTTPS with the host's certificate; a
    plain HTTP request to it gets no answer."""
    cfg = "[rpchost]\nmetrics_tls = true\n"
    with ml.MetricsHost(plugins=["interop"], config=cfg, metrics_tls=True) as h:
        s = h.scrape()
        expect(value(s, "rpchost_build_info", version=next(
            dict(k[1])["version"] for k in s if k[0] == "rpchost_build_info"),
            abi=next(dict(k[1])["abi"] for k in s if k[0] == "rpchost_build_info")) == 1, "build_info")
        try:  # closed (a TLS alert at most) or reset: never the metrics
            got = raw(h.metrics_port, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
        except ConnectionResetError:
            got = b""
        expect(b"grpc_server" not in got, "plain HTTP answered on the TLS listener")
        expect(value(h.scrape(), "rpchost_plugin_loads_total") == 1, "still serving")
        expect("metrics on https://" in h.logs(), "log line")
    # its own certificate on an h2c host; and a pair that does not match
    own = "[rpchost]\nmetrics_cert = %s\nmetrics_key = %s\n" % (ml.rpchost_test.SERVER_CERT,
                                                                 ml.rpchost_test.SERVER_KEY)
    with ml.MetricsHost(plugins=["interop"], plaintext=True, config=own, metrics_tls=True) as h:
        expect(value(h.scrape(), "rpchost_plugin_loads_total") == 1, "scrape over TLS")
    port = ml.rpchost_test.free_port()
    for cfg, want in (("metrics_tls = true\n", "no certificate"),
                      ("metrics_cert = %s\nmetrics_key = %s\n" % (ml.rpchost_test.SERVER_CERT,
                                                                   ml.rpchost_test.CLIENT_KEY),
                       "cannot use certificate"),
                      ("metrics_cert = %s\n" % ml.rpchost_test.SERVER_CERT, "go together")):
        path = os.path.join("/tmp", "rpchost-mx-tls-%d.ini" % os.getpid())
        with open(path, "w") as f:
            f.write("[rpchost]\nmetrics_listen = 127.0.0.1:%d\n%s" % (port, cfg))
        try:
            r = subprocess.run([ml.rpchost_test.RPCHOST_BIN, "--plugins", EMPTY_PLUGINS, "--plaintext",
                                "--listen", "127.0.0.1:%d" % ml.rpchost_test.free_port(),
                                "--config", path], capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(path)
        expect(r.returncode == 2 and want in r.stdout + r.stderr, "%r: %d %r" % (cfg, r.returncode,
                                                                            r.stdout + r.stderr))


def token():
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), "rpchost-metrics-token-%d" % os.getpid())
    with open(tmp, "w") as f:
        f.write("s3cret-token\n")
    try:
        with ml.MetricsHost(plugins=["interop"], plaintext=True, token_file=tmp) as h:
            st, hd, _ = h.http(auth=False)
            expect(st == 401 and hd.get("www-authenticate", "").startswith("Bearer"), "no token: %d" % st)
            st, _, _ = h.http(headers={"Authorization": "Bearer wrong"})
            expect(st == 401, "wrong token: %d" % st)
            st, _, body = h.http(headers={"Authorization": "Bearer s3cret-token"}, auth=False)
            expect(st == 200 and "grpc_server_started_total" in body, "right token: %d" % st)
        # the longest token the file may hold works (the Authorization
        # header is not cut short of it); a longer one is refused at start
        long_token = "t" * 1024
        with open(tmp, "w") as f:
            f.write(long_token + "\n")
        with ml.MetricsHost(plugins=["interop"], plaintext=True, token_file=tmp) as h:
            st, _, _ = h.http(headers={"Authorization": "Bearer " + long_token}, auth=False)
            expect(st == 200, "1024-byte token: %d" % st)
            st, _, _ = h.http(headers={"Authorization": "Bearer " + long_token[:-1]}, auth=False)
            expect(st == 401, "1023 bytes of it: %d" % st)
        with open(tmp, "w") as f:
            f.write(long_token + "t\n")
        r = subprocess.run([ml.rpchost_test.RPCHOST_BIN, "--plugins", EMPTY_PLUGINS, "--plaintext",
                            "--listen", "127.0.0.1:%d" % ml.rpchost_test.free_port(),
                            "--metrics-listen", "127.0.0.1:%d" % ml.rpchost_test.free_port(),
                            "--metrics-token-file", tmp], capture_output=True, text=True, timeout=30)
        expect(r.returncode != 0 and "longer than 1024 bytes" in r.stderr,
               "1025-byte token: %d %r" % (r.returncode, r.stderr))
    finally:
        os.unlink(tmp)


def raw(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            b = s.recv(65536)
            if not b:
                return out
            out += b


def strict_http():
    with ml.MetricsHost(plugins=["interop"], plaintext=True) as h:
        expect(h.http("/nope")[0] == 404, "404")
        expect(h.http(method="POST")[0] == 405, "405")
        expect(h.http("/metrics?x=1")[0] == 200, "query string ignored")
        big = raw(h.metrics_port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 9000 + b"\r\n\r\n")
        expect(big.startswith(b"HTTP/1.1 431 "), "431: %r" % big[:40])
        body = raw(h.metrics_port, b"GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        expect(body.startswith(b"HTTP/1.1 400 "), "body: %r" % body[:40])
        junk = raw(h.metrics_port, b"\x16\x03\x01\x00\x00garbage\r\n\r\n")
        expect(junk.startswith(b"HTTP/1.1 400 "), "junk: %r" % junk[:40])
        # HTTP/1.0: answered, then closed (raw() reads to EOF)
        one = raw(h.metrics_port, b"GET /metrics HTTP/1.0\r\n\r\n")
        expect(one.startswith(b"HTTP/1.1 200 ") and b"grpc_server_started_total" in one, "1.0")
        # keep-alive: two pipelined requests, the second closes
        two = raw(h.metrics_port, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
                                  b"HEAD /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        expect(two.count(b"HTTP/1.1 200 OK") == 2, "two answers")
        # a silent client does not block scrapes
        with socket.create_connection(("127.0.0.1", h.metrics_port), timeout=10):
            expect(h.http()[0] == 200, "scrape beside a silent connection")


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))


def pipelined_unread():
    """A client that pipelines scrapes and never reads the answers: the
    listener stops reading once an answer waits, so the client is held
    back by TCP and the host's memory stays put; the answers still come
    in order once the client reads."""
    with ml.MetricsHost(plugins=["interop"], plaintext=True) as h:
        before = rss_kib(h.proc.pid)
        req = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n"
        chunk = req * 1024
        cap = 32 << 20  # far above what kernel buffers hold on loopback
        sent = 0
        with socket.create_connection(("127.0.0.1", h.metrics_port), timeout=10) as s:
            s.setblocking(False)
            while sent < cap:
                try:
                    sent += s.send(chunk)
                except BlockingIOError:
                    # held back: writable again only if the host reads on
                    _, w, _ = select.select([], [s], [], 1.0)
                    if not w:
                        break
            expect(sent < cap, "the host read %d bytes of unanswered requests" % sent)
            grown = rss_kib(h.proc.pid) - before
            expect(grown < 64 * 1024, "host RSS grew by %d KiB" % grown)
            s.setblocking(True)
            got = b""
            while got.count(b"HTTP/1.1 200 OK") < 2:
                b = s.recv(65536)
                expect(b, "closed before two answers")
                got += b
            expect(got.startswith(b"HTTP/1.1 200 OK"), "first answer: %r" % got[:40])
        expect(h.http()[0] == 200, "scrapes go on")


def startup_refusals():
    port = ml.rpchost_test.free_port()
    cases = [
        (["--listen", "127.0.0.1:%d" % port, "--metrics-listen", "127.0.0.1:%d" % port],
         "own port"),
        (["--metrics-listen", "nonsense"], "metrics_listen"),
        (["--metrics-token-file", "/nonexistent"], "need metrics_listen"),
    ]
    for args, want in cases:
        r = subprocess.run([ml.rpchost_test.RPCHOST_BIN, "--plugins", EMPTY_PLUGINS, "--plaintext"] + args,
                           capture_output=True, text=True, timeout=30)
        expect(r.returncode == 2 and want in r.stderr, "%s: %d %r" % (args, r.returncode, r.stderr))
    for bad in ("0.1,0.05", "x", "0,1"):
        cfg = os.path.join("/tmp", "rpchost-mx-%d.ini" % os.getpid())
        with open(cfg, "w") as f:
            f.write("[rpchost]\nmetrics_listen = 127.0.0.1:%d\nmetrics_buckets = %s\n" % (port, bad))
        try:
            r = subprocess.run([ml.rpchost_test.RPCHOST_BIN, "--plugins", EMPTY_PLUGINS, "--plaintext",
                                "--config", cfg], capture_output=True, text=True, timeout=30)
        finally:
            os.unlink(cfg)
        expect(r.returncode == 2 and "metrics_buckets" in r.stderr, "%s: %r" % (bad, r.stderr))


results.run("promtool accepts the text; OpenMetrics on request", promtool_accepts)
results.run("host and process_ series", host_series)
results.run("TLS handshakes and failures", tls_handshakes)
results.run("bearer token", token)
results.run("metrics over TLS", metrics_over_tls)
results.run("strict HTTP/1.1", strict_http)
results.run("pipelined scrapes never read", pipelined_unread)
results.run("start-up refusals", startup_refusals)
os.rmdir(EMPTY_PLUGINS)
results.finish()
