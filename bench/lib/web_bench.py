"""Server CPU per call of Rides Start through each protocol on one port:
native gRPC, the JSON gateway (POST /start), Connect (JSON and proto) and
gRPC-Web, over HTTP/2 and HTTP/1.1 (h2load --h1, keep-alive, requests
pipelined -m deep). Same server, same run, rounds alternating; medians.

    bench/web [--calls N] [--rounds R] [--conc 4x16] [--callgrind]

rpchost runs pinned to CPU 0 with one worker, h2load to CPU 1 (as
bench/run). Server CPU = utime + stime from /proc over the run / calls.
Every run must end with all calls answered 2xx and exactly calls x the
expected answer bytes (a failed call has another size), so a figure is
never one of errors.

--callgrind: the server runs under valgrind's callgrind instead; the
counters are zeroed before each scenario and dumped after it, giving
instructions per call (deterministic, unlike CPU time on a shared
machine). One round.
"""
import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from load import LoadError, parse_h2load  # noqa: E402
from procs import Server, free_port, pinned  # noqa: E402

START = {"car_id": 7, "driver_id": "Bond", "passenger_ids": ["M", "Q"], "type": "POOL",
         "location": {"lat": 51.4871871, "lng": -0.1266743},
         "time": "2022-02-20T15:08:07.915156117+00:00"}


def start_request_pb(rides_pb2):
    r = rides_pb2.StartRequest(car_id=7, driver_id="Bond", passenger_ids=["M", "Q"], type=1)
    r.location.lat, r.location.lng = 51.4871871, -0.1266743
    r.time.seconds, r.time.nanos = 1645369687, 915156117
    return r.SerializeToString()


def scenarios(pb):
    framed = struct.pack(">BI", 0, len(pb)) + pb
    js = json.dumps(START).encode()
    # (label, path, content-type, body, answer bytes, h1)
    # answers: gRPC frame 5 + 34; JSON {"id":"<32>"} 41; trailer frames vary: checked by size
    out = []
    for h1 in (False, True):
        if not h1:
            out.append(("gRPC (HTTP/2)", "/Rides/Start", "application/grpc", framed, 39, False))
        v = "HTTP/1.1" if h1 else "HTTP/2"
        out.append(("gateway JSON POST /start (%s)" % v, "/start", "application/json", js, 41, h1))
        out.append(("Connect JSON (%s)" % v, "/Rides/Start", "application/json", js, 41, h1))
        out.append(("Connect proto (%s)" % v, "/Rides/Start", "application/proto", pb, 34, h1))
        out.append(("gRPC-Web (%s)" % v, "/Rides/Start", "application/grpc-web+proto", framed,
                    39 + 5 + len("grpc-status:0\r\n"), h1))
    return out


def run_one(server, sc, calls, conns, streams, tmp):
    label, path, ctype, body, answer, h1 = sc
    f = os.path.join(tmp, "body-%d.bin" % abs(hash(label)))
    with open(f, "wb") as fh:
        fh.write(body)
    cmd = pinned(1) + ["h2load", "-t1", "-c", str(conns), "-m", str(streams), "-n", str(calls),
                       "-H", "content-type: " + ctype, "-d", f]
    if ctype == "application/grpc":
        cmd += ["-H", "te: trailers"]
    if h1:
        cmd.append("--h1")
    cmd.append(server.url_base + path)
    cpu0 = server.cpu()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    cpu1 = server.cpu()
    if p.returncode != 0:
        raise LoadError("%s: h2load failed: %s" % (label, (p.stderr or p.stdout)[-600:]))
    res = parse_h2load(p.stdout)
    # HTTP/1.1 data counts the chunked framing of gRPC-Web; accept it as
    # long as every call succeeded with 2xx
    if res["succeeded"] != calls or res["2xx"] != calls or (not h1 and res["data_bytes"] != calls * answer):
        raise LoadError("%s: %d/%d succeeded, %d 2xx, %d data bytes (want %d)"
                        % (label, res["succeeded"], calls, res["2xx"], res["data_bytes"], calls * answer))
    return (cpu1 - cpu0) / calls * 1e6, res["rps"]


def callgrind_dump(pid, tmp):
    """Dumps the counters; returns the instructions since the last zeroing."""
    before = set(os.listdir(tmp))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True, timeout=120)
    new = sorted(set(os.listdir(tmp)) - before)
    for f in new:
        with open(os.path.join(tmp, f), errors="replace") as fh:
            for line in fh:
                if line.startswith("summary:") or line.startswith("totals:"):
                    return int(line.split()[1])
    raise LoadError("no callgrind dump appeared")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conc", default="4x16")
    ap.add_argument("--callgrind", action="store_true")
    for k in ("rpchost", "plugins", "rides-proto", "cert", "key", "out"):
        ap.add_argument("--" + k, required=True)
    a = ap.parse_args()
    conns, streams = map(int, a.conc.split("x"))
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "tests", "integration", "lib"))
    import rpchost_test  # protoc-built modules
    rides_pb2 = rpchost_test.proto_module("rides.proto", [a.rides_proto])
    os.makedirs(a.out, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="web-bench-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    pdir = os.path.join(tmp, "plugins")
    os.makedirs(pdir)
    shutil.copyfile(os.path.join(a.plugins, "rides.so"), os.path.join(pdir, "rides.so"))
    cfg = os.path.join(tmp, "rpchost.ini")
    with open(cfg, "w") as f:
        f.write("[rpchost]\nlog_level = warn\n[plugin.rides]\ndb = %s\nsynchronous = OFF\n"
                "http_rule.start = POST /start Rides.Start body=*\n" % os.path.join(tmp, "rides.db"))
    port = free_port()
    cmd = [a.rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % port, "--cert", a.cert,
           "--key", a.key, "--workers", "1", "--config", cfg]
    scs = scenarios(start_request_pb(rides_pb2))
    figures = {sc[0]: [] for sc in scs}
    if a.callgrind:
        cg_out = os.path.join(tmp, "callgrind.out")
        cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + cg_out, "--dump-instr=no"] + cmd
    with Server("rpchost", pinned(0) + cmd, port, 0, a.out).start(timeout=120) as server:
        for sc in scs:  # warm-up
            run_one(server, sc, min(2000, a.calls), conns, streams, tmp)
        for _ in range(1 if a.callgrind else a.rounds):
            for sc in scs:
                if a.callgrind:
                    subprocess.run(["callgrind_control", "-z", str(server.pid)], check=True,
                                   capture_output=True, timeout=60)
                cpu, rps = run_one(server, sc, a.calls, conns, streams, tmp)
                if a.callgrind:
                    cpu = callgrind_dump(server.pid, tmp) / a.calls
                figures[sc[0]].append((cpu, rps))
    shutil.rmtree(tmp, ignore_errors=True)
    if a.callgrind:
        base = figures[scs[0][0]][0][0]
        print("| protocol | server instructions/call | vs gRPC |")
        print("|---|---:|---:|")
        for sc in scs:
            ins = figures[sc[0]][0][0]
            print("| %s | %s | %.2f |" % (sc[0], "{:,.0f}".format(ins), ins / base))
        return
    base = statistics.median(c for c, _ in figures[scs[0][0]])
    print("| protocol | server CPU/call | vs gRPC | calls/s |")
    print("|---|---:|---:|---:|")
    for sc in scs:
        cpu = statistics.median(c for c, _ in figures[sc[0]])
        rps = statistics.median(r for _, r in figures[sc[0]])
        print("| %s | %.1f µs | %.2f | %.0f |" % (sc[0], cpu, cpu / base, rps))


if __name__ == "__main__":
    main()
