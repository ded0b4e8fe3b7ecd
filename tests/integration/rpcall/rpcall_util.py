"""Helpers for the rpcall integration tests: run rpcall as a user would,
start the Python grpcio Rides server, and hold a port open that never
answers (for timeouts)."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))
import rpchost_test as rt  # noqa: E402

RPCALL = rt.RPCALL_BIN
RIDES_PROTO_DIR = os.path.join(rt.SOURCE_DIR, "plugins/rides")
ORIGINAL_JSON = ('{"car_id": 7, "driver_id": "Bond", "passenger_ids": ["M", "Q"], '
                 '"type": "POOL", "location": {"lat": 51.4871871, "lng": -0.1266743}, '
                 '"time": "2022-02-20T15:08:07.915156117+00:00"}')


class Result:
    def __init__(self, args, proc, out, err):
        self.args = args
        self.code = proc.returncode
        self.out = out
        self.err = err

    def __repr__(self):
        return "rpcall %s -> exit %s\nstdout: %s\nstderr: %s" % (
            " ".join(self.args), self.code, self.out, self.err)

    def json(self):
        return json.loads(self.out)

    def lines(self):
        return [json.loads(l) for l in self.out.splitlines() if l.strip()]


def rpcall(*args, input=None, timeout=60):
    args = [str(a) for a in args]
    p = subprocess.run([RPCALL] + args, input=input, capture_output=True, text=True,
                       timeout=timeout)
    return Result(args, p, p.stdout, p.stderr)


def expect(r, code, err_part=None, out_part=None):
    assert r.code == code, "expected exit %d: %r" % (code, r)
    if err_part is not None:
        assert err_part in r.err, "expected %r on stderr: %r" % (err_part, r)
    if out_part is not None:
        assert out_part in r.out, "expected %r on stdout: %r" % (out_part, r)
    return r


def one_line_error(r):
    """Connection and TLS failures are one line on stderr."""
    lines = [l for l in r.err.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line on stderr: %r" % r
    return lines[0]


_protoset = None


def rides_protoset():
    """protoc --descriptor_set_out --include_imports of rides.proto."""
    global _protoset
    if _protoset is None:
        out = os.path.join(tempfile.gettempdir(), "rpcall-test-%d-rides.protoset" % os.getpid())
        subprocess.run(["protoc", "-I", RIDES_PROTO_DIR, "-I", "/usr/include",
                        "--descriptor_set_out=" + out, "--include_imports", "rides.proto"],
                       check=True)
        _protoset = out
    return _protoset


class PyServer:
    """The Python grpcio Rides server (rides_server.py) on a free port."""

    def __init__(self, tls=False, reflection=False):
        self.port = rt.free_port()
        args = ["/usr/bin/python3", os.path.join(HERE, "rides_server.py"), str(self.port)]
        if tls:
            args.append("--tls")
        if reflection:
            args += ["--reflection-v1alpha", rides_protoset()]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError("rides_server.py did not start: %s %s" %
                               (line, self.proc.stderr.read()))
        self.address = "localhost:%d" % self.port

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SilentPort:
    """A listening socket that never accepts nor answers: TCP connects (the
    kernel completes the handshake) but TLS and HTTP/2 get no reply."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.sock.close()


class TlsHttp1Port:
    """A TLS server with the dev certificate that offers only http/1.1 in
    ALPN (as a web server would): the handshake succeeds, h2 is not agreed."""

    def __init__(self):
        import ssl
        import threading
        rt.ensure_certs()
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(rt.SERVER_CERT, rt.SERVER_KEY)
        self.ctx.set_alpn_protocols(["http/1.1"])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.address = "localhost:%d" % self.sock.getsockname()[1]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            try:
                c.settimeout(5)
                t = self.ctx.wrap_socket(c, server_side=True)
                t.recv(1)  # wait for the client to go away
                t.close()
            except OSError:
                c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join(5)
        self.sock.close()


def cleanup():
    if _protoset and os.path.exists(_protoset):
        os.remove(_protoset)


def refused_address():
    """An address where nothing listens."""
    return "127.0.0.1:%d" % rt.free_port()


def stream_lines(args, lines, gap=0.05, timeout=60):
    """Runs rpcall with -d @- and writes lines to its stdin one at a time."""
    p = subprocess.Popen([RPCALL] + [str(a) for a in args], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for l in lines:
            p.stdin.write(l + "\n")
            p.stdin.flush()
            time.sleep(gap)
        p.stdin.close()
    except BrokenPipeError:
        pass  # rpcall stopped reading (it failed the stream): see its exit
    p.stdin = None
    out, err = p.communicate(timeout=timeout)
    return Result([str(a) for a in args], p, out, err)


def track_lines(n=7):
    """The original client's 7 location events (car 7, +0.0001 lat,
    -0.0001 lng, +17.3 s each)."""
    lines = []
    lat, lng, t = 51.4871871, -0.1266743, 1645369687.915
    for _ in range(n):
        secs = int(t)
        nanos = int(round((t - secs) * 1e9))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + ".%09dZ" % nanos
        lines.append(json.dumps({"car_id": 7, "time": stamp,
                                 "location": {"lat": round(lat, 7), "lng": round(lng, 7)}}))
        lat += 0.0001
        lng -= 0.0001
        t += 17.3
    return lines
