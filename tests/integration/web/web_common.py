"""Shared parts of the web protocol tests: a host with rides, interop and
authlog (a known bearer token), the Rides gateway rules, curl and raw
HTTP/1.1 helpers, and gRPC-Web / Connect envelope parsing."""
import hashlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

RIDES_DIR = os.path.join(rpchost_test.SOURCE_DIR, "plugins", "rides")
rides_pb2 = rpchost_test.proto_module("rides.proto", [RIDES_DIR])
messages = rpchost_test.proto_module("grpc/testing/messages.proto")

TOKEN = "web-test-token"
AUTH = "authorization: Bearer " + TOKEN
SVC = "/grpc.testing.TestService/"
TIMEOUT = 15  # every request is bounded in time

# The original project's request (../shared/origin/README.md).
START_JSON = ('{"car_id": 7, "driver_id": "Bond", "passenger_ids": ["M", "Q"], "type": "POOL", '
              '"location": {"lat": 51.4871871, "lng": -0.1266743}, '
              '"time": "2022-02-20T15:08:07.915156117+00:00"}')


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def host(tmp_config="", plaintext=False, workers=1, port=None):
    """A host serving rides + interop behind authlog, with the Rides
    gateway rules of scripts/dev.ini."""
    tokens = os.path.join(rpchost_test.tempfile.mkdtemp(prefix="rpchost-web-"), "tokens")
    with open(tokens, "w") as f:
        f.write("%s dev *\n" % hashlib.sha256(TOKEN.encode()).hexdigest())
    config = "\n".join([
        "[rpchost]",
        "interceptors = authlog.auth, authlog.log",
        tmp_config,
        "",
        "[plugin.authlog]",
        "tokens_file = " + tokens,
        "log_format = text",
        "exempt = /grpc.testing.TestService/EmptyCall",
        "",
        "[plugin.rides]",
        "db = rides.db",
        "http_rule.start = POST /start Rides.Start body=*",
        "http_rule.track = POST /track Rides.Track body=*",
        "http_rule.car = POST /v1/cars/{car_id}:start Rides.Start body=location",
        "http_rule.driver = GET /v1/{driver_id=drivers/**} Rides.Start",
        "",
        "[plugin.interop]",
        "http_rule.unary = GET /v1/unary/{response_size} grpc.testing.TestService.UnaryCall"
        " response_body=payload",
        "http_rule.stream = POST /v1/stream grpc.testing.TestService.StreamingOutputCall body=*",

        "",
    ])
    return rpchost_test.Host(plugins=("authlog", "rides", "interop"), config=config,
                             plaintext=plaintext, workers=workers, port=port)


def curl(h, path, *args, http="1.1", data=None, scheme=None):
    """Runs curl; returns (http status, headers dict (lowercase), body bytes)."""
    scheme = scheme or ("http" if h.plaintext else "https")
    cmd = ["curl", "-sS", "--max-time", str(TIMEOUT), "-D", "-", "-o", "-",
           "--http" + http, "--cacert", rpchost_test.CA]
    if http == "2" and scheme == "http":
        cmd[-3] = "--http2-prior-knowledge"
    cmd += list(args)
    if data is not None:
        cmd += ["--data-binary", "@-"]
    cmd.append("%s://localhost:%d%s" % (scheme, h.port, path))
    out = subprocess.run(cmd, input=data if isinstance(data, (bytes, type(None))) else data.encode(),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT + 5)
    expect(out.returncode == 0, "curl %s: exit %d: %s" % (path, out.returncode, out.stderr.decode()))
    raw = out.stdout
    # skip interim 100 Continue blocks
    while True:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        if status != 100:
            break
        raw = rest
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def frames(body):
    """gRPC-Web / Connect envelopes: [(flags, payload)]."""
    out, off = [], 0
    while off < len(body):
        if len(body) - off < 5:
            raise AssertionError("truncated envelope at %d in %r" % (off, body[:200]))
        flags, n = struct.unpack(">BI", body[off:off + 5])
        if len(body) - off - 5 < n:
            raise AssertionError("truncated envelope payload at %d in %r" % (off, body[:200]))
        out.append((flags, body[off + 5:off + 5 + n]))
        off += 5 + n
    return out


def envelope(payload, flags=0):
    return struct.pack(">BI", flags, len(payload)) + payload


def grpc_web_trailers(payload):
    out = {}
    for ln in payload.decode().split("\r\n"):
        if ln:
            k, _, v = ln.partition(":")
            out[k.strip().lower()] = v.strip()
    return out


def wait_for(cond, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    expect(cond(), "timed out waiting for " + what)


class Raw:
    """A raw HTTP/1.1 client socket (TLS unless the host is plaintext)."""

    def __init__(self, h, alpn=("http/1.1",)):
        s = socket.create_connection(("127.0.0.1", h.port), timeout=TIMEOUT)
        if not h.plaintext:
            ctx = ssl.create_default_context(cafile=rpchost_test.CA)
            if alpn:
                ctx.set_alpn_protocols(list(alpn))
            s = ctx.wrap_socket(s, server_hostname="localhost")
        self.sock = s
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self, deadline):
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            d = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise AssertionError("no answer in time; have %r" % self.buf[:200])
        except (ConnectionResetError, ssl.SSLError, OSError):
            d = b""
        if not d:
            raise EOFError()
        self.buf += d

    def response(self, timeout=TIMEOUT):
        """One response: (status, headers, body); handles Content-Length
        and chunked bodies."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers[k.strip().lower()] = v.strip()
        body = b""
        if headers.get("transfer-encoding") == "chunked":
            while True:
                while b"\r\n" not in self.buf:
                    self._fill(deadline)
                size_line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(size_line, 16)
                while len(self.buf) < size + 2:
                    self._fill(deadline)
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(headers.get("content-length", "0"))
            while len(self.buf) < n:
                self._fill(deadline)
            body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed_within(self, timeout):
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except EOFError:
            return True
        except AssertionError:
            return False
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def post(path, body, ctype="application/json", extra=""):
    body = body if isinstance(body, bytes) else body.encode()
    return (("POST %s HTTP/1.1\r\nHost: localhost\r\nContent-Type: %s\r\n%s"
             "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n")
            % (path, ctype, extra, TOKEN, len(body))).encode() + body
