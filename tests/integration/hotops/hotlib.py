"""Helpers for the hot-operation tests: the Swap test service (every build
answers with its version), continuous load from several client threads that
records every failure, and waiting for log lines."""
import os
import re
import shutil
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))

import grpc  # noqa: E402
import rpchost_test as rt  # noqa: E402

SWAP_PROTO_DIR = os.path.join(rt.SOURCE_DIR, "tests/plugins/hotswap")
swap_pb2 = rt.proto_module("swap.proto", extra_paths=[SWAP_PROTO_DIR])
VERSION = "/rpchost.test.Swap/Version"
STREAM = "/rpchost.test.Swap/Stream"


def test_plugin(name):
    path = os.path.join(rt.TEST_PLUGIN_DIR, name + ".so")
    if not os.path.exists(path):
        raise FileNotFoundError("test plugin %s not built (expected %s)" % (name, path))
    return path


def install(host, plugin, dest):
    """Copies a test plugin into the host's plugin dir under dest (e.g.
    'swap.so') with a temporary name and an atomic rename; returns the
    time of the rename."""
    src = test_plugin(plugin)
    tmp = os.path.join(host.tmp, ".incoming-" + dest)
    shutil.copyfile(src, tmp)
    t = time.monotonic()
    os.rename(tmp, os.path.join(host.plugin_dir, dest))
    return t


def version(channel, timeout=30, metadata=None):
    r = rt.unary(channel, VERSION, swap_pb2.VersionRequest(), swap_pb2.VersionReply,
                 timeout=timeout, metadata=metadata)
    return r.version


def stream(channel, count, interval_ms, timeout=60):
    call = rt.stub(channel, "unary_stream", STREAM, swap_pb2.VersionReply)
    return call(swap_pb2.VersionRequest(count=count, interval_ms=interval_ms), timeout=timeout)


def wait_log(host, pattern, timeout=10, start=0):
    """Waits until the host's log (from byte offset start) matches pattern;
    returns the match."""
    return host.wait_log(pattern, timeout=timeout, start=start)


def log_count(host, pattern):
    return len(re.findall(pattern, host.logs()))


class Load:
    """n client threads, each with its own channel, calling without pause:
    even threads Swap/Version (unary), odd threads Swap/Stream (3 replies)
    and, if `extra` is given, extra(channel) in turn. Every failed call is
    recorded with its status."""

    def __init__(self, host, n=8, extra=None, stream_count=3):
        self.host = host
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.versions = {}
        self.extra = extra
        self.stream_count = stream_count
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(n)]

    def _seen(self, v):
        with self.lock:
            self.ok += 1
            self.versions[v] = self.versions.get(v, 0) + 1

    def _run(self, i):
        ch = self.host.channel()
        k = 0
        deadline = time.time() + 600  # bounded even if stop is never called
        while not self.stop_ev.is_set() and time.time() < deadline:
            k += 1
            try:
                if self.extra and k % 3 == 0:
                    self.extra(ch)
                    with self.lock:
                        self.ok += 1
                elif i % 2 == 0:
                    self._seen(version(ch))
                else:
                    replies = list(stream(ch, self.stream_count, 1))
                    if len(replies) != self.stream_count:
                        raise AssertionError("stream gave %d replies" % len(replies))
                    vs = {r.version for r in replies}
                    if len(vs) != 1:
                        raise AssertionError("one stream, several versions: %s" % vs)
                    self._seen(replies[0].version)
            except grpc.RpcError as e:
                with self.lock:
                    self.failures.append("%s: %s" % (e.code(), e.details()))
            except Exception as e:  # noqa: BLE001
                with self.lock:
                    self.failures.append(repr(e))
        ch.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(60)

    def __exit__(self, *exc):
        self.stop()

    def wait_ok(self, n, timeout=60):
        """Waits until n calls succeeded (or one failed): a load that must
        show n calls waits for them instead of running for a fixed time."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if self.ok >= n or self.failures:
                    return
            time.sleep(0.02)

    def assert_clean(self, min_ok=1):
        if self.failures:
            raise AssertionError("%d failed calls (of %d), first: %s"
                                 % (len(self.failures), self.ok + len(self.failures),
                                    self.failures[:5]))
        if self.ok < min_ok:
            raise AssertionError("only %d calls made" % self.ok)
