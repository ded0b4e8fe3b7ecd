"""What authlog costs: unary throughput (interop UnaryCall, 16-byte
payloads) and server CPU per call of rpchost with and without the authlog
interceptors, measured with h2load over TLS like bench/run (bench/lib), the
server pinned to one CPU and the load to another, runs alternating
A B A B A B. Run it through bench/authlog-overhead/run.

Honesty checks, so the "with" figure really is authlog at work:
  - before the runs, a call without a token gets grpc-status 16 and a call
    with the token gets 0 (nghttp -v);
  - after them, the access log holds exactly one line per call the server
    answered (warm-ups, measured runs and checks together).
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
sys.path.insert(0, os.path.join(TOP, "bench", "lib"))
import load  # noqa: E402
import wire  # noqa: E402
from procs import Server, free_port  # noqa: E402

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuv"
BASE_HEADERS = list(load.GRPC_HEADERS)


def log(msg):
    print("authlog-overhead: " + msg, file=sys.stderr, flush=True)


class Variant:
    def __init__(self, label, plugins, interceptors, token, extra="", log_file=None):
        self.label, self.plugins, self.interceptors, self.token = label, plugins, interceptors, token
        self.extra = extra  # more [plugin.authlog] keys
        self.fixed_log = log_file  # e.g. /dev/null; default: a file in the work dir
        self.server = None
        self.log_file = None
        self.calls = 0  # calls the server answered, for the log line count


def slug(label):
    return re.sub(r"[^A-Za-z0-9]+", "_", label).strip("_")


def start(args, work, v):
    pdir = os.path.join(work, slug(v.label) + "-plugins")
    os.makedirs(pdir, exist_ok=True)
    for p in v.plugins:
        shutil.copyfile(os.path.join(args.plugins, p + ".so"), os.path.join(pdir, p + ".so"))
    cfg = "[rpchost]\nlog_level = warn\n"
    if v.interceptors:
        tokens = os.path.join(work, "tokens")
        with open(tokens, "w") as f:
            digest = subprocess.run(["sha256sum"], input=TOKEN.encode(), capture_output=True,
                                    check=True).stdout.split()[0].decode()
            f.write("%s bench /grpc.testing.TestService/*\n" % digest)
        v.log_file = v.fixed_log or os.path.join(work, slug(v.label) + "-access.log")
        cfg += "interceptors = %s\n\n[plugin.authlog]\ntokens_file = %s\nlog_file = %s\n" \
               "log_format = %s\n%s" % (v.interceptors, tokens, v.log_file, args.log_format, v.extra)
    cfg_path = os.path.join(work, slug(v.label) + ".ini")
    with open(cfg_path, "w") as f:
        f.write(cfg)
    port = free_port()
    cmd = [args.rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % port,
           "--cert", args.cert, "--key", args.key, "--workers", "1", "--config", cfg_path]
    env = {k: val for k, val in os.environ.items() if k not in ("HOST", "PORT", "CERT_FILE", "KEY_FILE")}
    v.server = Server(v.label, cmd, port, args.server_cpu, work, env=env).start()


def headers_for(v):
    """h2load and nghttp take their headers from load.GRPC_HEADERS when
    called; each variant sends its own authorization header."""
    load.GRPC_HEADERS[:] = BASE_HEADERS + (["-H", "authorization: Bearer " + v.token]
                                           if v.token else [])


def check_auth_is_on(args, v, req):
    """nghttp without the token: grpc-status 16; with it: 0."""
    url = v.server.url_base + req.path
    for token, want in ((None, "16"), (v.token, "0")):
        cmd = ["nghttp", "-v"] + BASE_HEADERS + (["-H", "authorization: Bearer " + token]
                                                 if token else []) + ["-d", req.file, url]
        out = subprocess.run(cmd, capture_output=True, timeout=60).stdout.decode(errors="replace")
        codes = re.findall(r"grpc-status: (\d+)", out)
        if codes != [want]:
            raise SystemExit("authlog-overhead: %s: grpc-status %s %s a token, want %s"
                             % (v.label, codes, "with" if token else "without", want))
        v.calls += 1


def measure(args, v, req, conns, streams, P):
    headers_for(v)
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rpchost", required=True)
    ap.add_argument("--plugins", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--all", action="store_true", help="also auth only and log only")
    ap.add_argument("--log-format", default="text", choices=("text", "json"))
    ap.add_argument("--reps", type=int, default=0, help="runs per point and variant (default 3)")
    ap.add_argument("--server-cpu", type=int, default=int(os.environ.get("BENCH_SERVER_CPU", 0)))
    ap.add_argument("--load-cpu", type=int, default=int(os.environ.get("BENCH_LOAD_CPU", 1)))
    args = ap.parse_args()
    P = {"reps": 1, "seconds": 0.3, "probe": 200, "min_calls": 50, "max_calls": 2000,
         "timeout": 60} if args.smoke else \
        {"reps": 3, "seconds": 4.0, "probe": 10000, "min_calls": 1000, "max_calls": 3000000,
         "timeout": 120}
    if args.reps > 0:
        P["reps"] = args.reps
    points = [(1, 1), (4, 4)] if args.smoke else [(1, 1), (4, 4), (4, 64)]

    work = tempfile.mkdtemp(prefix="authlog-overhead-", dir=args.work)
    protos = wire.Protos(os.path.join(TOP, "plugins", "rides"))
    req = wire.build_requests(protos, os.path.join(work, "req"), (10,), 10)["unary"]
    # "without authlog" sends the same authorization header, so the figures
    # compare the interceptors, not the cost of a client sending a token.
    variants = [Variant("without authlog", ["interop"], None, TOKEN),
                Variant("with authlog", ["interop", "authlog"], "authlog.auth, authlog.log", TOKEN)]
    if args.all:
        # every loaded interceptor runs: switch one off with its key
        variants += [Variant("auth only", ["interop", "authlog"], "authlog.auth, authlog.log",
                             TOKEN, "log = off\n"),
                     Variant("log only", ["interop", "authlog"], "authlog.auth, authlog.log",
                             TOKEN, "auth = off\n"),
                     # the same lines written to /dev/null: what the kernel's
                     # copying of them into the file costs is the difference
                     Variant("log only, null sink", ["interop", "authlog"],
                             "authlog.auth, authlog.log", TOKEN, "auth = off\n", "/dev/null")]
    results = {}
    try:
        for v in variants:
            start(args, work, v)
            headers_for(v)
            load.verify(v.server, req, args.load_cpu)
            v.calls += 6  # verify sends the request 3 times, twice
            if v.token and v.interceptors and "auth = off" not in v.extra:
                check_auth_is_on(args, v, req)
        for conns, streams in points:
            for rep in range(P["reps"]):
                for v in variants:
                    r = measure(args, v, req, conns, streams, P)
                    results.setdefault((conns, streams), {}).setdefault(v.label, []).append(r)
                    log("%dx%d rep %d %-16s %8.0f calls/s %6.2f us CPU/call"
                        % (conns, streams, rep + 1, v.label, r["rps"], r["cpu_us_per_call"]))
        for v in variants:
            headers_for(v)
            load.verify(v.server, req, args.load_cpu)
            v.calls += 6
    finally:
        for v in variants:
            if v.server:
                v.server.stop()
        load.GRPC_HEADERS[:] = BASE_HEADERS

    problems = []
    for v in variants:
        if v.fixed_log:
            continue
        if v.log_file and "log = off" not in v.extra:
            with open(v.log_file, "rb") as f:
                n = f.read().count(b"\n")
            if n != v.calls:
                problems.append("%s: %d access log lines for %d calls" % (v.label, n, v.calls))
            else:
                log("%s: access log has one line per call (%d)" % (v.label, n))
        elif v.log_file and os.path.exists(v.log_file) and os.path.getsize(v.log_file):
            problems.append("%s: log = off, yet the access log has lines" % v.label)

    base = variants[0].label
    lines = ["# authlog overhead", "",
             "interop UnaryCall (16-byte payloads), rpchost --workers 1 on CPU %d, h2load -t1 on "
             "CPU %d over TLS, %d run(s) per point alternating, medians; every variant sends "
             "`authorization: Bearer <token>`; log_format = %s, log_file on %s. "
             "CPU us/call is the server process's CPU time (all threads, the log writer "
             "included) per call." % (args.server_cpu, args.load_cpu, P["reps"],
                                      args.log_format, args.work),
             "", "| streams (conns x streams) | variant | calls/s | vs without | CPU us/call | vs without |",
             "|---|---|---:|---:|---:|---:|"]
    for (conns, streams), by in results.items():
        b_rps = statistics.median(r["rps"] for r in by[base])
        b_cpu = statistics.median(r["cpu_us_per_call"] for r in by[base])
        for v in variants:
            rps = statistics.median(r["rps"] for r in by[v.label])
            cpu = statistics.median(r["cpu_us_per_call"] for r in by[v.label])
            lines.append("| %d (%d x %d) | %s | %.0f | %+.1f%% | %.2f | %s |"
                         % (conns * streams, conns, streams, v.label, rps, (rps / b_rps - 1) * 100,
                            cpu, "%+.1f%%" % ((cpu / b_cpu - 1) * 100) if b_cpu else "n/a"))
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
