"""Cross-check of `rpcall bench` against h2load: the same server, method,
concurrency and number of calls, run one after the other, figures side by
side (calls/s, p50, p99, the server's CPU per call)."""
import json
import os
import subprocess

from procs import pinned
from report import Row

UNARY_JSON = '{"responseSize": 16, "payload": {"body": "eHh4eHh4eHh4eHh4eHh4eA=="}}'  # 16 x "x"


def available(rpcall):
    if not rpcall or not os.path.exists(rpcall):
        return False
    r = subprocess.run([rpcall, "bench", "--help"], capture_output=True, timeout=10)
    return r.returncode == 0


def protoset(bench):
    path = os.path.join(bench.work, "test.protoset")
    subprocess.run(["protoc", "-I/usr/share/grpc-proto", "-I/usr/include", "--include_imports",
                    "--descriptor_set_out=" + path, "grpc/testing/test.proto"], check=True)
    return path


def rpcall_bench(bench, server, calls, conns, streams, pset):
    cmd = pinned(bench.lcpu) + [bench.args.rpcall, "bench", "--cacert", bench.args.ca,
           "--protoset", pset, "-c", str(conns * streams), "--connections", str(conns),
           "-n", str(calls), "--format", "json", "localhost:%d" % server.port,
           "grpc.testing.TestService/UnaryCall", "-d", UNARY_JSON]
    cpu0 = server.cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=bench.P.timeout + 60)
    cpu1 = server.cpu()
    if p.returncode != 0:
        raise RuntimeError("%s: rpcall bench failed (%d): %s" % (server.label, p.returncode, p.stderr[-500:]))
    r = json.loads(p.stdout)
    ok = r.get("status", {}).get("OK", 0)
    if ok != calls or r.get("count") != calls:
        raise RuntimeError("%s: rpcall bench: %s OK of %d calls (%s)" % (server.label, ok, calls, r.get("status")))
    lat = r["latency_ms"]
    return {"rps": r["calls_per_s"], "p50_us": lat["p50"] * 1000, "p99_us": lat["p99"] * 1000,
            "cpu_us_per_call": (cpu1 - cpu0) / calls * 1e6}


def run(bench):
    sc = "x. rpcall bench cross-check"
    if not available(bench.args.rpcall):
        bench.skip(sc, "no `rpcall bench` in %s" % (bench.args.rpcall or "build/bin/rpcall"))
        return
    if not bench.servers_or_skip(sc, ["interop"]):
        return
    req = bench.reqs["unary"]
    conns, streams = 4, 4
    pset = protoset(bench)
    servers = [bench.rpchost("rpchost", ["interop"], bench.rpchost_config())]
    b = bench.peer_or_none(sc)
    if b:
        servers.append(b)
    got = {s.label: {"h2load": [], "rpcall": []} for s in servers}
    try:
        for s in servers:
            bench.verify(s, req)
        for rep in range(bench.P.reps):
            for s in servers:
                h = bench.measure(s, req, conns, streams, want_latency=True)
                try:
                    r = rpcall_bench(bench, s, h["calls"], conns, streams, pset)
                except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as e:
                    bench.error(sc, str(e))
                    continue
                got[s.label]["h2load"].append(h)
                got[s.label]["rpcall"].append(r)
                bench.log("%s rep %d: %s: h2load %.0f calls/s p50 %d µs p99 %d µs; rpcall %.0f calls/s "
                          "p50 %d µs p99 %d µs" % (sc, rep + 1, s.label, h["rps"], h["p50_us"], h["p99_us"],
                                                   r["rps"], r["p50_us"], r["p99_us"]))
    finally:
        for s in servers:
            s.stop()
    labels = ("h2load", "rpcall bench")
    title = "%s: interop UnaryCall, 16 streams (4 conn x 4), same number of calls" % sc
    for s in servers:
        g = got[s.label]
        for name, unit, key in (("calls/s", "calls/s", "rps"), ("p50 latency", "µs", "p50_us"),
                                ("p99 latency", "µs", "p99_us"), ("server CPU per call", "µs", "cpu_us_per_call")):
            bench.rows.append(Row(title, "%s: %s" % (s.label, name), unit,
                                  [[x[key] for x in g["h2load"]], [x[key] for x in g["rpcall"]]],
                                  labels, "higher" if key == "rps" else "lower", None))
    bench.raw[sc] = got
