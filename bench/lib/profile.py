"""Where does rpchost spend a call? Runs one load point against rpchost
(pinned to one CPU, load on the other, like bench/run) under a profiler.

    bench/profile perf      [--req unary] [--conc 4x64] [--calls N] [--server rpchost|peer]
    bench/profile callgrind [--req unary] [--conc 4x64] [--calls N]
    bench/profile perf --durable --req start --conc 100x10   # rides as shipped

--durable: the rides database on disk (under the output directory) with
synchronous FULL, the plugin's defaults, instead of tmpfs with OFF.

perf: `perf record -e cpu-clock -g` on the server during the measured
run, then the top functions by self time (no hardware counters needed).
callgrind: the server under `valgrind --tool=callgrind`; counters are
zeroed after a warm-up, then exactly N calls are made and the instructions
per call are printed, total and by function (inclusive and self): a
deterministic figure for before/after comparisons.
Output goes to build/bench-profile/.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
import wire  # noqa: E402
from procs import Server, free_port  # noqa: E402


def supervises(rpchost):
    """Whether this rpchost build serves from a forked child (it then has
    --no-supervisor). callgrind_control cannot reach a forked child, so the
    callgrind run serves in the started process: the request path is the
    same code, and the supervisor runs none of it."""
    try:
        out = subprocess.run([rpchost, "--help"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--no-supervisor" in out.stdout + out.stderr


def start_server(a, wrap, out, extra=()):
    plugins = {"unary": ["interop"], "stream": ["interop"]}.get(a.req, ["rides"])
    port = free_port()
    if a.server == "peer":
        cmd = [a.peer, "--listen", "127.0.0.1:%d" % port, "--cert", a.cert, "--key", a.key]
    else:
        pdir = os.path.join(out, "plugins")
        shutil.rmtree(pdir, ignore_errors=True)
        os.makedirs(pdir)
        for p in plugins:
            shutil.copyfile(os.path.join(a.plugins, p + ".so"), os.path.join(pdir, p + ".so"))
        cfg = os.path.join(out, "rpchost.ini")
        db = os.path.join(a.db_dir, "rides.db")
        with open(cfg, "w") as f:
            # tmpfs, synchronous=OFF as in bench/run scenario 1; --durable: disk, FULL (scenario 2)
            f.write("[rpchost]\nlog_level = info\n[plugin.rides]\ndb = %s\nsynchronous = %s\n"
                    % (db, "FULL" if a.durable else "OFF"))
        cmd = [a.rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % port, "--cert", a.cert,
               "--key", a.key, "--workers", "1", "--config", cfg] + list(extra)
    return Server(a.server, wrap + cmd, port, a.server_cpu, out).start(timeout=120)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=("perf", "callgrind"))
    ap.add_argument("--req", default="unary", help="unary, start, track100, stream")
    ap.add_argument("--conc", default="4x64", help="CONNSxSTREAMS")
    ap.add_argument("--calls", type=int, default=0)
    ap.add_argument("--server", default="rpchost", choices=("rpchost", "peer"))
    ap.add_argument("--durable", action="store_true",
                    help="rides: database on disk with synchronous FULL (default: tmpfs, OFF)")
    for k in ("rpchost", "plugins", "peer", "rides-proto", "cert", "key", "out"):
        ap.add_argument("--" + k, required=True)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    a = ap.parse_args()
    conns, streams = map(int, a.conc.split("x"))
    os.makedirs(a.out, exist_ok=True)
    os.sched_setaffinity(0, {a.load_cpu})
    tmp = tempfile.mkdtemp(prefix="req-", dir=a.out)
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and not a.durable else a.out
    a.db_dir = tempfile.mkdtemp(prefix="rpchost-profile-", dir=shm)
    try:
        reqs = wire.build_requests(wire.Protos(a.rides_proto), tmp, (100,), 100)
        req = reqs[a.req]
        if a.tool == "perf":
            profile_perf(a, req, conns, streams)
        else:
            profile_callgrind(a, req, conns, streams)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(a.db_dir, ignore_errors=True)


def profile_perf(a, req, conns, streams):
    s = start_server(a, [], a.out)
    try:
        load.verify(s, req, a.load_cpu)
        load.h2load(s, req, conns, streams, 20000, a.load_cpu, 120)  # warm-up
        calls = a.calls or 200000
        data = os.path.join(a.out, "perf.data")
        rec = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock", "-g", "-o", data,
                                "-p", str(s.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)
        r = load.h2load(s, req, conns, streams, calls, a.load_cpu, 300)
        rec.send_signal(2)
        rec.wait(60)
    finally:
        s.stop()
    print("%d calls at %.0f calls/s, %.2f µs server CPU per call"
          % (calls, r["rps"], r["server_cpu"] / calls * 1e6))
    for sort, limit in (("comm", 10), ("comm,dso", 15), ("dso,symbol", 45)):
        rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--percent-limit",
                              "0.7", "-g", "none", "--sort", sort], capture_output=True, text=True)
        lines = [l.rstrip(" -") for l in rep.stdout.splitlines() if l.strip() and not l.startswith("#")]
        print("by %s:" % sort)
        print("\n".join(lines[:limit]))
    print("(full: perf report -i %s)" % data)


def profile_callgrind(a, req, conns, streams):
    outfile = os.path.join(a.out, "callgrind.out.%s" % a.req)
    for f in os.listdir(a.out):  # an earlier run's dumps would be read as ours
        if f.startswith(os.path.basename(outfile)):
            os.unlink(os.path.join(a.out, f))
    # %p: rpchost's supervisor and its serving process each write their own
    wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + outfile + ".%p",
            "--dump-instr=no"]
    extra = ["--no-supervisor"] if a.server == "rpchost" and supervises(a.rpchost) else []
    s = start_server(a, wrap, a.out, extra)
    calls = a.calls or 20000
    try:
        load.verify(s, req, a.load_cpu)
        load.h2load(s, req, conns, streams, max(200, conns * streams), a.load_cpu, 300)  # warm-up
        subprocess.run(["callgrind_control", "-z", str(s.pid)], check=True, capture_output=True)
        load.h2load(s, req, conns, streams, calls, a.load_cpu, 600)
        subprocess.run(["callgrind_control", "-d", "measured", str(s.pid)], check=True, capture_output=True)
    finally:
        s.stop(timeout=60)
    dumps = sorted(f for f in os.listdir(a.out) if f.startswith(os.path.basename(outfile)))
    measured = [os.path.join(a.out, f) for f in dumps if "measured" in open(os.path.join(a.out, f),
                                                                                errors="replace").read(4000)]
    path = measured[0] if measured else os.path.join(a.out, dumps[0])
    ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", "--auto=no", path], capture_output=True, text=True).stdout
    total = None
    for line in ann.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
    print("%d calls (%s, %dx%d): %s instructions per call in the server"
          % (calls, req.path, conns, streams, "{:,.0f}".format(total / calls) if total else "?"))
    print("inclusive, per call:")
    print_per_call(ann, calls, 35)
    self_ann = subprocess.run(["callgrind_annotate", "--threshold=100", "--auto=no", path], capture_output=True, text=True).stdout
    print("self, per call:")
    print_per_call(self_ann, calls, 30, skip_over=90.0)
    print("(full: callgrind_annotate %s)" % path)


def print_per_call(ann, calls, limit, skip_over=None):
    """Prints callgrind_annotate's lines per call; skip_over drops the
    thread-entry lines callgrind attributes whole threads to in its self
    listing."""
    n = 0
    started = False
    for line in ann.splitlines():
        if "file:function" in line:
            started = True
            continue
        if not started or not line.strip() or line.startswith("-"):
            continue
        parts = line.split(None, 1)
        try:
            ir = int(parts[0].replace(",", ""))
        except ValueError:
            continue
        pct = parts[1].split("%", 1)[0].strip(" (")
        if skip_over is not None and float(pct or 0) >= skip_over:
            continue
        print("%12.0f  %s" % (ir / calls, parts[1][:150]))
        n += 1
        if n >= limit:
            break


if __name__ == "__main__":
    main()
