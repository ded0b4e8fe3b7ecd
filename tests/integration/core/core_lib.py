"""Helpers for the transport's integration tests: the testsvc plugin's
protobuf modules and callables, and RawH2, a hand-made HTTP/2 client (frames
written by hand, HPACK from Debian's python3-hpack) that can misbehave in
ways a real gRPC client never would."""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

import hpack  # noqa: E402

TESTSVC_DIR = os.path.join(rpchost_test.SOURCE_DIR, "tests/plugins/testsvc")
pb = rpchost_test.proto_module("testsvc.proto", extra_paths=[TESTSVC_DIR])
SVC = "/rpchost.testsvc.TestSvc/"
TIMEOUT = 20


def echo(ch):
    return ch.unary_unary(SVC + "Echo", request_serializer=pb.Req.SerializeToString,
                          response_deserializer=pb.Resp.FromString)


def hang(ch):
    return ch.unary_unary(SVC + "Hang", request_serializer=pb.Req.SerializeToString,
                          response_deserializer=pb.Resp.FromString)


def stats(ch):
    fn = ch.unary_unary(SVC + "GetStats", request_serializer=pb.Req.SerializeToString,
                        response_deserializer=pb.Stats.FromString)
    return fn(pb.Req(), timeout=TIMEOUT)


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def wait_for(pred, what, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


# --- a hand-made HTTP/2 client ------------------------------------------------

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 0xB
REFUSED_STREAM = 0x7


class Closed(Exception):
    pass


def grpc_body(payload, compressed=False):
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


class RawH2:
    """One HTTP/2 connection to the host (h2c, or TLS with ALPN h2)."""

    def __init__(self, host, tls=False, alpn=("h2",), preface=True, settings_ack=True):
        self.sock = socket.create_connection(("127.0.0.1", host.port), timeout=TIMEOUT)
        if tls:
            ctx = ssl.create_default_context(cafile=rpchost_test.CA)
            if alpn:
                ctx.set_alpn_protocols(list(alpn))
            self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.enc = hpack.Encoder()
        self.dec = hpack.Decoder()
        self.dec.max_header_list_size = 1 << 20
        self.buf = b""
        self.streams = {}  # id -> {"headers": [...], "data": b"", "rst": None, "ended": bool}
        self.goaway = None
        self.goaways = []
        self.pings = []
        self.settings_ack = settings_ack
        self.settings_seen = False  # the server's SETTINGS arrived (and was acked)
        self.send_failed = False
        # the server's receive windows, for data_flow()
        self.conn_window = 65535
        self.initial_window = 65535
        self.windows = {}
        self._hdr_stream = None
        self._hdr_block = b""
        self._hdr_flags = 0
        if preface:
            self.sock.sendall(PREFACE)
            self.frame(SETTINGS, 0, 0, b"")

    def frame(self, ftype, flags, stream, payload):
        """Sends one frame; a connection the server already closed is not
        an error here (the test looks at what the server said)."""
        hdr = struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream)
        try:
            self.sock.sendall(hdr + payload)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.send_failed = True

    def headers(self, stream, fields, end_stream=False, max_frame=16384):
        block = self.enc.encode(fields)
        first, rest = block[:max_frame], block[max_frame:]
        flags = (END_STREAM if end_stream else 0) | (0 if rest else END_HEADERS)
        self.frame(HEADERS, flags, stream, first)
        while rest:
            chunk, rest = rest[:max_frame], rest[max_frame:]
            self.frame(CONTINUATION, 0 if rest else END_HEADERS, stream, chunk)

    def grpc_headers(self, stream, path, extra=(), end_stream=False, method="POST",
                     content_type="application/grpc"):
        fields = [(":method", method), (":scheme", "http"), (":path", path),
                  (":authority", "localhost")]
        if content_type is not None:
            fields.append(("content-type", content_type))
        fields += [("te", "trailers")] + list(extra)
        self.headers(stream, fields, end_stream)

    def data(self, stream, payload, end_stream=False):
        self.frame(DATA, END_STREAM if end_stream else 0, stream, payload)

    def data_flow(self, stream, payload, end_stream=False, timeout=TIMEOUT):
        """Sends payload in frames of at most 16 KiB, within the server's
        flow-control windows (waiting for its WINDOW_UPDATEs)."""
        deadline = time.time() + timeout
        off = 0
        while off < len(payload) or (end_stream and off == len(payload) == 0):
            if self._stream(stream)["ended"]:
                break  # the server answered (or reset) already
            win = min(self.conn_window, self.windows.get(stream, self.initial_window))
            if win <= 0:
                if time.time() > deadline:
                    raise AssertionError("flow-control window stayed closed")
                self.pump(0.05)
                continue
            n = min(16384, win, len(payload) - off)
            last = off + n == len(payload)
            self.frame(DATA, END_STREAM if (end_stream and last) else 0, stream,
                       payload[off:off + n])
            self.conn_window -= n
            self.windows[stream] = self.windows.get(stream, self.initial_window) - n
            off += n
            if n == 0:
                break

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            raise Closed()
        self.buf += chunk
        return True

    def _stream(self, sid):
        return self.streams.setdefault(sid, {"headers": [], "data": b"", "rst": None,
                                             "ended": False})

    def _handle(self, ftype, flags, sid, payload):
        if ftype == SETTINGS and not flags & ACK:
            for i in range(0, len(payload) - 5, 6):
                ident, value = struct.unpack(">HI", payload[i:i + 6])
                if ident == 0x4:  # INITIAL_WINDOW_SIZE
                    for k in self.windows:
                        self.windows[k] += value - self.initial_window
                    self.initial_window = value
            if self.settings_ack:
                self.frame(SETTINGS, ACK, 0, b"")
            self.settings_seen = True
        elif ftype == WINDOW_UPDATE:
            inc = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
            if sid == 0:
                self.conn_window += inc
            else:
                self.windows[sid] = self.windows.get(sid, self.initial_window) + inc
        elif ftype == PING and flags & ACK:
            self.pings.append(payload)
        elif ftype == PING:
            self.frame(PING, ACK, 0, payload)
        elif ftype == GOAWAY:
            last, code = struct.unpack(">II", payload[:8])
            self.goaway = (last & 0x7FFFFFFF, code, payload[8:])
            self.goaways.append(self.goaway)
        elif ftype == RST_STREAM:
            st = self._stream(sid)
            st["rst"] = struct.unpack(">I", payload)[0]
            st["ended"] = True
        elif ftype in (HEADERS, CONTINUATION):
            if ftype == HEADERS:
                self._hdr_stream, self._hdr_block, self._hdr_flags = sid, b"", flags
                if flags & 0x8:  # PADDED
                    pad = payload[0]
                    payload = payload[1:len(payload) - pad]
                if flags & 0x20:  # PRIORITY
                    payload = payload[5:]
            self._hdr_block += payload
            if flags & END_HEADERS:
                st = self._stream(self._hdr_stream)
                st["headers"].append(dict(self.dec.decode(self._hdr_block, raw=False)))
                if self._hdr_flags & END_STREAM:
                    st["ended"] = True
        elif ftype == DATA:
            st = self._stream(sid)
            st["data"] += payload
            if payload:  # keep the server's windows open
                inc = struct.pack(">I", len(payload))
                self.frame(WINDOW_UPDATE, 0, 0, inc)
                self.frame(WINDOW_UPDATE, 0, sid, inc)
            if flags & END_STREAM:
                st["ended"] = True

    def pump(self, timeout=0.2):
        """Reads and handles what arrives within timeout. Raises Closed at EOF."""
        got = self._recv(timeout)
        while len(self.buf) >= 9:
            length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
            if len(self.buf) < 9 + length:
                break
            ftype, flags, sid = struct.unpack(">BBI", self.buf[3:9])
            payload = self.buf[9:9 + length]
            self.buf = self.buf[9 + length:]
            self._handle(ftype, flags, sid & 0x7FFFFFFF, payload)
        return got

    def until(self, pred, what, timeout=TIMEOUT):
        deadline = time.time() + timeout
        while not pred():
            if time.time() > deadline:
                raise AssertionError("timed out waiting for " + what)
            self.pump(0.1)

    def response(self, sid, timeout=TIMEOUT):
        """Waits for the stream to end; returns its record."""
        self.until(lambda: self._stream(sid)["ended"], "stream %d to end" % sid, timeout)
        return self._stream(sid)

    def closed_within(self, timeout):
        """True if the server closes the connection within timeout s."""
        deadline = time.time() + timeout
        try:
            while time.time() < deadline:
                self.pump(0.1)
        except Closed:
            return True
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def status_of(st):
    """(http status, grpc-status, grpc-message) from a stream record."""
    allh = {}
    for h in st["headers"]:
        allh.update(h)
    gs = allh.get("grpc-status")
    return (st["headers"][0].get(":status") if st["headers"] else None,
            int(gs) if gs is not None else None, allh.get("grpc-message"))
