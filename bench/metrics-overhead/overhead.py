"""What the metrics cost, measured like bench/run (bench/lib): interop
UnaryCall through h2load over TLS, rpchost --workers 1 pinned to one CPU and
h2load to another, metrics off and on alternating off on off on ..., the
server's CPU time (utime+stime, all threads) per call; medians. Run it
through bench/metrics-overhead/run.

Honesty check: after the runs, the "on" server's grpc_server_handled_total
for UnaryCall/OK equals the calls it answered, read from a scrape.

Then the scrape: an rpchost with metricstest registering 10,000 series
(plus the host's own), scraped N times over keep-alive HTTP/1.1; wall time
per scrape (client side) and server CPU per scrape."""
import argparse
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(TOP, "bench", "lib"))
import load  # noqa: E402
import wire  # noqa: E402
from procs import Server, free_port  # noqa: E402


def log(msg):
    print("metrics-overhead: " + msg, file=sys.stderr, flush=True)


class Variant:
    def __init__(self, label, metrics):
        self.label, self.metrics = label, metrics
        self.server = None
        self.metrics_port = None
        self.calls = 0


def start(args, work, v, plugins=("interop",), extra_cfg="", wrap=()):
    pdir = os.path.join(work, re.sub(r"\W+", "_", v.label) + "-plugins")
    os.makedirs(pdir, exist_ok=True)
    for p in plugins:
        src = os.path.join(args.plugins, p + ".so")
        if not os.path.exists(src):
            src = os.path.join(args.test_plugins, p + ".so")
        shutil.copyfile(src, os.path.join(pdir, p + ".so"))
    cfg_path = os.path.join(work, re.sub(r"\W+", "_", v.label) + ".ini")
    with open(cfg_path, "w") as f:
        f.write("[rpchost]\nlog_level = warn\n" + extra_cfg)
    port = free_port()
    cmd = list(wrap) + [args.rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % port,
           "--cert", args.cert, "--key", args.key, "--workers", "1", "--config", cfg_path]
    if v.metrics:
        v.metrics_port = free_port()
        cmd += ["--metrics-listen", "127.0.0.1:%d" % v.metrics_port]
    env = {k: val for k, val in os.environ.items() if k not in ("HOST", "PORT", "CERT_FILE", "KEY_FILE")}
    v.server = Server(v.label, cmd, port, args.server_cpu, work, env=env).start(
        timeout=120 if wrap else 30)


def scrape(conn):
    conn.request("GET", "/metrics")
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit("metrics-overhead: scrape answered %d" % r.status)
    return body


def handled_ok(v):
    conn = http.client.HTTPConnection("127.0.0.1", v.metrics_port, timeout=30)
    try:
        body = scrape(conn).decode()
    finally:
        conn.close()
    m = re.search(r'^grpc_server_handled_total\{grpc_type="unary",grpc_service="grpc\.testing\.'
                  r'TestService",grpc_method="UnaryCall",grpc_code="OK"\} (\d+)$', body, re.M)
    return int(m.group(1)) if m else None


def measure(args, v, req, conns, streams, P):
    conc = conns * streams
    w = load.h2load(v.server, req, conns, streams, max(conc * 2, P["probe"]), args.load_cpu,
                    P["timeout"])
    v.calls += max(conc * 2, P["probe"])
    calls = max(conc * 2, P["min_calls"], min(int(w["rps"] * P["seconds"]), P["max_calls"]))
    r = load.h2load(v.server, req, conns, streams, calls, args.load_cpu,
                    P["timeout"] + P["seconds"] * 10)
    v.calls += calls
    r["calls"] = calls
    r["cpu_us_per_call"] = r["server_cpu"] / calls * 1e6
    return r


