"""Output queued for a client that does not read is bounded.

A client that opens its flow-control window at 0 and asks for a large
server stream must not make the host buffer everything the handler sends:
past [rpchost] max_send_queue bytes waiting on one connection the call ends
with RESOURCE_EXHAUSTED: with the window closed the trailers cannot leave
either, so the stream is reset with ENHANCE_YOUR_CALM (which gRPC clients
report as RESOURCE_EXHAUSTED); the host keeps serving. A client that reads
gets a stream that fits the limit in full. (send cannot block: what one
handler callback sends counts in full, whether the client reads or not.)"""
import os
import struct
import sys

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))
import core_lib as cl  # noqa: E402
from core_lib import RawH2, expect, grpc_body, pb, status_of  # noqa: E402
import rpchost_test  # noqa: E402

results = rpchost_test.Results()
MIB = 1 << 20
INITIAL_WINDOW_SIZE = 0x4


def sanitized_build():
    """ASan keeps freed memory in its quarantine: RSS says little there."""
    try:
        with open(os.path.join(rpchost_test.BUILD_DIR, "CMakeCache.txt")) as f:
            return "RPCHOST_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def non_reading_client(h, count, size, limit):
    r = RawH2(h)
    # Stream windows of 0: the server may send HEADERS and trailers, no DATA.
    r.frame(cl.SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 0))
    r.grpc_headers(1, cl.SVC + "Stream")
    r.data(1, grpc_body(pb.Req(text="q", count=count, size=size).SerializeToString()),
           end_stream=True)
    st = r.response(1, timeout=30)
    expect(st["rst"] == cl.ENHANCE_YOUR_CALM, "stream reset ENHANCE_YOUR_CALM: %r" % st)
    expect(st["data"] == b"", "no DATA through a closed window")
    r.close()
    expect("max_send_queue" in h.logs() and str(limit) in h.logs(), "the log names the limit")


def reading_client(h, count, size):
    ch = h.channel()
    call = ch.unary_stream(cl.SVC + "Stream", request_serializer=pb.Req.SerializeToString,
                           response_deserializer=pb.Resp.FromString)
    got = 0
    for resp in call(pb.Req(text="r", count=count, size=size), timeout=60):
        expect(len(resp.payload) == size, "payload size")
        got += 1
    ch.close()
    expect(got == count, "%d of %d responses" % (got, count))


def still_serves(h):
    ch = h.channel()
    r = cl.echo(ch)(pb.Req(text="alive"), timeout=cl.TIMEOUT)
    ch.close()
    expect(r.text == "alive", "normal call after the non-reading client")


# Default limit (64 MiB): 96 x 1 MiB would be buffered in full before the fix.
with rpchost_test.Host(plugins=["testsvc"], plaintext=True) as h:
    def default_limit():
        before = rss_kib(h.serving_pid)
        non_reading_client(h, 96, MIB, 64 * MIB)
        grown = rss_kib(h.serving_pid) - before
        # 64 MiB may have been queued; far less than the 96 MiB asked for
        # plus the buffer's growth by doubling (128 MiB).
        expect(sanitized_build() or grown < 110 * 1024, "host RSS grew by %d KiB" % grown)
        still_serves(h)
    results.run("non-reading client, default limit: RESOURCE_EXHAUSTED", default_limit)
    results.run("reading client gets 32 x 1 MiB in full", reading_client, h, 32, MIB)

CONFIG = "[rpchost]\nmax_send_queue = %d\n" % (8 * MIB)
for tls in (False, True):
    with rpchost_test.Host(plugins=["testsvc"], plaintext=not tls, config=CONFIG) as h:
        name = "tls" if tls else "h2c"

        def configured():
            r = RawH2(h, tls)
            r.frame(cl.SETTINGS, 0, 0, struct.pack(">HI", INITIAL_WINDOW_SIZE, 0))
            # Many streams, each under the limit, together over it.
            for i in range(8):
                sid = 1 + 2 * i
                r.grpc_headers(sid, cl.SVC + "Stream")
                r.data(sid, grpc_body(pb.Req(count=2, size=MIB).SerializeToString()),
                       end_stream=True)
            r.until(lambda: any(r._stream(1 + 2 * i)["ended"] for i in range(8)),
                    "a stream over the connection's limit to end", 30)
            r.pump(0.5)
            rst = [r._stream(1 + 2 * i)["rst"] for i in range(8)]
            # 8 MiB hold three streams' 2 x 1 MiB (plus prefixes): the rest
            # go over the limit.
            expect(rst.count(cl.ENHANCE_YOUR_CALM) >= 4, "streams reset: %r" % rst)
            expect(all(x in (None, cl.ENHANCE_YOUR_CALM) for x in rst), "resets %r" % rst)
            r.close()
            still_serves(h)
        results.run("%s: 8 streams x 2 MiB over an 8 MiB connection limit" % name, configured)
        results.run("%s: reading client, 6 x 1 MiB with an 8 MiB limit" % name,
                    reading_client, h, 6, MIB)

        def grpc_client_sees_resource_exhausted():
            ch = h.channel()
            call = ch.unary_stream(cl.SVC + "Stream", request_serializer=pb.Req.SerializeToString,
                                   response_deserializer=pb.Resp.FromString)
            try:
                for _ in call(pb.Req(count=12, size=MIB), timeout=60):
                    pass
                raise AssertionError("12 MiB sent at once through an 8 MiB limit")
            except grpc.RpcError as e:
                expect(e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, "code %s" % e.code())
            ch.close()
        results.run("%s: grpcio client, 12 MiB sent at once: RESOURCE_EXHAUSTED" % name,
                    grpc_client_sees_resource_exhausted)
results.finish()
