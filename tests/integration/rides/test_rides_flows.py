"""The original Rides clients' flows through grpcio over TLS (dev CA)
against rpchost with the rides plugin, and what they leave in SQLite."""
import os
import shutil
import tempfile
import threading
import time

import grpc

from rides_common import (HEX32, ORIGINAL_LAT, ORIGINAL_LNG, ORIGINAL_NANOS, ORIGINAL_SECONDS,
                          db_query, db_scalar, expect_error, original_events, original_request,
                          pb, rt, start_stub, status_line, track_stub)

IA = grpc.StatusCode.INVALID_ARGUMENT


def test_start_original(h, db):
    t0 = time.time_ns()
    resp = start_stub(h.channel())(original_request(), timeout=3)
    t1 = time.time_ns()
    assert HEX32.match(resp.id), resp.id
    assert resp.id[12] == "4" and resp.id[16] in "89ab", "not a uuid4: %s" % resp.id
    rows = db_query(db, "SELECT car_id, driver_id, type, lat, lng, time_seconds, time_nanos,"
                        " principal, received_unix_ns FROM rides WHERE id = ?", (resp.id,))
    assert rows == [(7, "Bond", 1, ORIGINAL_LAT, ORIGINAL_LNG, ORIGINAL_SECONDS,
                     ORIGINAL_NANOS, None, rows[0][8])], rows
    assert t0 - 10**9 <= rows[0][8] <= t1 + 10**9, "received_unix_ns %d not in the call" % rows[0][8]
    pas = db_query(db, "SELECT passenger_id FROM ride_passengers WHERE ride_id = ?"
                       " ORDER BY position", (resp.id,))
    assert pas == [("M",), ("Q",)], pas


def test_start_empty_driver(h, db):
    before = db_scalar(db, "SELECT count(*) FROM rides")
    req = original_request()
    req.driver_id = ""
    e = expect_error(lambda: start_stub(h.channel())(req, timeout=3), IA, "driver_id is empty")
    assert status_line(e) == "INVALID_ARGUMENT: driver_id is empty", status_line(e)
    assert db_scalar(db, "SELECT count(*) FROM rides") == before


def test_start_validation_messages(h, db):
    stub = start_stub(h.channel())
    cases = [
        (lambda r: r.passenger_ids.__setitem__(1, ""), "passenger_ids[1] is empty"),
        (lambda r: setattr(r, "type", 5), "type is 5, not a RideType (REGULAR = 0, POOL = 1)"),
        (lambda r: setattr(r.location, "lat", 90.5), "location.lat is 90.5, outside [-90, 90]"),
        (lambda r: setattr(r.location, "lat", -91), "location.lat is -91, outside [-90, 90]"),
        (lambda r: setattr(r.location, "lng", -180.001),
         "location.lng is -180.001, outside [-180, 180]"),
        (lambda r: setattr(r.location, "lng", float("nan")),
         "location.lng is not a finite number (nan)"),
        (lambda r: setattr(r.location, "lat", float("inf")),
         "location.lat is not a finite number (inf)"),
        (lambda r: setattr(r.time, "nanos", 1000000000),
         "time.nanos is 1000000000, outside [0, 999999999]"),
        (lambda r: setattr(r.time, "nanos", -1), "time.nanos is -1, outside [0, 999999999]"),
        (lambda r: setattr(r.time, "seconds", 253402300800),
         "time.seconds is 253402300800, outside years 0001 to 9999"),
    ]
    before = db_scalar(db, "SELECT count(*) FROM rides")
    for mutate, want in cases:
        req = original_request()
        mutate(req)
        expect_error(lambda: stub(req, timeout=3), IA, want)
    assert db_scalar(db, "SELECT count(*) FROM rides") == before
    # The edges are valid, and so is a request without location and time.
    req = original_request()
    req.location.lat, req.location.lng = -90, 180
    assert HEX32.match(stub(req, timeout=3).id)
    req = pb.StartRequest(car_id=1, driver_id="D", type=pb.REGULAR)
    rid = stub(req, timeout=3).id
    assert db_query(db, "SELECT lat, lng, time_seconds, type FROM rides WHERE id = ?",
                    (rid,)) == [(None, None, None, 0)]


