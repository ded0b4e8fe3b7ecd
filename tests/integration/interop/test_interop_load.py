"""50 channels (50 connections), each making 200 calls at once: all OK.
Over TLS and over h2c."""
import threading
import time

import grpc

import interop_cases as ic
import rpchost_test

CHANNELS = 50
CALLS = 200


def load(host):
    errors = []
    done = [0]
    lock = threading.Lock()

    def one_channel(i):
        # A local subchannel pool: every channel gets its own connection.
        ch = host.channel(options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            unary = ic.unary_call(ch)
            futs = []
            for j in range(CALLS):
                req = ic.messages.SimpleRequest(response_size=(i * CALLS + j) % 2048,
                                                payload=ic.zeros(j % 512))
                futs.append((req.response_size, unary.future(req, timeout=120)))
            ok = 0
            for size, f in futs:
                try:
                    resp = f.result()
                    if len(resp.payload.body) != size:
                        raise AssertionError("body %d, want %d" % (len(resp.payload.body), size))
                    ok += 1
                except (grpc.RpcError, AssertionError) as e:
                    with lock:
                        errors.append("channel %d: %s" % (i, e))
            with lock:
                done[0] += ok
        finally:
            ch.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=one_channel, args=(i,)) for i in range(CHANNELS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    elapsed = time.monotonic() - t0
    print("  %d calls OK in %.1fs (%.0f calls/s)" % (done[0], elapsed, done[0] / elapsed), flush=True)
    ic.expect(not any(t.is_alive() for t in threads), "channels still running after 180s")
    ic.expect(not errors, "%d failed calls, first: %s" % (len(errors), errors[:3]))
    ic.expect(done[0] == CHANNELS * CALLS, "%d calls OK, want %d" % (done[0], CHANNELS * CALLS))


results = rpchost_test.Results()
for plaintext in (False, True):
    label = "h2c" if plaintext else "tls"
    with rpchost_test.Host(plugins=["interop"], plaintext=plaintext) as h:
        results.run("%s %d channels x %d concurrent calls" % (label, CHANNELS, CALLS), load, h)
        ch = h.channel()
        results.run("%s still serving after load" % label, ic.empty_unary, ch)
        ch.close()
results.finish()
