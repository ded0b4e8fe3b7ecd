"""Hostile and broken HTTP/2 clients, made by hand (core_lib.RawH2): every
case gets a clear answer (an HTTP or gRPC status, a stream reset or a
GOAWAY) or a closed connection, and after each the host still serves a
normal grpcio call."""
import gzip
import os
import socket
import ssl
import struct
import sys
import time
import zlib

import grpc

import core_lib as cl
from core_lib import RawH2, expect, grpc_body, pb, status_of
import rpchost_test

results = rpchost_test.Results()
ECHO = cl.SVC + "Echo"
CONFIG = """[rpchost]
handshake_timeout_ms = 1500
ping_min_interval_ms = 1000
ping_max_strikes = 2
"""


def still_serves(h):
    ch = h.channel()
    r = cl.echo(ch)(pb.Req(text="alive"), timeout=cl.TIMEOUT)
    ch.close()
    expect(r.text == "alive", "normal call after the hostile one")


def req_bytes(**kw):
    return grpc_body(pb.Req(**kw).SerializeToString())


def hostile_cases(h, tls):
    def c(name, fn):
        def run():
            fn(h, tls)
            still_serves(h)
        results.run("%s %s" % ("tls" if tls else "h2c", name), run)

    c("raw client: a normal call", raw_normal)
    c("wrong content-type -> 415", wrong_content_type)
    c("missing content-type -> 415", missing_content_type)
    c("GET -> 405", get_method)
    c("compressed flag without grpc-encoding -> INTERNAL", compressed_flag)
    c("grpc-encoding snappy -> UNIMPLEMENTED naming gzip and deflate", unsupported_encoding)
    c("gzip and deflate requests inflated, per-message flag", compressed_requests)
    c("compressed flag with grpc-encoding identity -> INTERNAL", compressed_flag_identity)
    c("corrupt and truncated gzip -> INTERNAL", corrupt_gzip)
    c("gzip bomb (64 KiB -> 64 MiB) -> RESOURCE_EXHAUSTED", gzip_bomb)
    c("deflate bomb in a client stream -> RESOURCE_EXHAUSTED", deflate_bomb_stream)
    c("inflated bytes count in the connection's receive budget", inflated_budget)
    c("undecodable request -> INTERNAL", undecodable)
    c("truncated message -> INTERNAL", truncated)
    c("two messages to a unary method -> INTERNAL", two_messages)
    c("no message to a unary method -> INTERNAL", no_message)
    c("malformed grpc-timeout -> INTERNAL", bad_timeout)
    c("-bin metadata not base64 -> INTERNAL", bad_bin)
    c("10 KiB header list -> RESOURCE_EXHAUSTED", soft_header_limit)
    c("20 KiB header list -> reset + GOAWAY", hard_header_limit)
    c("200 concurrent streams: 100 served, the rest refused", many_streams)
    c("message over the limit split across frames", over_limit_split)
    c("message re-assembled from 1-byte DATA frames", one_byte_frames)
    c("many large partial messages -> RESOURCE_EXHAUSTED past the connection budget",
      partial_budget)
    c("ping flood -> GOAWAY ENHANCE_YOUR_CALM", ping_flood)
    c("rapid reset flood -> GOAWAY", rapid_reset)
    c("RST_STREAM mid-call", rst_mid_call)
    c("RST_STREAM for a stream never opened: ignored, other calls go on", rst_idle_stream)
    c("garbage instead of the preface", garbage_preface)
    c("connection dropped mid-message", drop_mid_message)


def raw_normal(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO)
    r.data(1, req_bytes(text="raw"), end_stream=True)
    st = r.response(1)
    http, code, _ = status_of(st)
    expect(http == "200" and code == 0, "status %r %r" % (http, code))
    expect(pb.Resp.FromString(st["data"][5:]).text == "raw", "answer")
    r.close()


