"""Server streams larger than the host's send limits reach slow readers.

The interop plugin paces StreamingOutputCall and FullDuplexCall with
send_queued/notify_writable (ABI 1.1): it stops sending while the host
holds more than send_high_water (1 MiB) of the call's responses and goes
on when notified. So a client that does not read (HTTP/2 window 0) makes
the host hold about 2 MiB for the call, not 200 MiB, the call is not
failed while the client is merely slow, and once the client reads it gets
everything. Before ABI 1.1 such a stream failed with RESOURCE_EXHAUSTED
([plugin.interop] max_pending_bytes, [rpchost] max_send_queue)."""
import struct
import threading
import time

import grpc

import flow_lib as fl
from flow_lib import KIB, MIB, CountingH2, expect
import rpchost_test as rt

messages = rt.proto_module("grpc/testing/messages.proto")
empty = rt.proto_module("grpc/testing/empty.proto")
SVC = "/grpc.testing.TestService/"
results = rt.Results()


def output_request(count, size):
    return messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=size) for _ in range(count)])


def still_serves(h):
    ch = h.channel()
    ch.unary_unary(SVC + "EmptyCall", request_serializer=empty.Empty.SerializeToString,
                   response_deserializer=empty.Empty.FromString)(empty.Empty(), timeout=20)
    ch.close()


