"""Shared pieces of the backpressure tests: the flowtest plugin's protobuf
module, RSS readers, and raw HTTP/2 helpers built on core_lib.RawH2."""
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "core"))
import rpchost_test as rt  # noqa: E402
import core_lib as cl  # noqa: E402
from core_lib import RawH2  # noqa: E402

FLOWTEST_DIR = os.path.join(rt.SOURCE_DIR, "tests/plugins/flowtest")
ft = rt.proto_module("flowtest.proto", extra_paths=[FLOWTEST_DIR])
FT = "/rpchost.flowtest.FlowTest/"
MIB = 1 << 20
KIB = 1 << 10


def sanitized_build():
    """ASan keeps freed memory in its quarantine: RSS says little there."""
    try:
        with open(os.path.join(rt.BUILD_DIR, "CMakeCache.txt")) as f:
            return "RPCHOST_SANITIZE:BOOL=ON" in f.read()
    except OSError:
        return False


def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def rss_kib(pid):
    return proc_status_kib(pid, "VmRSS")


def hwm_kib(pid):
    return proc_status_kib(pid, "VmHWM")


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def ctl(channel, method, timeout=20):
    fn = channel.unary_unary(FT + method, request_serializer=ft.Ctl.SerializeToString,
                             response_deserializer=ft.Ctl.FromString)
    return fn(ft.Ctl(), timeout=timeout)


def wait_paused(channel, n, timeout=20):
    deadline = time.time() + timeout
    got = -1
    while time.time() < deadline:
        got = ctl(channel, "Paused").calls
        if got >= n:
            return got
        time.sleep(0.05)
    raise AssertionError("%d of %d Sink calls paused" % (got, n))


def chunk_body(data):
    """One gRPC message: a Chunk carrying data."""
    return cl.grpc_body(ft.Chunk(data=data).SerializeToString())


class CountingH2(RawH2):
    """RawH2 that counts DATA instead of keeping it (for streams of hundreds
    of MiB), and can hold back WINDOW_UPDATEs (a client that does not read)."""

    def __init__(self, host, tls=False, reading=True):
        self.reading = reading
        self.data_bytes = {}
        super().__init__(host, tls)

    def frame(self, ftype, flags, stream, payload):
        # pump() leaves a short receive timeout on the socket: send with a
        # long one, so a full socket buffer never drops a frame.
        self.sock.settimeout(cl.TIMEOUT)
        super().frame(ftype, flags, stream, payload)
        if self.send_failed:
            raise AssertionError("sending to the host failed")

    def _handle(self, ftype, flags, sid, payload):
        if ftype != cl.DATA:
            return super()._handle(ftype, flags, sid, payload)
        st = self._stream(sid)
        self.data_bytes[sid] = self.data_bytes.get(sid, 0) + len(payload)
        if len(st["data"]) < 64 * KIB:
            st["data"] += payload[:64 * KIB]
        if payload and self.reading:
            inc = struct.pack(">I", len(payload))
            self.frame(cl.WINDOW_UPDATE, 0, 0, inc)
            self.frame(cl.WINDOW_UPDATE, 0, sid, inc)
        if flags & cl.END_STREAM:
            st["ended"] = True

    def window(self, sid):
        return min(self.conn_window, self.windows.get(sid, self.initial_window))

    def send_within_windows(self, todo, idle=2.0, limit=60):
        """todo: {sid: bytearray of DATA still to send}. Sends round-robin,
        never past the server's windows, until everything is sent or no
        window opened for `idle` seconds. Returns bytes sent per stream."""
        sent = {sid: 0 for sid in todo}
        last_progress = time.time()
        end = time.time() + limit
        while time.time() < end:
            progress = False
            for sid, rest in todo.items():
                if not rest or self._stream(sid)["ended"]:
                    continue
                n = min(16 * KIB, self.window(sid), len(rest))
                if n <= 0:
                    continue
                self.data(sid, bytes(rest[:n]))
                del rest[:n]
                self.conn_window -= n
                self.windows[sid] = self.windows.get(sid, self.initial_window) - n
                sent[sid] += n
                progress = True
            if all(not rest for rest in todo.values()):
                break
            if progress:
                last_progress = time.time()
                self.pump(0.001)
            else:
                self.pump(0.1)
                if time.time() - last_progress > idle:
                    break
        return sent