def expect_status(st, http, code, text=None):
    got = status_of(st)
    expect(got[0] == http and got[1] == code, "got %r, want %s %s" % (got, http, code))
    if text:
        expect(text in (got[2] or ""), "grpc-message %r lacks %r" % (got[2], text))


def one_stream(h, tls, extra=(), body=None, end=True, **kw):
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO, extra=extra, end_stream=body is None and end, **kw)
    if body is not None and len(body) > 16384:
        r.data_flow(1, body, end_stream=end)  # several frames, within the windows
    elif body is not None:
        r.data(1, body, end_stream=end)
    st = r.response(1)
    r.close()
    return st


def wrong_content_type(h, tls):
    # application/json at a method path is Connect (docs/web.md); a type
    # no protocol serves is still gRPC's 415
    st = one_stream(h, tls, body=req_bytes(), content_type="text/plain")
    expect_status(st, "415", 13, "content-type")


def missing_content_type(h, tls):
    st = one_stream(h, tls, body=req_bytes(), content_type=None)
    expect_status(st, "415", 13, "content-type")


def get_method(h, tls):
    st = one_stream(h, tls, method="GET")
    expect_status(st, "405", 13, "POST")


def compressed_flag(h, tls):
    st = one_stream(h, tls, body=grpc_body(pb.Req(text="z").SerializeToString(), compressed=True))
    expect_status(st, "200", 13, "compressed")


def unsupported_encoding(h, tls):
    st = one_stream(h, tls, extra=[("grpc-encoding", "snappy")],
                    body=grpc_body(b"\x1f\x8b", compressed=True))
    expect_status(st, "200", 12, "snappy")
    expect_status(st, "200", 12, "identity, gzip and deflate")
    allh = {}
    for x in st["headers"]:
        allh.update(x)
    expect(allh.get("grpc-accept-encoding") == "gzip,deflate", "grpc-accept-encoding %r" % allh)


# --- compression (grpc-encoding) and decompression bombs -------------------

MIB = 1 << 20
BOMB_INFLATED = 64 * MIB
_bombs = {}


def bomb(kind):
    """64 MiB of zeros compressed (about 64 KiB), made once."""
    if kind not in _bombs:
        zeros = bytes(BOMB_INFLATED)
        _bombs[kind] = gzip.compress(zeros, 9, mtime=0) if kind == "gzip" else zlib.compress(zeros, 9)
    return _bombs[kind]


def all_headers(st):
    allh = {}
    for x in st["headers"]:
        allh.update(x)
    return allh