def non_reading_then_reading(h, count, size, wait_s):
    rss0, hwm0 = fl.rss_kib(h.serving_pid), fl.hwm_kib(h.serving_pid)
    r = CountingH2(h, reading=False)
    # Stream windows of 0: the server may send headers, no DATA.
    r.frame(fl.cl.SETTINGS, 0, 0, struct.pack(">HI", 0x4, 0))
    r.grpc_headers(1, SVC + "StreamingOutputCall")
    r.data(1, fl.cl.grpc_body(output_request(count, size).SerializeToString()), end_stream=True)
    deadline = time.time() + wait_s
    while time.time() < deadline:
        r.pump(0.1)
    st = r._stream(1)
    grown = fl.rss_kib(h.serving_pid) - rss0
    print("  client not reading for %.0f s: host RSS +%d KiB, %d bytes reached the client"
          % (wait_s, grown, r.data_bytes.get(1, 0)), flush=True)
    expect(not st["ended"] and st["rst"] is None, "the call ended: %r" % st["headers"])
    expect(r.data_bytes.get(1, 0) == 0, "no DATA through a closed window")
    if not fl.sanitized_build():
        expect(grown < 24 * 1024, "host RSS grew by %d KiB for a non-reading client" % grown)
    # Now read: open the windows and count what arrives.
    r.reading = True
    r.frame(fl.cl.SETTINGS, 0, 0, struct.pack(">HI", 0x4, 1 * MIB))
    r.frame(fl.cl.WINDOW_UPDATE, 0, 0, struct.pack(">I", 16 * MIB))
    t0 = time.time()
    r.until(lambda: r._stream(1)["ended"], "the stream to end", 240)
    secs = time.time() - t0
    st = r._stream(1)
    hwm = fl.hwm_kib(h.serving_pid) - hwm0
    got = r.data_bytes.get(1, 0)
    print("  then reading: %d MiB in %.1f s; host peak RSS +%d KiB over the whole call"
          % (got // MIB, secs, hwm), flush=True)
    expect(fl.cl.status_of(st)[1] == 0, "status %r" % (st["headers"],))
    # each response: 5-byte prefix + payload message (field 1 {field 2 bytes})
    expect(got >= count * size and got < count * (size + 32), "%d bytes for %d x %d" % (got, count, size))
    if not fl.sanitized_build():
        expect(hwm < 32 * 1024, "host peak RSS grew by %d KiB" % hwm)
    r.close()
    still_serves(h)


def cancel_while_waiting(h):
    r = CountingH2(h, reading=False)
    r.frame(fl.cl.SETTINGS, 0, 0, struct.pack(">HI", 0x4, 0))
    for sid in (1, 3, 5):
        r.grpc_headers(sid, SVC + "StreamingOutputCall")
        r.data(sid, fl.cl.grpc_body(output_request(50, MIB).SerializeToString()), end_stream=True)
    r.grpc_headers(7, SVC + "FullDuplexCall")
    r.data(7, fl.cl.grpc_body(output_request(50, MIB).SerializeToString()))
    deadline = time.time() + 1.5
    while time.time() < deadline:
        r.pump(0.1)
    r.frame(fl.cl.RST_STREAM, 0, 1, struct.pack(">I", 8))  # CANCEL
    r.frame(fl.cl.RST_STREAM, 0, 7, struct.pack(">I", 8))
    r.pump(0.3)
    r.close()  # 3 and 5 go with the connection
    still_serves(h)


def grpcio_slow_reader(h, method, count, size, pause_s):
    hwm0 = fl.hwm_kib(h.serving_pid)
    ch = h.channel()
    req = output_request(count, size)
    if method == "StreamingOutputCall":
        call = ch.unary_stream(SVC + method,
                               request_serializer=messages.StreamingOutputCallRequest.SerializeToString,
                               response_deserializer=messages.StreamingOutputCallResponse.FromString)
        it = call(req, timeout=300)
    else:
        call = ch.stream_stream(SVC + method,
                                request_serializer=messages.StreamingOutputCallRequest.SerializeToString,
                                response_deserializer=messages.StreamingOutputCallResponse.FromString)
        it = call(iter([req]), timeout=300)
    t0 = time.time()
    got = total = 0
    for resp in it:
        got += 1
        total += len(resp.payload.body)
        time.sleep(pause_s)
    secs = time.time() - t0
    hwm = fl.hwm_kib(h.serving_pid) - hwm0
    print("  grpcio %s, %d x %d KiB read slowly: %d MiB in %.1f s, host peak RSS +%d KiB"
          % (method, count, size // KIB, total // MIB, secs, hwm), flush=True)
    expect(got == count and total == count * size, "%d responses, %d bytes" % (got, total))
    expect(it.code() == grpc.StatusCode.OK, "status %s" % it.code())
    if not fl.sanitized_build():
        expect(hwm < 48 * 1024, "host peak RSS grew by %d KiB" % hwm)
    ch.close()


with rt.Host(plugins=["interop"], plaintext=True, workers=1) as h:
    results.run("h2c: a client that does not read a 200 x 1 MiB StreamingOutputCall for 3 s: "
                "not failed, host RSS bounded; then it reads everything",
                non_reading_then_reading, h, 200, MIB, 3.0)
    results.run("h2c: streams cancelled or lost while waiting for the client to read",
                cancel_while_waiting, h)

with rt.Host(plugins=["interop"], workers=1) as h:
    results.run("TLS: grpcio StreamingOutputCall of 100 MiB (100 x 1 MiB), slow reader: OK",
                grpcio_slow_reader, h, "StreamingOutputCall", 100, MIB, 0.03)
    results.run("TLS: grpcio FullDuplexCall of 50 x 2 MiB, slow reader: OK",
                grpcio_slow_reader, h, "FullDuplexCall", 50, 2 * MIB, 0.03)

# The pacing is the plugin's: with it switched off the host's last-resort
# cap (max_send_queue) ends the same stream for a client that does not read.
CONFIG_NOPACE = "[rpchost]\nmax_send_queue = %d\n\n[plugin.interop]\nsend_high_water = 0\n" % (16 * MIB)
with rt.Host(plugins=["interop"], plaintext=True, workers=1, config=CONFIG_NOPACE) as h:
    def unpaced_hits_the_cap():
        r = CountingH2(h, reading=False)
        r.frame(fl.cl.SETTINGS, 0, 0, struct.pack(">HI", 0x4, 0))
        r.grpc_headers(1, SVC + "StreamingOutputCall")
        r.data(1, fl.cl.grpc_body(output_request(64, MIB).SerializeToString()), end_stream=True)
        st = r.response(1, timeout=30)
        expect(st["rst"] == fl.cl.ENHANCE_YOUR_CALM, "reset ENHANCE_YOUR_CALM: %r" % st)
        r.close()
        still_serves(h)
    results.run("without pacing, the same stream hits [rpchost] max_send_queue",
                unpaced_hits_the_cap)
results.finish()
