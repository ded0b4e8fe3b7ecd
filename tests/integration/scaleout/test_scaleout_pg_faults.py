"""Rides on a real PostgreSQL that goes away: a host started while the
database is down loads the plugin NOT_SERVING and becomes SERVING by
itself once it is up (and NOT_SERVING again when it stops, with no calls
made); PostgreSQL restarted under load: calls fail fast
with UNAVAILABLE during the outage, succeed again after it, and no
acknowledged ride is lost."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaleout_common as sc  # noqa: E402
from scaleout_common import grpc, rc, rt  # noqa: E402

SERVING = sc.health_pb.HealthCheckResponse.SERVING
NOT_SERVING = sc.health_pb.HealthCheckResponse.NOT_SERVING


def test_init_while_down():
    pg = sc.pgtest.Postgres(start=False)
    h = None
    try:
        h = sc.pg_host(pg.uri, wait_serving=False)
        ch = h.channel()
        sc.wait_until(lambda: "plugin rides 1.0.0 loaded" in h.logs(), "the plugin to load")
        assert sc.health_of(ch, "Rides") == NOT_SERVING
        assert sc.health_of(ch, "") == SERVING  # the host itself serves
        t0 = time.time()
        e = rc.expect_error(lambda: rc.start_stub(ch)(rc.original_request(), timeout=5),
                            grpc.StatusCode.UNAVAILABLE)
        assert time.time() - t0 < 2, time.time() - t0
        assert e.details() == ("cannot store the ride: the database is unavailable (cannot "
                               "connect to PostgreSQL); retry later"), e.details()
        assert "cannot connect to PostgreSQL" in h.logs()
        # The database comes: no restart, health turns SERVING, calls pass.
        pg.start()
        pg.psql("CREATE DATABASE rides", db="postgres")
        sc.wait_health(ch, "Rides", SERVING, timeout=15)
        rid = rc.start_stub(ch)(rc.original_request(), timeout=5).id
        assert sc.missing_in_pg(pg, [rid]) == []
        # With no calls at all, health still follows the database: idle
        # connections are looked at every second.
        pg.stop()
        sc.wait_health(ch, "Rides", NOT_SERVING, timeout=10)
        pg.start()
        sc.wait_health(ch, "Rides", SERVING, timeout=15)
        rid = rc.start_stub(ch)(rc.original_request(), timeout=5).id
        assert sc.missing_in_pg(pg, [rid]) == []
        ch.close()
        sc.stop_checked(h)
    finally:
        if h:
            h.stop()
            h.log.close()
        pg.close()


def test_restart_under_load():
    with sc.pgtest.Postgres() as pg:
        h = sc.pg_host(pg.uri)
        try:
            load = sc.Load(h.channel, n=8, max_calls=100000, track_every=8, timeout=20)
            load.start()
            sc.wait_until(lambda: len(load.acked) >= 300, "300 rides before the outage")
            pg.stop()
            down_at = time.time()
            hc = h.channel()
            # Health follows: NOT_SERVING once every connection is lost.
            sc.wait_health(hc, "Rides", NOT_SERVING, timeout=10)
            # The outage lasts a while: calls keep failing, each at once.
            sc.wait_until(lambda: len([f for f in load.failures if f[3] > down_at + 0.5]) >= 20,
                          "calls failing during the outage")
            acked_in_outage = len(load.acked)
            during = [f for f in load.failures if f[3] > down_at]
            for code, details, took, _ in during:
                assert code == grpc.StatusCode.UNAVAILABLE, (code, details)
                assert "the database is unavailable" in details, details
                # (The host fails them at once; 3 s leaves room for a busy
                # machine's client threads, far below the 20 s deadline.)
                assert took < 3.0, "a call took %.2fs to fail during the outage" % took
            pg.start()
            up_at = time.time()
            sc.wait_health(hc, "Rides", SERVING, timeout=15)
            sc.wait_until(lambda: len(load.acked) >= acked_in_outage + 300,
                          "300 rides after the restart")
            load.stop()
            # Every lane is back within its backoff (at most 2 s) and a
            # connection's set-up: allow 6 s on a loaded machine.
            late = [f for f in load.failures if f[3] > up_at + 6]
            assert late == [], late[:5]
            missing = sc.missing_in_pg(pg, load.acked)
            assert missing == [], "%d acknowledged rides missing" % len(missing)
            assert int(pg.scalar(
                "SELECT count(*) FROM tracks t WHERE point_count != (SELECT count(*) "
                "FROM track_call_points p WHERE p.track_id = t.id)")) == 0
            hc.close()
            print("restart under load: %d calls, %d acknowledged rides, %d tracks, %d failed "
                  "(all UNAVAILABLE, the slowest in %.3fs)"
                  % (load.calls, len(load.acked), load.tracks_ok, len(load.failures),
                     max(f[2] for f in load.failures)))
            assert "connected to PostgreSQL again" in h.logs()
            sc.stop_checked(h)
        finally:
            h.stop()
            h.log.close()


if __name__ == "__main__":
    r = rt.Results()
    r.run("init with PostgreSQL down: NOT_SERVING, then SERVING by itself", test_init_while_down)
    r.run("PostgreSQL restarted under load: fail fast, recover, nothing lost",
          test_restart_under_load)
    r.finish()
