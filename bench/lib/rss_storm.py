"""Resident memory of an rpchost after a storm of TLS connections.

Starts rpchost (TLS, the interop plugin, 2 workers) on a free loopback
port, takes its idle RSS once a few warm-up connections came and went
(one-time allocations: OpenSSL's tables, each worker's malloc arena), then
opens N TLS connections at once (handshake, ALPN h2, HTTP/2 preface and
SETTINGS exchanged: connections a client set up and has not used), closes
them all, and follows VmRSS until it settles. Prints the figures.

    rss_storm.py --rpchost BIN --plugins DIR --cert PEM --key PEM [--conns N]
                 [--settle SECONDS]

Used by bench/rss-storm and by the test tests/integration/core/test_rss_storm.py.
"""
import argparse
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import idle_conns  # noqa: E402

MIB = 1024


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for pid %d" % pid)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def open_conns(port, n, timeout=300):
    """n TLS + HTTP/2 connections, all open at once when this returns."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # loopback, dev certificate; not what is measured
    ctx.set_alpn_protocols(["h2"])
    deadline = time.monotonic() + timeout
    conns = []
    try:
        for i in range(n):
            raw = socket.create_connection(("127.0.0.1", port), timeout=30)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            conns.append(s)
            if s.selected_alpn_protocol() != "h2":
                raise RuntimeError("connection %d: server did not select ALPN h2" % i)
            s.sendall(idle_conns.PREFACE + idle_conns.SETTINGS)
            idle_conns.read_server_settings(s, deadline)
            s.sendall(idle_conns.SETTINGS_ACK)
    except BaseException:
        close_conns(conns)
        raise
    return conns


def close_conns(conns):
    for s in conns:
        try:
            s.close()
        except OSError:
            pass


def conns_of(pid, port):
    """The host's established TCP connections on port (from /proc/net)."""
    n = 0
    for name in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, name)) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "01" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        n += 1
        except FileNotFoundError:
            pass
    return n


class Host:
    def __init__(self, rpchost, plugins, cert, key, workers=2):
        self.tmp = tempfile.mkdtemp(prefix="rpchost-rss-")
        pdir = os.path.join(self.tmp, "plugins")
        os.makedirs(pdir)
        shutil.copyfile(os.path.join(plugins, "interop.so"), os.path.join(pdir, "interop.so"))
        self.port = free_port()
        self.log_path = os.path.join(self.tmp, "rpchost.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % self.port,
             "--cert", cert, "--key", key, "--workers", str(workers)],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.tmp)
        deadline = time.monotonic() + 30
        while "serving on " not in self.logs():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("rpchost did not start:\n" + self.logs())
            time.sleep(0.02)

    def logs(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    @property
    def serving_pid(self):
        """rpchost serves from a forked child of the started (supervising)
        process: that one holds the connections and the memory."""
        pid = self.proc.pid
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = f.read().split()
        return int(kids[0]) if kids else pid

    def rss(self):
        return rss_kib(self.serving_pid)

    def wait_closed(self, timeout=60):
        """Until the host holds no connection on its port (it saw every close)."""
        deadline = time.monotonic() + timeout
        while conns_of(self.serving_pid, self.port):
            if time.monotonic() > deadline:
                raise RuntimeError("host still holds connections %ss after the close" % timeout)
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        code = self.proc.returncode
        shutil.rmtree(self.tmp, ignore_errors=True)
        return code


def storm(host, n):
    """Opens n connections at once, closes them; returns the RSS (KiB)
    with all of them open."""
    conns = open_conns(host.port, n)
    peak = host.rss()
    close_conns(conns)
    host.wait_closed()
    return peak


def warm_up(host, rounds=3, n=20):
    for _ in range(rounds):
        storm(host, n)


def settle(host, target_kib, timeout):
    """Follows RSS until it is at most target_kib or timeout passes; returns
    (rss, seconds after the close)."""
    t0 = time.monotonic()
    while True:
        r = host.rss()
        if r <= target_kib or time.monotonic() - t0 > timeout:
            return r, time.monotonic() - t0
        time.sleep(0.05)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rpchost", required=True)
    ap.add_argument("--plugins", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=10.0)
    a = ap.parse_args()
    h = Host(a.rpchost, a.plugins, a.cert, a.key)
    try:
        start = h.rss()
        warm_up(h)
        idle = h.rss()
        print("rpchost idle RSS: %.1f MiB at start, %.1f MiB after warm-up connections"
              % (start / MIB, idle / MIB), flush=True)
        for i in range(a.rounds):
            peak = storm(h, a.conns)
            closed = h.rss()
            after, secs = settle(h, idle + 2 * MIB, a.settle)
            print("storm %d: %d TLS connections: %.1f MiB with all open, %.1f MiB once the "
                  "host closed them, %.1f MiB %.1f s later (idle + %.1f MiB)"
                  % (i + 1, a.conns, peak / MIB, closed / MIB, after / MIB, secs,
                     (after - idle) / MIB), flush=True)
    finally:
        h.stop()


if __name__ == "__main__":
    main()
