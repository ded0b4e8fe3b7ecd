"""SIGTERM while a long server stream runs: the stream finishes within the
drain timeout, the host exits 0. Over TLS and h2c."""
import signal
import subprocess
import time

import grpc

import interop_cases as ic
import rpchost_test

RESPONSES = 10
INTERVAL_US = 300000  # the stream lasts ~3 s


def drain_lets_stream_finish(plaintext):
    h = rpchost_test.Host(plugins=["interop"], plaintext=plaintext)
    with h:
        ch = h.channel()
        try:
            req = ic.messages.StreamingOutputCallRequest(
                response_parameters=ic.params(*range(100, 100 + RESPONSES), interval_us=INTERVAL_US))
            call = ic.output_call(ch)(req, timeout=60)
            sizes = [len(next(call).payload.body)]
            t0 = time.monotonic()
            h.signal(signal.SIGTERM)
            sizes += [len(r.payload.body) for r in call]
            ic.expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())
            ic.expect(sizes == list(range(100, 100 + RESPONSES)), "sizes %s" % sizes)
            try:
                code = h.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                raise AssertionError("host still running 40s after SIGTERM:\n" + h.logs())
            ic.expect(code == 0, "host exited %s:\n%s" % (code, h.logs()))
            print("  stream ended and host exited %.1fs after SIGTERM" % (time.monotonic() - t0))
        finally:
            ch.close()


def drain_timeout_cancels_stream(plaintext):
    """A stream longer than the drain timeout is cut at the timeout; the host
    still exits 0 (needs --drain-timeout)."""
    h = rpchost_test.Host(plugins=["interop"], plaintext=plaintext, args=["--drain-timeout", "1"])
    with h:
        ch = h.channel()
        try:
            req = ic.messages.StreamingOutputCallRequest(
                response_parameters=ic.params(*([10] * 30), interval_us=500000))
            call = ic.output_call(ch)(req, timeout=60)
            next(call)
            t0 = time.monotonic()
            h.signal(signal.SIGTERM)
            try:
                n = sum(1 for _ in call)
                raise AssertionError("stream of 15 s ended OK after %d more responses" % n)
            except grpc.RpcError as e:
                ic.expect(e.code() != grpc.StatusCode.OK, "status OK")
            try:
                code = h.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise AssertionError("host still running 30s after SIGTERM:\n" + h.logs())
            elapsed = time.monotonic() - t0
            ic.expect(code == 0, "host exited %s:\n%s" % (code, h.logs()))
            ic.expect(elapsed < 12, "host took %.1fs to exit with a 1s drain timeout" % elapsed)
        finally:
            ch.close()


def has_option(opt):
    out = subprocess.run([rpchost_test.RPCHOST_BIN, "--help"], capture_output=True, text=True)
    return opt in out.stdout + out.stderr


results = rpchost_test.Results()
for plaintext in (False, True):
    label = "h2c" if plaintext else "tls"
    results.run("%s SIGTERM during a server stream: stream completes, exit 0" % label,
                drain_lets_stream_finish, plaintext)
    if has_option("--drain-timeout"):
        results.run("%s drain timeout cuts a longer stream, exit 0" % label,
                    drain_timeout_cancels_stream, plaintext)
    else:
        print("skip %s drain timeout case: rpchost has no --drain-timeout" % label)
results.finish()
