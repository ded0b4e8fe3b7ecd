"""Shared pieces of the rides integration tests: the Rides protobuf module,
the original client's requests, call helpers and database readers."""
import os
import re
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import grpc  # noqa: E402
import rpchost_test as rt  # noqa: E402

RIDES_DIR = os.path.join(rt.SOURCE_DIR, "plugins", "rides")
pb = rt.proto_module("rides.proto", extra_paths=[RIDES_DIR])
HEX32 = re.compile(r"^[0-9a-f]{32}$")

# The original client's values.
ORIGINAL_TIME = "2022-02-20T15:08:07.915156117+00:00"
ORIGINAL_SECONDS, ORIGINAL_NANOS = 1645369687, 915156117
ORIGINAL_LAT, ORIGINAL_LNG = 51.4871871, -0.1266743


def original_request():
    """Start as the original client sent it."""
    req = pb.StartRequest(car_id=7, driver_id="Bond", passenger_ids=["M", "Q"],
                          type=pb.POOL,
                          location=pb.Location(lat=ORIGINAL_LAT, lng=ORIGINAL_LNG))
    req.time.FromJsonString(ORIGINAL_TIME)
    return req


def original_events(n=7):
    """The original Track client's events: car 7 from the original location,
    each step +0.0001 lat, -0.0001 lng, +17.3 s."""
    out = []
    for i in range(n):
        ev = pb.TrackRequest(car_id=7, location=pb.Location(lat=ORIGINAL_LAT + 0.0001 * i,
                                                            lng=ORIGINAL_LNG - 0.0001 * i))
        t_ns = ORIGINAL_SECONDS * 10**9 + ORIGINAL_NANOS + int(i * 17.3 * 10**9)
        ev.time.seconds, ev.time.nanos = divmod(t_ns, 10**9)
        out.append(ev)
    return out


def start_stub(channel):
    return rt.stub(channel, "unary_unary", "/Rides/Start", pb.StartResponse)


def track_stub(channel):
    return rt.stub(channel, "stream_unary", "/Rides/Track", pb.TrackResponse)


def status_line(err):
    """How the original client reported a failure: '<status code>: <details>'."""
    return "%s: %s" % (err.code().name, err.details())


def expect_error(fn, code, details=None):
    """Calls fn(); asserts it fails with code (and exactly these details)."""
    try:
        fn()
    except grpc.RpcError as e:
        if e.code() != code or (details is not None and e.details() != details):
            raise AssertionError("expected %s: %s, got %s" % (code.name, details, status_line(e)))
        return e
    raise AssertionError("expected %s, the call succeeded" % code.name)


def db_connect(path):
    """A read-only connection (the host keeps writing; WAL lets us read)."""
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=30)
    return con


def db_query(path, sql, args=()):
    con = db_connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def db_scalar(path, sql, args=()):
    return db_query(path, sql, args)[0][0]


def rides_config(db=None, synchronous=None, extra=""):
    lines = ["[rpchost]", "log_level = info", "", "[plugin.rides]"]
    if db is not None:
        lines.append("db = %s" % db)
    if synchronous is not None:
        lines.append("synchronous = %s" % synchronous)
    return "\n".join(lines) + "\n" + extra


def vm_hwm_kib(pid):
    """Peak resident set size of a process (VmHWM), in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM for pid %d" % pid)


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)