def test_track_original(h, db):
    resp = track_stub(h.channel())(iter(original_events(7)), timeout=10)
    assert resp.count == 7, resp
    tid, count = db_query(db, "SELECT id, point_count FROM tracks ORDER BY id DESC LIMIT 1")[0]
    assert count == 7
    pts = db_query(db, "SELECT seq, car_id, lat, lng, time_seconds, time_nanos FROM track_points"
                       " WHERE track_id = ? ORDER BY seq", (tid,))
    assert len(pts) == 7, pts
    for i, ev in enumerate(original_events(7)):
        assert pts[i] == (i, 7, ev.location.lat, ev.location.lng, ev.time.seconds,
                          ev.time.nanos), (i, pts[i])


def test_track_empty(h, db):
    before = db_scalar(db, "SELECT count(*) FROM tracks")
    resp = track_stub(h.channel())(iter([]), timeout=10)
    assert resp.count == 0
    assert db_scalar(db, "SELECT count(*) FROM tracks") == before + 1
    assert db_scalar(db, "SELECT point_count FROM tracks ORDER BY id DESC LIMIT 1") == 0


def test_track_invalid_point_stores_nothing(h, db):
    tracks = db_scalar(db, "SELECT count(*) FROM tracks")
    points = db_scalar(db, "SELECT count(*) FROM track_points")
    # 2,000 good points (some already staged in batches), then a bad one.
    evs = original_events(2000)
    bad = pb.TrackRequest(car_id=7, location=pb.Location(lat=95, lng=0))
    expect_error(lambda: track_stub(h.channel())(iter(evs + [bad] + evs[:5]), timeout=20), IA,
                 "message[2000].location.lat is 95, outside [-90, 90]")
    evs = original_events(3)
    evs[1].time.nanos = -7
    expect_error(lambda: track_stub(h.channel())(iter(evs), timeout=20), IA,
                 "message[1].time.nanos is -7, outside [0, 999999999]")
    assert db_scalar(db, "SELECT count(*) FROM tracks") == tracks
    assert db_scalar(db, "SELECT count(*) FROM track_points") == points


def test_track_cancelled_stores_nothing(h, db):
    tracks = db_scalar(db, "SELECT count(*) FROM tracks")
    points = db_scalar(db, "SELECT count(*) FROM track_points")
    sent = threading.Event()

    def events():
        for ev in original_events(3000):
            yield ev
        sent.set()
        time.sleep(30)  # never half-closes: the client cancels first

    fut = track_stub(h.channel()).future(events(), timeout=60)
    assert sent.wait(20), "the client could not send 3000 events"
    time.sleep(0.3)
    fut.cancel()
    try:
        fut.result()
    except grpc.FutureCancelledError:
        pass
    # The host saw the cancel; a later call is answered and nothing of the
    # cancelled one is stored.
    assert track_stub(h.channel())(iter(original_events(2)), timeout=10).count == 2
    assert db_scalar(db, "SELECT count(*) FROM tracks") == tracks + 1
    assert db_scalar(db, "SELECT count(*) FROM track_points") == points + 2


def test_concurrent_starts(h, db):
    """500 concurrent Starts from 20 channels: all OK, distinct ids, 500 rows."""
    before = db_scalar(db, "SELECT count(*) FROM rides")
    channels = [h.channel() for _ in range(20)]
    stubs = [start_stub(c) for c in channels]
    futs = []
    for i in range(500):
        req = original_request()
        req.car_id = 1000 + i
        futs.append(stubs[i % 20].future(req, timeout=60))
    ids = []
    for f in futs:
        ids.append(f.result().id)
    assert all(HEX32.match(i) for i in ids)
    assert len(set(ids)) == 500, "duplicate ids"
    assert db_scalar(db, "SELECT count(*) FROM rides") == before + 500
    stored = {r[0] for r in db_query(db, "SELECT id FROM rides WHERE car_id >= 1000"
                                         " AND car_id < 1500")}
    assert stored == set(ids)
    for c in channels:
        c.close()


