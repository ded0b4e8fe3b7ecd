"""Graceful stop (SIGTERM): GOAWAY with the largest stream id and a PING,
then GOAWAY with the last stream id once the PING is acknowledged (as
grpc-go does); calls in flight finish within the drain timeout, those still
running at the timeout end with UNAVAILABLE; no new connection is taken;
the host exits 0."""
import signal
import socket
import threading
import time

import grpc

import core_lib as cl
from core_lib import RawH2, expect, grpc_body, pb, status_of
import rpchost_test

results = rpchost_test.Results()
CONFIG = "[rpchost]\ndrain_timeout_ms = 2000\n"


def graceful(tls):
    h = rpchost_test.Host(plugins=["testsvc"], plaintext=not tls, config=CONFIG)
    try:
        raw = RawH2(h, tls)
        raw.grpc_headers(1, cl.SVC + "Hang", extra=[("grpc-timeout", "30S")])
        raw.data(1, grpc_body(pb.Req().SerializeToString()), end_stream=True)
        ch = h.channel()
        cl.echo(ch)(pb.Req(text="warm"), timeout=cl.TIMEOUT)
        runs = cl.stats(ch).handler_runs
        slow = cl.echo(ch).future(pb.Req(text="slow", delay_ms=700), timeout=cl.TIMEOUT)
        # In flight means the handler has it: a fixed sleep here let a loaded
        # machine send SIGTERM before the call reached the host.
        cl.wait_for(lambda: cl.stats(ch).handler_runs > runs, "the slow call at the handler")
        t = time.time()
        h.signal(signal.SIGTERM)
        raw.until(lambda: len(raw.goaways) >= 2, "two GOAWAYs", 10)
        first, second = raw.goaways[0], raw.goaways[1]
        expect(first[0] == 0x7FFFFFFF and first[1] == 0, "first GOAWAY %r" % (first,))
        expect(second[0] == 1 and second[1] == 0, "second GOAWAY %r" % (second,))
        # the call in flight on the other connection completes normally
        r = slow.result()
        expect(r.text == "slow", "in-flight call answered during the drain")
        # a new connection is no longer accepted
        def refused():
            try:
                socket.create_connection(("127.0.0.1", h.port), timeout=2).close()
                return False
            except OSError:
                return True
        cl.wait_for(refused, "new connections refused while draining")
        # the hanging call ends with UNAVAILABLE at the drain timeout
        st = raw.response(1, timeout=10)
        http, code, msg = status_of(st)
        expect(code == 14 and "shutting down" in (msg or ""), "status %r %r" % (code, msg))
        took = time.time() - t
        # Not before the 2 s drain timeout; the upper bound only catches a
        # drain that ignores its timeout, with room for a loaded machine.
        expect(1.5 < took < 15, "drain took %.1fs (timeout 2s)" % took)
        code = h.proc.wait(10)
        expect(code == 0, "exit code %s" % code)
        ch.close()
        raw.close()
    finally:
        h.__exit__(None, None, None)


results.run("tls graceful stop", graceful, True)
results.run("h2c graceful stop", graceful, False)
results.finish()