def callgrind_ir(args, work, metrics, req, conns, streams, calls):
    """Instructions the server executes per call (valgrind callgrind),
    counted over `calls` calls after a warm-up: a figure the other load on
    the machine does not move."""
    label = "cg-%s-%dx%d" % ("on" if metrics else "off", conns, streams)
    out = os.path.join(work, "callgrind.out." + label)
    v = Variant(label, metrics)
    start(args, work, v, wrap=["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
                               "--dump-instr=no"])
    try:
        load.verify(v.server, req, args.load_cpu)
        load.h2load(v.server, req, conns, streams, max(500, conns * streams * 2), args.load_cpu, 300)
        subprocess.run(["callgrind_control", "-z", str(v.server.pid)], check=True, capture_output=True)
        load.h2load(v.server, req, conns, streams, calls, args.load_cpu, 900)
        subprocess.run(["callgrind_control", "-d", "measured", str(v.server.pid)], check=True,
                       capture_output=True)
    finally:
        v.server.stop(timeout=60)
    dumps = [os.path.join(work, f) for f in os.listdir(work) if f.startswith(os.path.basename(out))]
    for path in dumps:
        with open(path, errors="replace") as f:
            text = f.read()
        if "measured" not in text[:4000]:
            continue
        m = re.search(r"^(?:summary|totals): (\d+)", text, re.M)
        if m:
            return int(m.group(1)) / calls
    raise SystemExit("metrics-overhead: no callgrind dump with the measured calls in %s" % work)


def scrape_bench(args, work, P):
    v = Variant("scrape", True)
    start(args, work, v, plugins=("interop", "metricstest"),
          extra_cfg="\n[plugin.metricstest]\nseries = %d\n" % P["series"])
    try:
        conn = http.client.HTTPConnection("127.0.0.1", v.metrics_port, timeout=60)
        # the listener is up before the plugins load: wait for the series
        deadline = time.monotonic() + 60
        while True:
            body = scrape(conn)
            n_series = sum(1 for line in body.split(b"\n") if line and not line.startswith(b"#"))
            if n_series >= P["series"]:
                break
            if time.monotonic() > deadline:
                raise SystemExit("metrics-overhead: metricstest's series did not appear")
            time.sleep(0.05)
        times = []
        cpu0 = v.server.cpu()
        for _ in range(P["scrapes"]):
            t = time.perf_counter()
            body = scrape(conn)
            times.append(time.perf_counter() - t)
        cpu = (v.server.cpu() - cpu0) / P["scrapes"]
        conn.close()
        return {"samples": n_series, "bytes": len(body), "ms": statistics.median(times) * 1e3,
                "ms_max": max(times) * 1e3, "cpu_ms": cpu * 1e3, "scrapes": P["scrapes"]}
    finally:
        v.server.stop()


