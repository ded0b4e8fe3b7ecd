#!/usr/bin/env python3
"""rpchost's grpc.health.v1.Health through grpcio: Check for the host and
per service, Watch seeing a plugin removed and re-added, a service that
appears later, and every stream going NOT_SERVING when the host drains."""
import os
import queue
import signal
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))

import grpc  # noqa: E402
import rpchost_test as rt  # noqa: E402

pb = rt.proto_module("grpc/health/v1/health.proto")
S = pb.HealthCheckResponse
CHECK = "/grpc.health.v1.Health/Check"
WATCH = "/grpc.health.v1.Health/Watch"
TEST_SERVICE = "grpc.testing.TestService"


def check(ch, service):
    return rt.unary(ch, CHECK, pb.HealthCheckRequest(service=service), S, timeout=10).status


class Watch:
    """A Watch stream read by a thread; next() returns a status, or
    ('end', code, details) when the stream ended."""

    def __init__(self, ch, service):
        call = rt.stub(ch, "unary_stream", WATCH, S)
        self.it = call(pb.HealthCheckRequest(service=service), timeout=120)
        self.q = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for r in self.it:
                self.q.put(r.status)
            self.q.put(("end", grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            self.q.put(("end", e.code(), e.details()))

    def next(self, timeout=15):
        try:
            return self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError("no Watch message within %ss" % timeout) from None

    def expect(self, status, timeout=15):
        got = self.next(timeout)
        assert got == status, "Watch sent %s, want %s" % (
            got if isinstance(got, tuple) else S.ServingStatus.Name(got),
            S.ServingStatus.Name(status))

    def quiet(self, seconds=0.5):
        """Nothing more was sent (changes only, no repeats)."""
        try:
            got = self.q.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError("unexpected Watch message %s" % (got,))

    def cancel(self):
        self.it.cancel()


def test_check(host):
    with host.channel() as ch:
        assert check(ch, "") == S.SERVING
        assert check(ch, TEST_SERVICE) == S.SERVING
        assert check(ch, "grpc.health.v1.Health") == S.SERVING
        assert check(ch, "grpc.reflection.v1.ServerReflection") == S.SERVING
        try:
            check(ch, "no.Such")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
            assert "no.Such" in e.details(), e.details()
        else:
            raise AssertionError("Check of an unknown service succeeded")


def test_watch_remove_readd():
    with rt.Host(plugins=["interop"], plaintext=True) as h, h.channel() as ch:
        w = Watch(ch, TEST_SERVICE)
        whole = Watch(ch, "")
        w.expect(S.SERVING)
        whole.expect(S.SERVING)
        os.unlink(os.path.join(h.plugin_dir, "interop.so"))
        w.expect(S.NOT_SERVING)
        assert check(ch, TEST_SERVICE) == S.NOT_SERVING  # known, but gone
        assert check(ch, "") == S.SERVING
        h.add_plugin("interop")
        w.expect(S.SERVING)
        assert check(ch, TEST_SERVICE) == S.SERVING
        w.quiet()
        whole.quiet()  # the host as a whole never stopped serving
        w.cancel()
        whole.cancel()
        assert w.next()[1] == grpc.StatusCode.CANCELLED


def test_watch_unknown_then_added():
    with rt.Host(plugins=["interop"], plaintext=True) as h, h.channel() as ch:
        w = Watch(ch, "Rides")
        w.expect(S.SERVICE_UNKNOWN)
        h.add_plugin("rides")
        w.expect(S.SERVING)
        w.cancel()


def test_watch_churn():
    """Watch streams opened and cancelled while a plugin is removed and
    re-added again and again: every stream still open ends on the right
    status, and the host (under ASan in CI) stays sound."""
    with rt.Host(plugins=["interop"], plaintext=True) as h, h.channel() as ch:
        keep = [Watch(ch, TEST_SERVICE) for _ in range(10)]
        for w in keep:
            w.expect(S.SERVING)
        so = os.path.join(h.plugin_dir, "interop.so")
        for rnd in range(5):
            churn = [Watch(ch, TEST_SERVICE) for _ in range(10)]
            os.unlink(so)
            for w in churn[:5]:
                w.cancel()
            h.add_plugin("interop")
            for w in churn[5:]:
                w.cancel()
        # Settled: serving. Each kept stream saw only alternations, ending on SERVING.
        deadline = time.time() + 15
        while check(ch, TEST_SERVICE) != S.SERVING and time.time() < deadline:
            time.sleep(0.1)
        deadline = time.time() + 15
        for w in keep:
            # What each stream was sent: taken until it ends on SERVING (a
            # NOT_SERVING still in flight is followed by its SERVING).
            seen = []
            while True:
                while not w.q.empty():
                    seen.append(w.q.get_nowait())
                if (not seen or seen[-1] == S.SERVING) or time.time() > deadline:
                    break
                try:
                    seen.append(w.q.get(timeout=0.1))
                except queue.Empty:
                    pass
            assert seen == [] or seen[-1] == S.SERVING, seen
            assert all(a != b for a, b in zip(seen, seen[1:])), "repeated status: %s" % seen
            assert all(x in (S.SERVING, S.NOT_SERVING) for x in seen), seen
            w.cancel()


def test_drain():
    h = rt.Host(plugins=["interop"])
    try:
        with h.channel() as ch:
            watches = [Watch(ch, ""), Watch(ch, TEST_SERVICE), Watch(ch, "not.Yet")]
            for w, st in zip(watches, (S.SERVING, S.SERVING, S.SERVICE_UNKNOWN)):
                w.expect(st)
            t = time.time()
            h.signal(signal.SIGTERM)
            for w in watches:
                if w is not watches[2]:
                    w.expect(S.NOT_SERVING)
                end = w.next()
                assert end[0] == "end" and end[1] == grpc.StatusCode.UNAVAILABLE, end
            # Watch streams do not hold the drain up to its timeout.
            code = h.proc.wait(20)
            assert code == 0, "exit code %s" % code
            assert time.time() - t < 20
    finally:
        h.__exit__(None, None, None)


def main():
    r = rt.Results()
    with rt.Host(plugins=["interop"]) as h:
        r.run("Check: host, services, NOT_FOUND (TLS)", test_check, h)
    r.run("Watch: plugin removed and re-added (h2c)", test_watch_remove_readd)
    r.run("Watch: SERVICE_UNKNOWN, then the plugin arrives", test_watch_unknown_then_added)
    r.run("Watch: 50 streams opened and cancelled while a plugin comes and goes",
          test_watch_churn)
    r.run("Watch: NOT_SERVING on drain, streams end, host exits", test_drain)
    r.finish()


if __name__ == "__main__":
    main()
