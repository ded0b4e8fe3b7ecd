"""Hot plugin operations through a real host and real gRPC clients: add
(time to first call), replace under continuous load (zero failed calls,
both builds observed), remove during a long stream (drain, then cancel),
failing replacements keep the old build, SIGHUP."""
import os
import signal
import statistics
import threading
import time

import grpc

import hotlib
from hotlib import rt, install, version, stream, wait_log, log_count, Load

INTEROP = os.path.join(rt.PLUGIN_BUILD_DIR, "interop.so")


def interop_extra():
    """A streaming interop call for the load mix, when the interop plugin
    is built."""
    if not os.path.exists(INTEROP):
        return None, []
    msgs = rt.proto_module("grpc/testing/messages.proto")
    path = "/grpc.testing.TestService/StreamingOutputCall"

    def call(ch):
        req = msgs.StreamingOutputCallRequest(
            response_parameters=[msgs.ResponseParameters(size=10) for _ in range(3)])
        got = list(rt.stub(ch, "unary_stream", path, msgs.StreamingOutputCallResponse)(
            req, timeout=60))
        if len(got) != 3:
            raise AssertionError("interop stream gave %d replies" % len(got))
    return call, ["interop"]


def case_add_latency():
    with rt.Host(plugins=[]) as h:
        ch = h.channel()
        try:
            version(ch)
            raise AssertionError("Swap served before it was added")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
        times = []
        for i in range(5):
            dest = "swap.so"
            t0 = install(h, "swap_v1" if i % 2 == 0 else "swap_v2", dest)
            while True:
                try:
                    version(ch, timeout=2)
                    break
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                        raise
                    if time.monotonic() - t0 > 5:
                        raise AssertionError("not serving 5 s after the rename:\n" + h.logs())
            times.append(time.monotonic() - t0)
            os.unlink(os.path.join(h.plugin_dir, dest))
            wait_log(h, r"finalised after \d+ calls and unloaded", start=0)
            h.wait_log(r"finalised after \d+ calls and unloaded", count=i + 1)
        ms = [t * 1000 for t in times]
        print("add-to-first-OK-call: median %.1f ms, max %.1f ms (%s)"
              % (statistics.median(ms), max(ms), ", ".join("%.1f" % m for m in ms)))
        # One slow add on a loaded machine is not a failure (each is bounded
        # at 5 s above); the typical add is what must be under a second.
        assert statistics.median(times) < 1.0, "add took %.3f s (median)" % statistics.median(times)


def case_replace_under_load():
    extra, extra_plugins = interop_extra()
    with rt.Host(plugins=extra_plugins) as h:
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        swaps = 50
        with Load(h, n=8, extra=extra) as load:
            time.sleep(0.3)
            for i in range(swaps):
                install(h, "swap_v2" if i % 2 == 0 else "swap_v1", "swap.so")
                deadline = time.time() + 10
                while log_count(h, r"plugin swap \d+ replaced") < i + 1:
                    if time.time() > deadline:
                        raise AssertionError("swap %d not done:\n%s" % (i, h.logs()[-3000:]))
                    time.sleep(0.005)
                time.sleep(0.05)
            load.wait_ok(200)
            load.stop()
        print("replace under load: %d OK calls, versions seen %s, %d swaps"
              % (load.ok, load.versions, swaps))
        load.assert_clean(min_ok=200)
        assert set(load.versions) == {"1", "2"}, load.versions
        # Old builds were finalised and unloaded, not leaked.
        deadline = time.time() + 10
        while log_count(h, r"plugin swap \d+ \(.*\) finalised after \d+ calls and unloaded") < swaps:
            if time.time() > deadline:
                raise AssertionError("only %d of %d old builds unloaded:\n%s" % (
                    log_count(h, r"plugin swap \d+ \(.*\) finalised .* unloaded"), swaps,
                    h.logs()[-3000:]))
            time.sleep(0.05)
        assert "could not be unloaded" not in h.logs()