def main():
    ap = argparse.ArgumentParser()
    for a in ("--rpchost", "--plugins", "--test-plugins", "--cert", "--key", "--work", "--out"):
        ap.add_argument(a, required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-wall", action="store_true", help="callgrind and the scrape only")
    ap.add_argument("--server-cpu", type=int, default=int(os.environ.get("BENCH_SERVER_CPU", 0)))
    ap.add_argument("--load-cpu", type=int, default=int(os.environ.get("BENCH_LOAD_CPU", 1)))
    args = ap.parse_args()
    P = {"reps": 1, "seconds": 0.3, "probe": 200, "min_calls": 50, "max_calls": 2000,
         "timeout": 60, "series": 10000, "scrapes": 5, "cg_calls": 300} if args.smoke else \
        {"reps": 5, "seconds": 6.0, "probe": 10000, "min_calls": 1000, "max_calls": 3000000,
         "timeout": 120, "series": 10000, "scrapes": 50, "cg_calls": 20000}
    if args.reps > 0:
        P["reps"] = args.reps
    points = [(1, 16), (4, 64)]

    work = tempfile.mkdtemp(prefix="metrics-overhead-", dir=args.work)
    protos = wire.Protos(os.path.join(TOP, "plugins", "rides"))
    req = wire.build_requests(protos, os.path.join(work, "req"), (10,), 10)["unary"]
    variants = [Variant("metrics off", False), Variant("metrics on", True)]
    results = {}
    problems = []
    try:
        for v in variants:
            start(args, work, v)
            load.verify(v.server, req, args.load_cpu)
            v.calls += 6
        for conns, streams in ([] if args.no_wall else points):
            for rep in range(P["reps"]):
                order = variants if rep % 2 == 0 else variants[::-1]
                for v in order:
                    r = measure(args, v, req, conns, streams, P)
                    results.setdefault((conns, streams), {}).setdefault(v.label, []).append(r)
                    log("%dx%d rep %d %-12s %8.0f calls/s %6.2f us CPU/call"
                        % (conns, streams, rep + 1, v.label, r["rps"], r["cpu_us_per_call"]))
        on = variants[1]
        got = handled_ok(on) if not args.no_wall else on.calls
        if got != on.calls:
            problems.append("metrics on: grpc_server_handled_total OK = %s for %d calls answered"
                            % (got, on.calls))
        else:
            log("metrics on: grpc_server_handled_total OK = %d = calls answered" % got)
    finally:
        for v in variants:
            if v.server:
                v.server.stop()
    ir = {}
    if not args.no_callgrind and shutil.which("valgrind"):
        for conns, streams in points:
            for metrics in (False, True):
                ir[(conns, streams, metrics)] = callgrind_ir(args, work, metrics, req, conns,
                                                             streams, P["cg_calls"])
                log("callgrind %dx%d metrics %s: %.0f instructions per call"
                    % (conns, streams, "on" if metrics else "off", ir[(conns, streams, metrics)]))
    sc = scrape_bench(args, work, P)
    log("scrape: %d samples, %d bytes, %.2f ms median, %.2f ms server CPU"
        % (sc["samples"], sc["bytes"], sc["ms"], sc["cpu_ms"]))

    lines = ["## Metrics overhead (bench/metrics-overhead/run)", "",
             "interop UnaryCall (10-byte payloads), rpchost --workers 1 on CPU %d, h2load -t1 on "
             "CPU %d over TLS; metrics off vs on (`--metrics-listen`, all gRPC and host series "
             "counted), %d run(s) per point, the order alternating (off on, on off, ...), medians. "
             "CPU us/call is the server process's utime+stime (all threads) per call."
             % (args.server_cpu, args.load_cpu, P["reps"]),
             ""]
    if results:
        lines += ["| streams (conns x streams) | variant | calls/s | CPU us/call | CPU vs off |",
                  "|---|---|---:|---:|---:|"]
    for (conns, streams), by in results.items():
        b_cpu = statistics.median(r["cpu_us_per_call"] for r in by["metrics off"])
        for v in variants:
            rps = statistics.median(r["rps"] for r in by[v.label])
            cpu = statistics.median(r["cpu_us_per_call"] for r in by[v.label])
            lines.append("| %d (%d x %d) | %s | %.0f | %.2f | %s |"
                         % (conns * streams, conns, streams, v.label, rps, cpu,
                            "%+.1f%%" % ((cpu / b_cpu - 1) * 100) if b_cpu else "n/a"))
        runs = ", ".join("%.2f/%.2f" % (a["cpu_us_per_call"], b["cpu_us_per_call"])
                         for a, b in zip(by["metrics off"], by["metrics on"]))
        lines.append("")
        lines.append("%d streams, every run off/on (us CPU/call): %s" % (conns * streams, runs))
        lines.append("")
    if ir:
        lines += ["Instructions per call in the server (valgrind callgrind, %d calls after a "
                  "warm-up; not moved by other load on the machine):" % P["cg_calls"], "",
                  "| streams (conns x streams) | metrics off | metrics on | difference |",
                  "|---|---:|---:|---:|"]
        for conns, streams in points:
            off, on = ir[(conns, streams, False)], ir[(conns, streams, True)]
            lines.append("| %d (%d x %d) | %.0f | %.0f | %+.2f%% |"
                         % (conns * streams, conns, streams, off, on, (on / off - 1) * 100))
        lines.append("")
    lines += ["Scrape of %d samples (%d plugin series of metricstest plus the host's; %d bytes of "
              "text format): %.2f ms median wall time per scrape (max %.2f ms, %d scrapes, "
              "keep-alive), %.2f ms server CPU per scrape."
              % (sc["samples"], P["series"], sc["bytes"], sc["ms"], sc["ms_max"], sc["scrapes"],
                 sc["cpu_ms"])]
    if problems:
        lines += ["", "Problems:"] + ["- " + p for p in problems]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    shutil.rmtree(work, ignore_errors=True)
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
