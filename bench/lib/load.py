"""Load with h2load and a check that the answers are really gRPC OK.

h2load (nghttp2-client) speaks HTTP/2 over TLS with ALPN h2 and sends the
framed protobuf body of a wire.Request with content-type application/grpc
and te: trailers. It counts HTTP statuses but never reads trailers, so
every measured run is checked twice:
  - its own figures: every request done and 2xx, and the response DATA
    bytes exactly calls * answer_bytes (a gRPC error is a trailers-only
    answer with no DATA, so a single failed call changes the total);
  - verify(): the same request sent a few times with `nghttp -v` must show
    grpc-status 0 in every trailer, and the answer bodies must decode to
    the right messages.
"""
import re
import statistics
import subprocess

from procs import pinned

GRPC_HEADERS = ["-H", "content-type: application/grpc", "-H", "te: trailers"]


class LoadError(RuntimeError):
    pass


def _seconds(value, unit):
    return float(value) * {"us": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def parse_h2load(out):
    m = re.search(r"finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", out)
    r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
    s = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    d = re.search(r"\((\d+)\) data", out)
    if not (m and r and s and d):
        raise LoadError("cannot read h2load's output:\n" + out[-1500:])
    total, started, done, ok, failed, errored, timeout = map(int, r.groups())
    return {"seconds": _seconds(m.group(1), m.group(2)), "rps": float(m.group(3)),
            "total": total, "done": done, "succeeded": ok, "failed": failed,
            "errored": errored, "timeout": timeout, "2xx": int(s.group(1)),
            "data_bytes": int(d.group(1))}


def h2load(server, req, conns, streams, calls, cpu, timeout, log_file=None, answer_bytes=None):
    """Runs `calls` calls of req on `conns` connections with `streams`
    concurrent streams each, h2load pinned to `cpu`; returns its figures
    plus the server's CPU seconds over the run. Raises LoadError unless
    every call got a complete answer."""
    cmd = pinned(cpu) + ["h2load", "-t1", "-c", str(conns), "-m", str(streams),
           "-n", str(calls)] + GRPC_HEADERS + ["-d", req.file]
    if log_file:
        cmd.append("--log-file=" + log_file)
    cmd.append(server.url_base + req.path)
    cpu0 = server.cpu()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LoadError("%s: h2load did not finish %d calls of %s within %ss"
                        % (server.label, calls, req.path, timeout)) from None
    cpu1 = server.cpu()
    if p.returncode != 0:
        raise LoadError("%s: h2load failed (%d): %s" % (server.label, p.returncode,
                                                        (p.stderr or p.stdout)[-800:]))
    res = parse_h2load(p.stdout)
    res["server_cpu"] = cpu1 - cpu0
    want = calls * (req.answer_bytes if answer_bytes is None else answer_bytes)
    if not (res["succeeded"] == calls and res["2xx"] == calls and res["data_bytes"] == want):
        raise LoadError("%s: %s: %d/%d calls succeeded, %d 2xx, %d answer bytes (want %d): "
                        "some calls did not get a complete OK answer"
                        % (server.label, req.path, res["succeeded"], calls, res["2xx"],
                           res["data_bytes"], want))
    if not server.alive():
        raise LoadError("%s died during the run; log %s" % (server.label, server.log_path))
    return res


def latencies_us(log_file):
    """Per-call durations (µs) from h2load --log-file (start, status, µs)."""
    out = []
    with open(log_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3:
                out.append(int(parts[2]))
    return out


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * len(v) + 0.5)) - 1))
    return v[k]


def verify(server, req, cpu, grpc=True, times=3, timeout=60):
    """Sends req `times` times with nghttp (same bytes and headers as
    h2load) and checks the answers: with grpc, every stream's trailers carry
    grpc-status 0 and the bodies decode right; without (the nghttpd floor),
    HTTP 200 and the body bytes are the expected answer."""
    base = ["taskset", "-c", str(cpu), "nghttp"] + GRPC_HEADERS + ["-d", req.file]
    url = server.url_base + req.path
    try:
        v = subprocess.run(base + ["-v", "-m", str(times), url], capture_output=True, timeout=timeout)
        # One call per nghttp for the bodies: nghttp writes concurrent
        # streams' DATA interleaved as it arrives.
        bodies = [subprocess.run(base + [url], capture_output=True, timeout=timeout) for _ in range(times)]
    except subprocess.TimeoutExpired:
        raise LoadError("%s: nghttp got no answer to %s within %ss" % (server.label, req.path, timeout)) from None
    failed = [p for p in [v] + bodies if p.returncode != 0]
    if failed:
        raise LoadError("%s: nghttp %s failed: %s" % (server.label, req.path,
                                                      failed[0].stderr.decode(errors="replace")[-500:]))
    vtext = v.stdout.decode(errors="replace")
    statuses = re.findall(r"recv \(stream_id=\d+\) :status: (\d+)", vtext)
    if statuses != ["200"] * times:
        raise LoadError("%s: %s: HTTP statuses %s, want %d x 200" % (server.label, req.path, statuses, times))
    if grpc:
        codes = re.findall(r"recv \(stream_id=\d+\) grpc-status: (\d+)", vtext)
        msgs = re.findall(r"recv \(stream_id=\d+\) grpc-message: (.*)", vtext)
        if codes != ["0"] * times:
            raise LoadError("%s: %s: grpc-status %s (%s), want %d x 0"
                            % (server.label, req.path, codes, msgs, times))
        from wire import unframe
        for b in bodies:
            if len(b.stdout) != req.answer_bytes:
                raise LoadError("%s: %s: %d answer bytes, want %d"
                                % (server.label, req.path, len(b.stdout), req.answer_bytes))
            try:
                req.check(unframe(b.stdout))
            except (AssertionError, ValueError) as e:
                raise LoadError("%s: %s" % (server.label, e)) from None
    else:
        with open(req.file_answer, "rb") as f:
            want = f.read()
        if any(b.stdout != want for b in bodies):
            raise LoadError("%s: %s: the answer differs from the static file served" % (server.label, req.path))


def median(values):
    return statistics.median(values) if values else float("nan")