def case_remove_during_stream():
    with rt.Host(plugins=[], args=["--drain-timeout", "6"]) as h:
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        ch = h.channel()
        got, errors = [], []
        first = threading.Event()

        def consume():
            try:
                for r in stream(ch, 10, 150):
                    got.append(r.seq)
                    first.set()
            except grpc.RpcError as e:
                errors.append(e)
            first.set()

        t = threading.Thread(target=consume)
        t.start()
        assert first.wait(5), "no first reply"
        t0 = time.monotonic()
        os.unlink(os.path.join(h.plugin_dir, "swap.so"))
        wait_log(h, r"plugin swap 1 \(.*\) removed")
        try:
            version(ch)
            raise AssertionError("new call served after removal")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
        t.join(10)
        assert not errors, errors
        assert got == list(range(1, 11)), got
        assert time.monotonic() - t0 < 6
        wait_log(h, r"plugin swap 1 \(.*\) finalised after \d+ calls and unloaded")


def case_remove_drain_timeout():
    with rt.Host(plugins=[], args=["--drain-timeout", "1"]) as h:
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        ch = h.channel()
        it = stream(ch, 100, 100)
        next(it)
        t0 = time.monotonic()
        os.unlink(os.path.join(h.plugin_dir, "swap.so"))
        try:
            for _ in it:
                pass
            raise AssertionError("the stream outlived the drain timeout")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.UNAVAILABLE, e
            assert "unloaded" in (e.details() or ""), e.details()
        elapsed = time.monotonic() - t0
        # The drain timeout is 1 s; the stream would run 10 s without it.
        assert 0.8 < elapsed < 9, elapsed
        wait_log(h, r"drain timeout passed with 1 calls running")
        wait_log(h, r"plugin swap 1 \(.*\) finalised after \d+ calls and unloaded")