def compressed_requests(h, tls):
    """gzip and deflate requests are inflated; each message's flag decides
    (an uncompressed message in a gzip call is fine); every response says
    grpc-accept-encoding."""
    payload = pb.Req(text="squeeze " * 4000).SerializeToString()
    for name, data in (("gzip", gzip.compress(payload)), ("deflate", zlib.compress(payload))):
        st = one_stream(h, tls, extra=[("grpc-encoding", name)], body=grpc_body(data, True))
        expect_status(st, "200", 0)
        expect(len(data) < len(payload) // 10, "it was compressed")
        expect(pb.Resp.FromString(st["data"][5:]).text == "squeeze " * 4000, name + " echo")
        expect(all_headers(st).get("grpc-accept-encoding") == "gzip,deflate",
               "grpc-accept-encoding %r" % all_headers(st))
    st = one_stream(h, tls, extra=[("grpc-encoding", "gzip")], body=grpc_body(payload, False))
    expect_status(st, "200", 0)
    expect(pb.Resp.FromString(st["data"][5:]).text == "squeeze " * 4000, "uncompressed message")
    # a client stream mixing compressed and uncompressed messages
    r = RawH2(h, tls)
    r.grpc_headers(1, cl.SVC + "Collect", extra=[("grpc-encoding", "deflate")])
    parts = [pb.Req(text="a" * 3000).SerializeToString(), pb.Req(text="b" * 5).SerializeToString()]
    r.data(1, grpc_body(zlib.compress(parts[0]), True) + grpc_body(parts[1], False), end_stream=True)
    st = r.response(1)
    expect_status(st, "200", 0)
    got = pb.Resp.FromString(st["data"][5:])
    expect(got.value == 2 and got.text == "3005", "collected %d messages, %s bytes"
           % (got.value, got.text))
    r.close()


def compressed_flag_identity(h, tls):
    st = one_stream(h, tls, extra=[("grpc-encoding", "identity")],
                    body=grpc_body(gzip.compress(b"\x0a\x01z"), compressed=True))
    expect_status(st, "200", 13, "no grpc-encoding")


def corrupt_gzip(h, tls):
    good = gzip.compress(pb.Req(text="x" * 1000).SerializeToString())
    for body, what in ((b"not gzip at all", "not a valid"), (good[:len(good) // 2], "ends early"),
                       (good + b"junk", "not a valid")):
        st = one_stream(h, tls, extra=[("grpc-encoding", "gzip")], body=grpc_body(body, True))
        expect_status(st, "200", 13, "could not decompress the gzip request message")
        expect_status(st, "200", 13, what)
    # deflate is not gzip
    st = one_stream(h, tls, extra=[("grpc-encoding", "deflate")], body=grpc_body(good, True))
    expect_status(st, "200", 13, "could not decompress the deflate")


def gzip_bomb(h, tls):
    data = bomb("gzip")
    expect(len(data) < 100 << 10, "bomb of %d bytes" % len(data))
    st = one_stream(h, tls, extra=[("grpc-encoding", "gzip")], body=grpc_body(data, True))
    expect_status(st, "200", 8, "inflates past the limit of 4194304 bytes")


def deflate_bomb_stream(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, cl.SVC + "Collect", extra=[("grpc-encoding", "deflate")])
    r.data(1, req_bytes(text="first"))
    r.data_flow(1, grpc_body(bomb("deflate"), True))
    st = r.response(1)
    expect_status(st, "200", 8, "inflates past the limit")
    r.close()


def inflated_budget(h, tls):
    """Four streams hold 3.5 MiB partial messages each (14 of the
    connection's 16 MiB); a fifth sends 30 KiB of gzip that inflates to
    3 MiB: under the message limit, over what the connection has left."""
    r = RawH2(h, tls)
    r.pump(0.2)
    chunk = struct.pack(">BI", 0, 4 << 20) + b"\0" * (3584 << 10)
    for i in range(4):
        sid = 1 + 2 * i
        r.grpc_headers(sid, cl.SVC + "Collect")
        r.data_flow(sid, chunk)
    small = gzip.compress(pb.Req(text="y" * (3 * MIB)).SerializeToString(), 9)
    r.grpc_headers(9, ECHO, extra=[("grpc-encoding", "gzip")])
    r.data_flow(9, grpc_body(small, True), end_stream=True)
    st = r.response(9)
    expect_status(st, "200", 8, "inflates to more than this connection may still hold")
    expect(all(not r._stream(s)["ended"] for s in (1, 3, 5, 7)), "the first four go on")
    r.close()


def sanitized_build():
    """ASan keeps freed memory in its quarantine: RSS says little there."""
    try:
        with open(os.path.join(rpchost_test.BUILD_DIR, "CMakeCache.txt")) as f:
            return "RPCHOST_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def vm_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def bomb_rss():
    """On a fresh host (one worker): ten gzip and deflate bombs, four at a
    time on one connection, each 64 KiB inflating to 64 MiB. Each is
    refused RESOURCE_EXHAUSTED and the host's peak RSS grows by less than
    8 MiB (it inflates at most the 4 MiB limit, one message at a time)."""
    with rpchost_test.Host(plugins=["testsvc"], plaintext=True, workers=1) as h:
        still_serves(h)
        pid = h.serving_pid
        before = vm_kib(pid, "VmHWM")
        r = RawH2(h, False)
        sids = []
        for i in range(10):
            sid = 1 + 2 * i
            kind = "gzip" if i % 2 == 0 else "deflate"
            r.grpc_headers(sid, ECHO, extra=[("grpc-encoding", kind)])
            r.data_flow(sid, grpc_body(bomb(kind), True), end_stream=True)
            sids.append(sid)
        for sid in sids:
            expect_status(r.response(sid), "200", 8, "inflates past the limit")
        r.close()
        still_serves(h)
        grown = vm_kib(pid, "VmHWM") - before
        print("  bomb_rss: peak RSS %d KiB before, grew %d KiB" % (before, grown))
        if not sanitized_build():
            expect(grown < 8 * 1024, "peak RSS grew by %d KiB" % grown)


def undecodable(h, tls):
    st = one_stream(h, tls, body=grpc_body(b"\xff\xff\xff\xff\xff"))
    expect_status(st, "200", 13, "could not decode")


def truncated(h, tls):
    body = req_bytes(text="abcdef")
    st = one_stream(h, tls, body=body[:-3])
    expect_status(st, "200", 13, "inside a message")


def two_messages(h, tls):
    st = one_stream(h, tls, body=req_bytes(text="a") + req_bytes(text="b"))
    expect_status(st, "200", 13, "more than one")


def no_message(h, tls):
    st = one_stream(h, tls)
    expect_status(st, "200", 13, "no request message")


def bad_timeout(h, tls):
    st = one_stream(h, tls, extra=[("grpc-timeout", "soon")], body=req_bytes())
    expect_status(st, "200", 13, "grpc-timeout")


def bad_bin(h, tls):
    st = one_stream(h, tls, extra=[("x-data-bin", "!!not base64!!")], body=req_bytes())
    expect_status(st, "200", 13, "x-data-bin")


def soft_header_limit(h, tls):
    st = one_stream(h, tls, extra=[("x-big", "v" * 10000)], body=req_bytes())
    expect_status(st, "200", 8, "exceeds the limit")


def hard_header_limit(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO, extra=[("x-huge", "v" * (20 << 10))])
    r.data(1, req_bytes(), end_stream=True)
    st = r.response(1)
    expect(st["rst"] is not None, "stream not reset: %r" % st)
    r.until(lambda: r.goaway is not None, "GOAWAY")
    expect(r.goaway[1] == cl.ENHANCE_YOUR_CALM, "GOAWAY code %r" % (r.goaway,))
    r.close()


def many_streams(h, tls):
    # Before the client acknowledges our SETTINGS, nghttp2 refuses the
    # streams past the limit one by one (REFUSED_STREAM)...
    r = RawH2(h, tls, settings_ack=False)
    ids = [1 + 2 * i for i in range(200)]
    for sid in ids:  # open and never finish: Hang until the deadline
        r.grpc_headers(sid, cl.SVC + "Hang", extra=[("grpc-timeout", "2S")])
    r.until(lambda: sum(1 for s in ids if r._stream(s)["rst"] is not None) >= 100,
            "100 refused streams", 10)
    refused = [s for s in ids if r._stream(s)["rst"] == cl.REFUSED_STREAM]
    expect(refused == ids[100:], "%d streams refused, want the 100 past the limit" % len(refused))
    r.until(lambda: all(r._stream(s)["ended"] for s in ids[:100]), "deadlines", 15)
    expect(all(status_of(r._stream(s))[1] == 4 for s in ids[:100]), "DEADLINE_EXCEEDED")
    r.close()
    # ...after it, exceeding the advertised limit is a connection error
    # (RFC 9113 5.1.2; nghttp2 1.52's choice): GOAWAY PROTOCOL_ERROR.
    r = RawH2(h, tls)
    r.pump(0.3)
    for sid in ids:
        r.grpc_headers(sid, cl.SVC + "Hang", extra=[("grpc-timeout", "2S")])
    r.until(lambda: r.goaway is not None, "GOAWAY", 10)
    expect(r.goaway[1] == 0x1 and r.goaway[0] >= ids[99], "GOAWAY %r" % (r.goaway,))
    expect(r.closed_within(5), "connection closed")


def over_limit_split(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO)
    prefix = struct.pack(">BI", 0, (4 << 20) + 1)
    r.data(1, prefix[:2])
    r.data(1, prefix[2:] + b"\0" * 100)
    st = r.response(1)
    expect_status(st, "200", 8, "larger than max")
    r.close()


def one_byte_frames(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO)
    body = req_bytes(text="split" * 20)
    for i in range(len(body)):
        r.data(1, body[i:i + 1], end_stream=i == len(body) - 1)
    st = r.response(1)
    expect_status(st, "200", 0)
    expect(pb.Resp.FromString(st["data"][5:]).text == "split" * 20, "re-assembled")
    r.close()


def partial_budget(h, tls):
    # Five streams each with 3.5 MiB of a 4 MiB message: the connection may
    # hold 16 MiB of partial messages; the fifth stream is refused.
    r = RawH2(h, tls)
    r.pump(0.2)
    chunk = struct.pack(">BI", 0, 4 << 20) + b"\0" * (3584 << 10)
    for i in range(5):
        sid = 1 + 2 * i
        r.grpc_headers(sid, cl.SVC + "Collect")
        r.data_flow(sid, chunk)
    st = r.response(9)
    expect_status(st, "200", 8, "partly received")
    expect(all(not r._stream(s)["ended"] for s in (1, 3, 5, 7)), "the first four go on")
    r.close()


def ping_flood(h, tls):
    r = RawH2(h, tls)
    for i in range(20):
        r.frame(cl.PING, 0, 0, struct.pack(">Q", i))
    r.until(lambda: r.goaway is not None, "GOAWAY", 10)
    expect(r.goaway[1] == cl.ENHANCE_YOUR_CALM and r.goaway[2] == b"too_many_pings",
           "GOAWAY %r" % (r.goaway,))
    expect(r.closed_within(5), "connection closed after the GOAWAY")


def rapid_reset(h, tls):
    r = RawH2(h, tls)
    sid = 1
    try:
        for _ in range(1500):
            r.grpc_headers(sid, cl.SVC + "Hang")
            r.frame(cl.RST_STREAM, 0, sid, struct.pack(">I", 8))
            sid += 2
        r.until(lambda: r.goaway is not None, "GOAWAY", 10)
    except (cl.Closed, BrokenPipeError, ConnectionResetError, ssl.SSLError):
        return  # closed outright: fine too
    # nghttp2's reset rate limit answers INTERNAL_ERROR
    expect(r.goaway[1] in (cl.ENHANCE_YOUR_CALM, 0x2), "GOAWAY %r" % (r.goaway,))
    r.close()


def rst_mid_call(h, tls):
    ch = h.channel()
    before = cl.stats(ch).cancels
    r = RawH2(h, tls)
    r.grpc_headers(1, cl.SVC + "Collect")
    r.data(1, req_bytes(text="a"))
    r.data(1, req_bytes(text="b")[:3])
    time.sleep(0.1)
    r.frame(cl.RST_STREAM, 0, 1, struct.pack(">I", 8))
    cl.wait_for(lambda: cl.stats(ch).cancels == before + 1, "on_cancel after RST_STREAM")
    r.close()
    ch.close()


def rst_idle_stream(h, tls):
    # What grpcio does for a call cancelled before its HEADERS were written
    # (grpc/grpc#19655): RST_STREAM on an idle stream. It must not end the
    # connection's other calls (RFC 9113 would make it a connection error).
    r = RawH2(h, tls)
    r.grpc_headers(1, ECHO)
    r.data(1, req_bytes(text="a"))
    r.frame(cl.RST_STREAM, 0, 9, struct.pack(">I", 8))
    # The frame in 4-byte writes too (the reads may or may not keep them
    # apart; tests/unit/transport/test_h2scan.c covers every split). The
    # server's SETTINGS is answered first, so no frame lands in between.
    r.until(lambda: r.settings_seen, "the server's SETTINGS")
    rst = struct.pack(">I", 4)[1:] + bytes([cl.RST_STREAM, 0]) + struct.pack(">II", 11, 8)
    for i in range(0, len(rst), 4):
        r.sock.sendall(rst[i:i + 4])
    r.data(1, b"", end_stream=True)
    st = r.response(1)
    expect(status_of(st)[:2] == ("200", 0), "stream 1: %r" % (status_of(st),))
    # a later stream below the reset id still opens (the reset opened nothing)
    r.grpc_headers(3, ECHO)
    r.data(3, req_bytes(text="b"), end_stream=True)
    st = r.response(3)
    expect(status_of(st)[:2] == ("200", 0), "stream 3: %r" % (status_of(st),))
    expect(r.goaway is None, "GOAWAY %r" % (r.goaway,))
    r.close()


def garbage_preface(h, tls):
    r = RawH2(h, tls, preface=False)
    r.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 64)
    expect(r.closed_within(5), "connection closed after a bad preface")


def drop_mid_message(h, tls):
    ch = h.channel()
    before = cl.stats(ch).cancels
    r = RawH2(h, tls)
    r.grpc_headers(1, cl.SVC + "Collect")
    r.data(1, req_bytes(text="x" * 1000)[:500])
    time.sleep(0.1)
    r.sock.close()
    cl.wait_for(lambda: cl.stats(ch).cancels == before + 1, "on_cancel after the connection dropped")
    ch.close()


def tls_only_cases(h):
    def no_alpn():
        # A client without ALPN: its first bytes decide (here the HTTP/2
        # preface), as on plaintext listeners.
        r = RawH2(h, tls=True, alpn=None)
        r.grpc_headers(1, ECHO, end_stream=False)
        r.data(1, req_bytes(text="hi"), end_stream=True)
        st = r.response(1)
        r.close()
        got = status_of(st)
        expect(got[0] == "200" and got[1] == 0, "a client without ALPN speaking h2 got %r" % (got,))
    results.run("tls client without ALPN sniffed as h2", lambda: (no_alpn(), still_serves(h)))

    def http11_alpn():
        # ALPN http/1.1 is HTTP/1.1: the h2 preface is not a request there
        r = RawH2(h, tls=True, alpn=("http/1.1",), settings_ack=False)
        expect(r.closed_within(5), "h2 frames on an http/1.1 connection end it")
    results.run("tls http/1.1 client sending h2 frames is closed",
                lambda: (http11_alpn(), still_serves(h)))

    def stalled_handshake():
        s = socket.create_connection(("127.0.0.1", h.port))
        s.sendall(b"\x16\x03\x01\x00\x10")  # a ClientHello record header, then nothing
        s.settimeout(10)
        t = time.time()
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            data = b""
        took = time.time() - t
        s.close()
        expect(data == b"" and 1.0 < took < 8, "closed after %.1fs (timeout 1.5s)" % took)
    results.run("tls handshake never finished: closed at the timeout",
                lambda: (stalled_handshake(), still_serves(h)))


results.run("decompression bombs: RESOURCE_EXHAUSTED, peak RSS grows < 8 MiB", bomb_rss)

with rpchost_test.Host(plugins=["testsvc"], config=CONFIG) as h:
    hostile_cases(h, tls=True)
    tls_only_cases(h)

with rpchost_test.Host(plugins=["testsvc"], plaintext=True, config=CONFIG) as h:
    hostile_cases(h, tls=False)

    def silent_client():
        s = socket.create_connection(("127.0.0.1", h.port))
        s.settimeout(10)
        t = time.time()
        try:
            data = s.recv(100)  # our SETTINGS arrive, then the close
            while data:
                data = s.recv(100)
        except (ConnectionResetError, socket.timeout):
            pass
        took = time.time() - t
        s.close()
        expect(1.0 < took < 8, "closed after %.1fs (timeout 1.5s)" % took)
    results.run("h2c client that never sends the preface: closed at the timeout",
                lambda: (silent_client(), still_serves(h)))
results.finish()
