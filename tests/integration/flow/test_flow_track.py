"""A Track that outruns the disk pauses only itself.

The Rides writer is slowed with the test knob commit_delay_ms (every commit
waits 2 s, as a slow disk would), so a fast Track fills the writer's queue
(131,072 points) and Rides pauses the call's reading (pause_reading) until
the writer drained it. Meanwhile unary calls to another plugin on the same
worker (--workers 1), on the Track's own connection and on another one,
must keep answering quickly: before ABI 1.1 the Track's handler waited on
the worker thread, stalling every call of that worker for a whole commit.
The Track still stores every point, in order, as one track.

The Track is sent by a hand-made HTTP/2 client (many points per DATA
frame, within the server's flow-control windows): grpcio's Python client
sends too few messages per second to outrun even a slowed writer."""
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "rides"))
from rides_common import db_query, pb, rt  # noqa: E402
import flow_lib as fl  # noqa: E402
from flow_lib import KIB, CountingH2  # noqa: E402

N = 300000
DELAY_MS = 3000
# A worker stalled by a commit holds every call on it for up to DELAY_MS,
# and the Track spans at least two commits (asserted below), so a stalling
# host makes at least two of the sequential probes on another connection
# slower than LATENCY_LIMIT. One slow probe is load on a shared machine
# (a 1.9 s scheduling gap of the whole test process was seen under ASan at
# load 30), not a stall: the test fails on two.
LATENCY_LIMIT = DELAY_MS * 0.8 / 1000.0
PROBE_EVERY = 0.05
empty = rt.proto_module("grpc/testing/empty.proto")
EMPTY = "/grpc.testing.TestService/EmptyCall"
results = rt.Results()


def track_body(n):
    """n TrackRequests as one gRPC request body (length-prefixed messages)."""
    msg = pb.TrackRequest(car_id=9, location=pb.Location())
    out = []
    for i in range(n):
        msg.location.lat = -60.0 + (i % 120000) * 0.001
        msg.location.lng = 10.0 + (i % 7) * 0.0001
        msg.time.seconds = 1645369687 + i
        out.append(fl.cl.grpc_body(msg.SerializeToString()))
    return bytearray(b"".join(out))


def grpcio_probe(stop, ch, out):
    fn = ch.unary_unary(EMPTY, request_serializer=empty.Empty.SerializeToString,
                        response_deserializer=empty.Empty.FromString)
    while not stop.is_set():
        t0 = time.monotonic()
        fn(empty.Empty(), timeout=30)
        out.append(time.monotonic() - t0)
        time.sleep(PROBE_EVERY)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def send_track(r, body, same):
    """Sends the Track on stream 1 within the windows; meanwhile an EmptyCall
    on the same connection every PROBE_EVERY s, latencies into `same`."""
    r.grpc_headers(1, "/Rides/Track")
    probe_sid, probe_t0, next_sid, next_probe = None, 0.0, 3, time.monotonic()
    empty_body = fl.cl.grpc_body(b"")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        now = time.monotonic()
        if probe_sid is not None and r._stream(probe_sid)["ended"]:
            fl.expect(fl.cl.status_of(r._stream(probe_sid))[1] == 0, "EmptyCall failed")
            same.append(now - probe_t0)
            r.streams.pop(probe_sid, None)
            probe_sid, next_probe = None, now + PROBE_EVERY
        if probe_sid is None and now >= next_probe and r.window(next_sid) >= len(empty_body):
            probe_sid, probe_t0 = next_sid, now
            next_sid += 2
            r.grpc_headers(probe_sid, EMPTY)
            r.data(probe_sid, empty_body, end_stream=True)
            r.conn_window -= len(empty_body)
        sent = 0
        while body and sent < 256 * KIB:
            n = min(16 * KIB, r.window(1), len(body))
            if n <= 0:
                break
            r.data(1, bytes(body[:n]), end_stream=(n == len(body)))
            del body[:n]
            r.conn_window -= n
            r.windows[1] = r.windows.get(1, r.initial_window) - n
            sent += n
        if r._stream(1)["ended"]:
            return r._stream(1)
        r.pump(0.001 if sent else 0.01)
    raise AssertionError("the Track did not end within 300 s")


CONFIG = ("[rpchost]\nlog_level = debug\n\n[plugin.rides]\ndb = rides.db\n"
          "synchronous = NORMAL\ncommit_delay_ms = %d\n" % DELAY_MS)
with rt.Host(plugins=["rides", "interop"], config=CONFIG, plaintext=True, workers=1) as h:
    def track_does_not_stall_the_worker():
        db = os.path.join(h.tmp, "rides.db")
        body = track_body(N)
        other = h.channel()
        r = CountingH2(h)
        r.pump(0.2)
        stop = threading.Event()
        same, separate = [], []
        probe = threading.Thread(target=grpcio_probe, args=(stop, other, separate))
        probe.start()
        t0 = time.monotonic()
        try:
            st = send_track(r, body, same)
        finally:
            stop.set()
            probe.join()
        secs = time.monotonic() - t0
        pauses = h.logs().count("pausing the call's reading")
        lat = same + separate
        print("  Track of %d points with %d ms commits: %.1f s, paused %d times; EmptyCalls "
              "on the same worker meanwhile: %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms (on the "
              "Track's connection max %.1f ms, on another max %.1f ms)"
              % (N, DELAY_MS, secs, pauses, len(lat), pct(lat, 0.5) * 1e3, pct(lat, 0.99) * 1e3,
                 max(lat) * 1e3, max(same) * 1e3, max(separate) * 1e3), flush=True)
        fl.expect(fl.cl.status_of(st)[1] == 0, "Track status %r" % (st["headers"],))
        count = pb.TrackResponse.FromString(bytes(st["data"][5:])).count
        fl.expect(count == N, "count %d" % count)
        fl.expect(pauses >= 1, "the Track was never paused: the scenario did not happen")
        fl.expect(secs > 2 * DELAY_MS / 1000.0, "the writer was slowed (%.1f s)" % secs)
        fl.expect(len(same) >= 20 and len(separate) >= 20, "unary calls ran during the Track")
        slow = sorted(x for x in separate if x >= LATENCY_LIMIT)
        fl.expect(len(slow) < 2,
                  "%d EmptyCalls on another connection to the Track's worker took over "
                  "%.0f ms (%s): the worker stalled" % (len(slow), LATENCY_LIMIT * 1e3,
                               ", ".join("%.0f ms" % (x * 1e3) for x in slow)))
        tid, count = db_query(db, "SELECT id, point_count FROM tracks ORDER BY id DESC LIMIT 1")[0]
        got = db_query(db, "SELECT count(*), min(seq), max(seq), sum(time_seconds - 1645369687)"
                           " FROM track_points WHERE track_id = ?", (tid,))[0]
        fl.expect(count == N and got == (N, 0, N - 1, N * (N - 1) // 2), "rows %r" % (got,))
        r.close()
        other.close()
    results.run("a Track outrunning a slow writer pauses itself, not its worker",
                track_does_not_stall_the_worker)
results.finish()