def case_failing_replacements_keep_old():
    with rt.Host(plugins=[]) as h:
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        path = os.path.join(h.plugin_dir, "swap.so")
        with Load(h, n=8) as load:
            time.sleep(0.2)
            install(h, "swap_badinit", "swap.so")
            wait_log(h, r"swap\.so refused: its init failed.*the loaded version keeps serving")
            install(h, "swap_abi2", "swap.so")
            wait_log(h, r"swap\.so refused: built for rpchost ABI 2\.0.*rebuild the plugin "
                        r"against rpchost ABI 1\.x")
            # Half-written in place: refused when closed, loaded once complete.
            with open(hotlib.test_plugin("swap_v2"), "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(data[:len(data) // 2])
            wait_log(h, r"swap\.so refused: truncated or corrupt ELF")
            time.sleep(0.3)
            assert set(load.versions) == {"1"}, load.versions
            n_refused = log_count(h, r"refused")
            with open(path, "wb") as f:
                f.write(data)
            wait_log(h, r"plugin swap 2 replaced 1")
            n = load.ok
            load.wait_ok(max(100, n + 16))  # calls that started after the swap
            load.stop()
        load.assert_clean(min_ok=100)
        assert "2" in load.versions
        assert log_count(h, r"refused") == n_refused, "a failed file was retried"
        assert "BUG: constructor" not in h.logs(), "code of a foreign-ABI plugin ran"


def case_sighup():
    cfg = "[plugin.swap]\ngreeting = hello\n"
    with rt.Host(plugins=[], config=cfg) as h:
        install(h, "swap_v1", "swap.so")
        with open(os.path.join(h.plugin_dir, "junk.so"), "w") as f:
            f.write("not a plugin\n")
        wait_log(h, r"junk\.so refused: not a shared object")
        wait_log(h, r"plugin swap 1 loaded")
        ch = h.channel()
        r = rt.unary(ch, hotlib.VERSION, hotlib.swap_pb2.VersionRequest(),
                     hotlib.swap_pb2.VersionReply, timeout=5)
        assert r.greeting == "hello", r
        with open(h.config_path, "w") as f:
            f.write("[plugin.swap]\ngreeting = bonjour\n")
        h.signal(signal.SIGHUP)
        wait_log(h, r"reload: greeting is now 'bonjour'")
        r = rt.unary(ch, hotlib.VERSION, hotlib.swap_pb2.VersionRequest(),
                     hotlib.swap_pb2.VersionReply, timeout=5)
        assert r.greeting == "bonjour", r
        # The unchanged refused file was not retried by the rescan.
        assert log_count(h, r"junk\.so refused") == 1, h.logs()
        # A broken config keeps the old sections and the host serving.
        with open(h.config_path, "w") as f:
            f.write("[plugin.swap\n")
        h.signal(signal.SIGHUP)
        wait_log(h, r"config reload: .*keeping the previous plugin sections")
        assert version(ch) == "1"


def case_replace_rides_under_load():
    """The real Rides plugin (SQLite, a writer thread) replaced 50 times
    under load from 8 clients (Rides/Start and an interop stream): zero
    failed calls, and every Start that answered OK is in the database (old
    instances finish their commits before fini). Each copy of rides.so is a
    new file, so each swap loads a new instance of the same build."""
    rides_so = os.path.join(rt.PLUGIN_BUILD_DIR, "rides.so")
    if not os.path.exists(rides_so):
        raise AssertionError("rides.so is not built: " + rides_so)
    import sqlite3
    rides_v2_so = os.path.join(rt.TEST_PLUGIN_DIR, "rides_v2.so")
    if not os.path.exists(rides_v2_so):
        raise AssertionError("rides_v2.so is not built: " + rides_v2_so)
    rides_dir = os.path.join(rt.SOURCE_DIR, "plugins", "rides")
    pb = rt.proto_module("rides.proto", extra_paths=[rides_dir])
    extra, extra_plugins = interop_extra()
    tmp = __import__("tempfile").mkdtemp(prefix="rpchost-rides-swap-")
    db = os.path.join(tmp, "rides.db")
    cfg = "[plugin.rides]\ndb = %s\n" % db
    try:
        with rt.Host(plugins=extra_plugins, config=cfg) as h:
            def put_rides(build=rides_so):
                t = os.path.join(h.tmp, ".incoming-rides.so")
                __import__("shutil").copyfile(build, t)
                os.rename(t, os.path.join(h.plugin_dir, "rides.so"))
            put_rides()
            wait_log(h, r"plugin rides \S+ loaded")

            def start(ch):
                req = pb.StartRequest(car_id=7, driver_id="Bond", passenger_ids=["M"],
                                      type=pb.POOL, location=pb.Location(lat=51.5, lng=-0.12))
                req.time.FromJsonString("2022-02-20T15:08:07Z")
                fn = ch.unary_unary("/Rides/Start",
                                    request_serializer=lambda m: m.SerializeToString(),
                                    response_deserializer=pb.StartResponse.FromString)
                # Deadlines bound a hang; on a loaded machine (fsync of the
                # SQLite commit beside other builds) a call may take seconds.
                _, call = fn.with_call(req, timeout=60)
                md = dict(call.initial_metadata())
                with lock:
                    versions[md.get("x-rides-version", "none")] += 1

            starts = [0]
            versions = __import__("collections").Counter()
            lock = threading.Lock()

            def mix(ch):
                if extra and threading.current_thread().name.endswith("odd"):
                    extra(ch)
                else:
                    start(ch)
                    with lock:
                        starts[0] += 1

            class RidesLoad(Load):
                def _run(self, i):
                    threading.current_thread().name = "load-%d-%s" % (i, "odd" if i % 2 else "even")
                    ch = self.host.channel()
                    deadline = time.time() + 600
                    while not self.stop_ev.is_set() and time.time() < deadline:
                        try:
                            mix(ch)
                            with self.lock:
                                self.ok += 1
                        except grpc.RpcError as e:
                            with self.lock:
                                self.failures.append("%s: %s" % (e.code(), e.details()))
                    ch.close()

            with RidesLoad(h, n=8) as load:
                time.sleep(0.3)
                for i in range(50):
                    # Alternate two builds that answer with different versions.
                    put_rides(rides_v2_so if i % 2 == 0 else rides_so)
                    deadline = time.time() + 15
                    while log_count(h, r"plugin rides \S+ replaced") < i + 1:
                        if time.time() > deadline:
                            raise AssertionError("rides swap %d not done:\n%s"
                                                 % (i, h.logs()[-3000:]))
                        time.sleep(0.005)
                    time.sleep(0.05)
                load.wait_ok(100)
                load.stop()
            print("rides replace under load: %d OK calls (%d Start), %d failed, 50 swaps"
                  % (load.ok, starts[0], len(load.failures)))
            load.assert_clean(min_ok=100)
            assert starts[0] > 50, starts[0]
            print("rides versions seen answering: %s" % dict(versions))
            assert versions["1.0.0"] > 0 and versions["2.0.0-test"] > 0, dict(versions)
            assert set(versions) == {"1.0.0", "2.0.0-test"}, dict(versions)
            deadline = time.time() + 15
            while log_count(h, r"plugin rides \S+ \(.*\) finalised after \d+ calls and unloaded") < 50:
                if time.time() > deadline:
                    raise AssertionError("old rides instances not unloaded:\n" + h.logs()[-3000:])
                time.sleep(0.05)
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        stored = con.execute("SELECT count(*) FROM rides").fetchone()[0]
        con.close()
        assert stored == starts[0], "%d Start calls answered OK, %d rides stored" % (
            starts[0], stored)
    finally:
        __import__("shutil").rmtree(tmp, ignore_errors=True)


def case_replace_interceptor_under_load():
    """An interceptor plugin (testauth: metadata x-test-principal becomes the
    principal) replaced 30 times while 8 clients call Swap/Version: every
    call still ran through an interceptor (the reply carries the principal),
    none failed."""
    with rt.Host(plugins=[]) as h:
        install(h, "testauth", "testauth.so")
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        wait_log(h, r"plugin testauth \S+ loaded")
        seen = {"ok": 0, "bad": []}
        lock = threading.Lock()

        def with_principal(ch):
            r = rt.unary(ch, hotlib.VERSION, hotlib.swap_pb2.VersionRequest(),
                         hotlib.swap_pb2.VersionReply, timeout=30,
                         metadata=(("x-test-principal", "carol"),))
            with lock:
                if r.principal == "carol":
                    seen["ok"] += 1
                else:
                    seen["bad"].append(r.principal)

        with Load(h, n=8, extra=with_principal) as load:
            time.sleep(0.2)
            for i in range(30):
                install(h, "testauth", "testauth.so")
                deadline = time.time() + 10
                while log_count(h, r"plugin testauth \S+ replaced") < i + 1:
                    if time.time() > deadline:
                        raise AssertionError("interceptor swap %d not done" % i)
                    time.sleep(0.005)
                time.sleep(0.03)
            load.wait_ok(100)
            load.stop()
        load.assert_clean(min_ok=100)
        assert seen["ok"] > 30 and not seen["bad"], seen


if __name__ == "__main__":
    res = rt.Results()
    res.run("add_latency", case_add_latency)
    res.run("replace_under_load", case_replace_under_load)
    res.run("replace_rides_under_load", case_replace_rides_under_load)
    res.run("replace_interceptor_under_load", case_replace_interceptor_under_load)
    res.run("remove_during_stream", case_remove_during_stream)
    res.run("remove_drain_timeout", case_remove_drain_timeout)
    res.run("failing_replacements_keep_old", case_failing_replacements_keep_old)
    res.run("sighup", case_sighup)
    res.finish()
