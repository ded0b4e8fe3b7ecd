"""Message compression, measured: for each point, rpcall bench drives
grpc.testing.TestService/UnaryCall at a fixed concurrency for a fixed
number of calls against one server pinned to CPU 0 (rpchost with the
interop plugin and one worker, or the gRPC C++ peer on its async API),
and the server's utime+stime from /proc is divided by the calls.

Points: request compression (the request carries a 1 KiB or 64 KiB
payload, sent gzip- or deflate-compressed by rpcall; the response is
empty) and response compression (a small request asks for a 1 KiB or
64 KiB response with response_compressed = true; rpcall accepts only the
algorithm measured, and names it in x-response-compression for the peer),
each beside its identity baseline. Request payloads are JSON-like text
(records with counters, about 4:1 with gzip); response payloads are the
interop service's zeros (what both servers send).

Each point runs `rounds` times alternating the servers; the medians are
reported. rpcall compresses a request once and sends the same bytes for
every call: the figures are the servers' costs, not the client's."""
import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from procs import Server, free_port, pinned  # noqa: E402

METHOD = "grpc.testing.TestService/UnaryCall"


def text_payload(n):
    out, i = [], 0
    size = 0
    while size < n:
        rec = '{"rider":"r-%05d","lat":52.%04d,"lon":13.%04d,"state":%d},' % (
            i % 5000, i * 37 % 10000, i * 91 % 10000, i % 4)
        out.append(rec)
        size += len(rec)
        i += 1
    return "".join(out)[:n].encode()


def points(sizes):
    """(label, size, direction, algo, rpcall args, request JSON)."""
    pts = []
    for size in sizes:
        body = base64.b64encode(text_payload(size)).decode()
        req = json.dumps({"payload": {"body": body}})
        for algo in ("identity", "gzip", "deflate"):
            args = [] if algo == "identity" else ["--compress", algo]
            pts.append(("request", size, algo, args, req))
        for algo in ("identity", "gzip", "deflate"):
            if algo == "identity":
                args, r = ["--accept-encoding", "identity"], {"responseSize": size}
            else:
                args = ["--accept-encoding", algo, "-H", "x-response-compression: " + algo]
                r = {"responseSize": size, "responseCompressed": {"value": True}}
            pts.append(("response", size, algo, args, json.dumps(r)))
    return pts


def start(a, which, work):
    port = free_port()
    if which == "rpchost":
        plugdir = os.path.join(work, "plugins")
        os.makedirs(plugdir, exist_ok=True)
        shutil.copyfile(os.path.join(a.plugins, "interop.so"), os.path.join(plugdir, "interop.so"))
        cfg = os.path.join(work, "rpchost.ini")
        with open(cfg, "w") as f:
            f.write("[rpchost]\nlog_level = warn\n")
        cmd = [a.rpchost, "--plugins", plugdir, "--listen", "127.0.0.1:%d" % port, "--workers", "1",
               "--cert", a.cert, "--key", a.key, "--config", cfg]
        return Server("rpchost", cmd, port, a.server_cpu, work).start()
    cmd = [a.peer, "--listen", "127.0.0.1:%d" % port, "--cert", a.cert, "--key", a.key,
           "--api", "async"]
    return Server("gRPC C++", cmd, port, a.server_cpu, work).start()


def protoset(work):
    """The TestService schema for rpcall (the peer has no reflection;
    rpchost is called the same way)."""
    out = os.path.join(work, "test.protoset")
    subprocess.run(["protoc", "-I/usr/share/grpc-proto", "--include_imports",
                    "--descriptor_set_out=" + out, "grpc/testing/test.proto"], check=True)
    return out


def bench(a, server, args, req, calls):
    cmd = pinned(a.load_cpu) + [a.rpcall, "bench", "--cacert", a.ca, "--protoset", a.protoset,
                                "-c", str(a.concurrency),
                                "-n", str(calls), "--format", "json", *args,
                                "127.0.0.1:%d" % server.port, METHOD, "-d", "@-"]
    cpu0 = server.cpu()
    p = subprocess.run(cmd, input=req, capture_output=True, text=True, timeout=600)
    cpu1 = server.cpu()
    if p.returncode != 0:
        raise RuntimeError("rpcall bench failed (%d): %s" % (p.returncode, p.stderr[-500:]))
    rep = json.loads(p.stdout)
    if rep["status"] != {"OK": calls}:
        raise RuntimeError("not all OK: %s %s" % (rep["status"], rep.get("errors")))
    return rep["calls_per_s"], (cpu1 - cpu0) / calls * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    for k in ("rpchost", "rpcall", "plugins", "peer", "cert", "key", "ca"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale", type=float, default=1.0, help="multiplies the call counts")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="rpchost-bench-compression-")
    results = {}
    servers = {}
    try:
        a.protoset = protoset(work)
        for w in ("rpchost", "gRPC C++"):
            servers[w] = start(a, w, work)
        for label, size, algo, args, req in points([1024, 65536]):
            calls = int((20000 if size <= 1024 else 3000) * a.scale)
            for s in servers.values():
                bench(a, s, args, req, max(100, calls // 10))  # warm-up
            for _ in range(a.rounds):
                for name, s in servers.items():
                    r = bench(a, s, args, req, calls)
                    results.setdefault((label, size, algo, name), []).append(r)
            print("done: %s %d %s" % (label, size, algo), file=sys.stderr, flush=True)
    finally:
        for s in servers.values():  # also when a run failed: nothing left running
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    print("| direction | payload | encoding | rpchost calls/s | rpchost CPU µs/call "
          "| gRPC C++ calls/s | gRPC C++ CPU µs/call | CPU ratio rpchost / C++ |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for label, size, algo, _, _ in points([1024, 65536]):
        row = []
        for name in ("rpchost", "gRPC C++"):
            rs = results[(label, size, algo, name)]
            row.append((statistics.median(r[0] for r in rs), statistics.median(r[1] for r in rs)))
        print("| %s | %s | %s | %.0f | %.1f | %.0f | %.1f | %.2f |" % (
            label, "1 KiB" if size == 1024 else "64 KiB", algo, row[0][0], row[0][1], row[1][0],
            row[1][1], row[0][1] / row[1][1] if row[1][1] else float("nan")))


if __name__ == "__main__":
    main()
