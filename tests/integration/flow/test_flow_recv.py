"""Request data a plugin does not consume (pause_reading) is bounded.

A paused call gets no on_message; the host holds what arrives without
returning its HTTP/2 window, so a client can push at most stream_window
bytes per paused stream, and the paused streams of one connection at most
2 x conn_window (conn_window whose connection window the host returned, so
one paused stream does not block the others, plus one more window). When
the plugin resumes (from its own thread) everything held is delivered and
the windows reopen. The flowtest plugin pauses each Sink after its first
message and resumes them all on Resume."""
import time

import flow_lib as fl
from flow_lib import KIB, MIB, CountingH2, ctl, expect, ft, wait_paused
import rpchost_test as rt

results = rt.Results()
MSG = 16 * KIB - 64   # data per Chunk: one message fits in one DATA frame


def stream_payload(total):
    """Chunk messages adding up to about `total` bytes on the wire."""
    body = fl.chunk_body(b"x" * MSG)
    n = max(1, total // len(body))
    return bytearray(body * n), n, n * MSG


def open_sinks(r, n):
    """n Sink streams, each with a first message (which pauses it)."""
    sids = [1 + 2 * i for i in range(n)]
    for sid in sids:
        r.grpc_headers(sid, fl.FT + "Sink")
        r.data(sid, fl.chunk_body(b"first"))
        r.conn_window -= len(fl.chunk_body(b"first"))
        r.windows[sid] = r.windows.get(sid, r.initial_window) - len(fl.chunk_body(b"first"))
    return sids


def flood_and_resume(h, n_streams, per_stream, stream_window, conn_window, rss_limit_kib=None):
    ch = h.channel()
    r = CountingH2(h)
    r.pump(0.2)  # our SETTINGS and the window update
    sids = open_sinks(r, n_streams)
    wait_paused(ch, n_streams)
    todo, counts = {}, {}
    for sid in sids:
        todo[sid], counts[sid], _ = stream_payload(per_stream)
    rss0 = fl.rss_kib(h.serving_pid)
    sent = r.send_within_windows(todo, idle=2.0)
    held = sum(sent.values())
    grown = fl.rss_kib(h.serving_pid) - rss0
    bound = 2 * conn_window
    print("  %d paused streams: the client could send %d KiB (bound %d KiB, asked %d KiB); "
          "host RSS +%d KiB" % (n_streams, held // KIB, bound // KIB,
                               n_streams * per_stream // KIB, grown), flush=True)
    expect(held <= bound, "host took %d bytes for paused calls, bound %d" % (held, bound))
    expect(max(sent.values()) <= stream_window,
           "one paused stream took %d bytes, window %d" % (max(sent.values()), stream_window))
    # The budget returned the connection window of held bytes: more than
    # one connection window got in.
    expect(held > min(conn_window, n_streams * stream_window) * 0.9,
           "only %d bytes got in: the connection window of held bytes was not returned" % held)
    if rss_limit_kib is not None and not fl.sanitized_build():
        expect(grown < rss_limit_kib, "host RSS grew by %d KiB (limit %d)" % (grown, rss_limit_kib))
    expect(ctl(ch, "Paused").calls == n_streams, "still paused")
    # Resume from the plugin's thread: everything is delivered and the
    # client can send the rest.
    expect(ctl(ch, "Resume").calls == n_streams, "all resumed")
    rest = r.send_within_windows(todo, idle=10.0, limit=120)
    expect(all(not v for v in todo.values()), "everything sent after the resume")
    for sid in sids:
        r.data(sid, b"", end_stream=True)
    for sid in sids:
        st = r.response(sid, timeout=60)
        status = rt_status(st)
        expect(status == 0, "stream %d status %r" % (sid, st["headers"]))
        res = ft.SinkResult.FromString(st["data"][5:])
        expect(res.messages == 1 + counts[sid] and res.bytes == 5 + counts[sid] * MSG,
               "stream %d: %d messages, %d bytes delivered" % (sid, res.messages, res.bytes))
        expect(res.pauses == 1, "paused once")
    r.close()
    ch.close()
    return held, sum(rest.values())


def rt_status(st):
    return fl.cl.status_of(st)[1]


CONFIG_SMALL = ("[rpchost]\nstream_window = %d\nconn_window = %d\n" % (256 * KIB, 1 * MIB))
with rt.Host(plugins=["flowtest"], plaintext=True, config=CONFIG_SMALL, workers=1) as h:
    results.run("100 paused streams, 256 KiB / 1 MiB windows: at most 2 MiB held, "
                "all delivered after resume",
                flood_and_resume, h, 100, 512 * KIB, 256 * KIB, 1 * MIB)

with rt.Host(plugins=["flowtest"], plaintext=True, workers=1) as h:
    results.run("100 paused streams, default windows (1 MiB / 8 MiB): at most 16 MiB held, "
                "host RSS bounded",
                flood_and_resume, h, 100, 2 * MIB, 1 * MIB, 8 * MIB, 40 * 1024)

CONFIG_EQUAL = "[rpchost]\nstream_window = %d\nconn_window = %d\n" % (1 * MIB, 1 * MIB)
with rt.Host(plugins=["flowtest"], plaintext=True, config=CONFIG_EQUAL, workers=1) as h:
    def paused_stream_does_not_block_connection():
        ch = h.channel()
        r = CountingH2(h)
        r.pump(0.2)
        sids = open_sinks(r, 1)
        wait_paused(ch, 1)
        todo = {sids[0]: stream_payload(2 * MIB)[0]}
        sent = r.send_within_windows(todo, idle=1.5)
        expect(sent[sids[0]] > 900 * KIB, "the paused stream filled its window: %d" % sent[sids[0]])
        # A unary call on the same connection: its DATA needs connection
        # window, which the held bytes would have used up.
        t0 = time.time()
        body = fl.cl.grpc_body(ft.Ctl().SerializeToString())
        expect(r.window(3) >= len(body), "connection window open: %d" % r.window(3))
        r.grpc_headers(3, fl.FT + "Paused")
        r.data(3, body, end_stream=True)
        st = r.response(3, timeout=10)
        expect(rt_status(st) == 0, "unary call on the same connection: %r" % st["headers"])
        print("  unary call beside a paused stream holding %d KiB: %.0f ms"
              % (sent[sids[0]] // KIB, (time.time() - t0) * 1000), flush=True)
        expect(ft.Ctl.FromString(st["data"][5:]).calls == 1, "one Sink paused")
        # Resume, finish the Sink.
        expect(ctl(ch, "Resume").calls == 1, "resumed")
        r.send_within_windows(todo, idle=10.0)
        r.data(sids[0], b"", end_stream=True)
        st = r.response(sids[0], timeout=30)
        expect(rt_status(st) == 0, "Sink OK")
        r.close()
        ch.close()
    results.run("one paused stream holding a whole connection window does not block "
                "another call on its connection", paused_stream_does_not_block_connection)

    def cancel_while_paused():
        ch = h.channel()
        r = CountingH2(h)
        r.pump(0.2)
        sids = open_sinks(r, 3)
        wait_paused(ch, 3)
        todo = {sid: stream_payload(512 * KIB)[0] for sid in sids}
        r.send_within_windows(todo, idle=1.0)
        r.frame(fl.cl.RST_STREAM, 0, sids[0], b"\0\0\0\x08")  # CANCEL
        r.close()  # the connection goes with two paused streams holding data
        deadline = time.time() + 10
        while ctl(ch, "Paused").calls and time.time() < deadline:
            time.sleep(0.05)
        expect(ctl(ch, "Paused").calls == 0, "cancelled calls left the paused list")
        # The host still serves, with windows intact on a new connection.
        flood = CountingH2(h)
        flood.pump(0.2)
        s2 = open_sinks(flood, 1)
        wait_paused(ch, 1)
        expect(ctl(ch, "Resume").calls == 1, "resumed")
        flood.data(s2[0], b"", end_stream=True)
        expect(rt_status(flood.response(s2[0])) == 0, "a new Sink works")
        flood.close()
        ch.close()
    results.run("cancel and connection loss while paused and holding data", cancel_while_paused)

# Decoded requests count too: protobuf-c turns a 2-byte unknown field into a
# 40-byte entry, so 4 MiB of them decode to ~80 MiB, which a client could
# keep alive by never ending the stream of a single-message call.
messages = rt.proto_module("grpc/testing/messages.proto")
with rt.Host(plugins=["interop"], plaintext=True, workers=1) as h:
    def decode_amplification():
        rss0 = fl.rss_kib(h.serving_pid)
        r = CountingH2(h)
        r.pump(0.2)
        body = bytes([0x28, 0x00]) * ((4 * MIB - 16) // 2)  # field 5 = 0, unknown to Empty
        todo = {}
        for i in range(6):
            r.grpc_headers(1 + 2 * i, "/grpc.testing.TestService/EmptyCall")
            todo[1 + 2 * i] = bytearray(fl.cl.grpc_body(body))
        r.send_within_windows(todo, idle=3.0)
        r.until(lambda: all(r._stream(sid)["ended"] for sid in todo), "all refused", 30)
        grown = fl.rss_kib(h.serving_pid) - rss0
        codes = [fl.cl.status_of(r._stream(sid))[1] for sid in todo]
        msgs = [fl.cl.status_of(r._stream(sid))[2] for sid in todo]
        print("  6 x 4 MiB of unknown fields, stream never ended: host RSS +%d KiB; %s"
              % (grown, sorted(set(m.split(" (")[0] for m in msgs))), flush=True)
        expect(codes == [8] * 6, "all RESOURCE_EXHAUSTED: %r" % msgs)
        expect(any("decodes to more memory" in m for m in msgs), "%r" % msgs)
        if not fl.sanitized_build():
            expect(grown < 48 * 1024, "host RSS grew by %d KiB" % grown)
        r.close()

        # Requests of the same size that decode to their size all pass,
        # four at a time on one connection.
        ch = h.channel()
        call = ch.unary_unary("/grpc.testing.TestService/UnaryCall",
                              request_serializer=messages.SimpleRequest.SerializeToString,
                              response_deserializer=messages.SimpleResponse.FromString)
        big = messages.SimpleRequest(response_size=10,
                                     payload=messages.Payload(body=b"\0" * (4 * MIB - 64)))
        futs = [call.future(big, timeout=60) for _ in range(4)]
        expect(all(len(f.result().payload.body) == 10 for f in futs), "4 x 4 MiB unary calls OK")
        ch.close()
    results.run("a request that decodes to far more than its size cannot pin host memory",
                decode_amplification)

with rt.Host(plugins=["flowtest10"], plaintext=True, workers=1) as h:
    def abi10_plugin():
        ch = h.channel()
        info = ctl(ch, "Paused")
        expect(info.abi_minor >= 1 and not info.has_flow, "ABI 1.0 plugin on a 1.%d host" % info.abi_minor)
        sink = ch.stream_unary(fl.FT + "Sink", request_serializer=ft.Chunk.SerializeToString,
                               response_deserializer=ft.SinkResult.FromString)
        res = sink(iter([ft.Chunk(data=b"a" * 1000)] * 300), timeout=30)
        expect(res.messages == 300 and res.bytes == 300000 and res.pauses == 0, "%r" % res)
        ch.close()
        expect("flowtest10 1.0.0 loaded" in h.logs(), "log names the plugin")
    results.run("a plugin built for ABI 1.0 loads and serves on this host", abi10_plugin)
results.finish()