def test_principal_from_interceptor(tmp):
    """With the authlog plugin's auth interceptor in front, the ride and
    the track carry the principal it attached."""
    import hashlib
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("%s alice /Rides/*\n" % hashlib.sha256(b"s3cret-rides").hexdigest())
    config = ("[plugin.authlog]\ntokens_file = %s\nmtls = off\n\n[plugin.rides]\n"
              "db = %s\n" % (tokens, os.path.join(tmp, "p.db")))
    md = [("authorization", "Bearer s3cret-rides")]
    with rt.Host(plugins=["authlog", "rides"], config=config) as h:
        rid = start_stub(h.channel())(original_request(), timeout=3, metadata=md).id
        assert track_stub(h.channel())(iter(original_events(3)), timeout=10,
                                       metadata=md).count == 3
        expect_error(lambda: start_stub(h.channel())(original_request(), timeout=3),
                     grpc.StatusCode.UNAUTHENTICATED)
    db = os.path.join(tmp, "p.db")
    assert db_query(db, "SELECT principal FROM rides WHERE id = ?", (rid,)) == [("alice",)]
    assert db_query(db, "SELECT principal, point_count FROM tracks") == [("alice", 3)]
    assert db_scalar(db, "SELECT count(*) FROM rides") == 1


def wait_log(h, needle, timeout=10):
    deadline = time.time() + timeout
    while needle not in h.logs():
        assert time.time() < deadline, "no %r in the log:\n%s" % (needle, h.logs())
        time.sleep(0.05)


def test_reload_synchronous(tmp):
    """SIGHUP re-reads [plugin.rides]: a new synchronous applies from the
    next commit; a new db path is only logged (no switch under calls)."""
    import signal
    db = os.path.join(tmp, "r.db")
    with rt.Host(plugins=["rides"], config="[plugin.rides]\ndb = %s\nsynchronous = OFF\n" % db) as h:
        # (The port accepts before plugins load: wait for the line.)
        wait_log(h, "storing rides in %s (WAL, synchronous=OFF, schema v2)" % db)
        with open(h.config_path, "w") as f:
            f.write("[plugin.rides]\ndb = %s\nsynchronous = normal\n" % os.path.join(tmp, "other.db"))
        h.signal(signal.SIGHUP)
        wait_log(h, "synchronous=NORMAL from the next commit on")
        wait_log(h, "needs a restart or a plugin replace; still storing in %s" % db)
        assert HEX32.match(start_stub(h.channel())(original_request(), timeout=3).id)
    assert db_scalar(db, "SELECT count(*) FROM rides") == 1
    assert not os.path.exists(os.path.join(tmp, "other.db"))


def main():
    res = rt.Results()
    # Default db path: rides.db in the host's working directory.
    with rt.Host(plugins=["rides"]) as h:
        db = os.path.join(h.tmp, "rides.db")
        for name, fn in [("start original request, 3 s deadline", test_start_original),
                         ("start empty driver", test_start_empty_driver),
                         ("start validation messages", test_start_validation_messages),
                         ("track original 7 events", test_track_original),
                         ("track empty", test_track_empty),
                         ("track invalid point stores nothing",
                          test_track_invalid_point_stores_nothing),
                         ("track cancelled stores nothing", test_track_cancelled_stores_nothing),
                         ("500 concurrent starts from 20 channels", test_concurrent_starts)]:
            res.run(name, fn, h, db)
        logs = h.logs()
    res.run("log names the database and its mode",
            lambda: _assert_in("storing rides in %s (WAL, synchronous=FULL, schema v2)"
                               % os.path.realpath(db), logs))
    tmp = tempfile.mkdtemp(prefix="rides-reload-")
    try:
        res.run("SIGHUP applies a new synchronous", test_reload_synchronous, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if os.path.exists(os.path.join(rt.PLUGIN_BUILD_DIR, "authlog.so")):
        tmp = tempfile.mkdtemp(prefix="rides-principal-")
        try:
            res.run("principal attached by an interceptor is stored",
                    test_principal_from_interceptor, tmp)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("skip principal: build/plugins/authlog.so not built", flush=True)
    res.finish()


def _assert_in(needle, text):
    assert needle in text, "%r not in:\n%s" % (needle, text)


if __name__ == "__main__":
    main()
