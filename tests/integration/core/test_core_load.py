"""50 channels x 200 calls at once over TLS (each its own connection), a mix
of unary and streaming; every call must succeed with the right answer. Then
the same over h2c. Bounded in time."""
import threading
import time

import grpc

import core_lib as cl
from core_lib import expect, pb
import rpchost_test

CHANNELS, CALLS, WINDOW = 50, 200, 20
results = rpchost_test.Results()


def load(h):
    errors = []
    done = [0]
    lock = threading.Lock()
    # grpc-python shares one connection between identical channels unless
    # told otherwise: a distinct option per channel makes 50 connections.
    chans = [h.channel(options=[("grpc.channel_id", i)]) for i in range(CHANNELS)]

    def worker(i, ch):
        echo = cl.echo(ch)
        stream = ch.unary_stream(cl.SVC + "Stream", request_serializer=pb.Req.SerializeToString,
                                 response_deserializer=pb.Resp.FromString)
        try:
            for start in range(0, CALLS, WINDOW):
                futs = [(k, echo.future(pb.Req(text="%d-%d" % (i, k), size=k), timeout=60))
                        for k in range(start, start + WINDOW - 1)]
                k = start + WINDOW - 1
                got = [r.value for r in stream(pb.Req(count=5, size=100), timeout=60)]
                if got != list(range(5)):
                    raise AssertionError("stream %r" % got)
                for k2, f in futs:
                    r = f.result()
                    if r.text != "%d-%d" % (i, k2) or len(r.payload) != k2:
                        raise AssertionError("wrong answer for %d-%d" % (i, k2))
                with lock:
                    done[0] += WINDOW
        except Exception as e:  # noqa: BLE001
            errors.append("channel %d: %r" % (i, e))

    t = time.time()
    threads = [threading.Thread(target=worker, args=(i, ch)) for i, ch in enumerate(chans)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(240)
    took = time.time() - t
    for ch in chans:
        ch.close()
    expect(not any(th.is_alive() for th in threads), "calls still running after 240 s")
    expect(not errors, "%d channels failed, first: %s" % (len(errors), errors[:1]))
    expect(done[0] == CHANNELS * CALLS, "%d calls done, want %d" % (done[0], CHANNELS * CALLS))
    print("     %d calls on %d connections in %.1f s" % (done[0], CHANNELS, took), flush=True)


def races(h):
    """Answers from plugin threads (10 ms later) racing deadlines set
    around 10 ms and client cancellations: every call ends OK, with
    DEADLINE_EXCEEDED or CANCELLED, and the host keeps serving."""
    chans = [h.channel(options=[("grpc.channel_id", 100 + i)]) for i in range(10)]
    bad = []

    def worker(ch, seed):
        echo = cl.echo(ch)
        for k in range(60):
            timeout = 0.004 + (k % 8) * 0.002
            fut = echo.future(pb.Req(text="r", from_thread=k % 2 == 0, delay_ms=(k % 2) * 10),
                              timeout=timeout)
            if k % 5 == 0:
                fut.cancel()
            try:
                fut.result()
            except grpc.FutureCancelledError:
                pass
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED):
                    bad.append("%s %s" % (e.code(), e.details()))
    threads = [threading.Thread(target=worker, args=(ch, i)) for i, ch in enumerate(chans)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    time.sleep(0.1)  # the plugin threads' late answers land on cancelled calls
    r = cl.echo(chans[0])(pb.Req(text="after"), timeout=cl.TIMEOUT)
    for ch in chans:
        ch.close()
    expect(not bad, "unexpected statuses: %s" % bad[:3])
    expect(r.text == "after", "host serves after the races")


with rpchost_test.Host(plugins=["testsvc"]) as h:
    results.run("tls 50 channels x 200 calls", load, h)
    results.run("tls thread answers racing deadlines and cancels", races, h)
with rpchost_test.Host(plugins=["testsvc"], plaintext=True) as h:
    results.run("h2c 50 channels x 200 calls", load, h)
results.finish()
