"""Helpers for the crash-containment tests: the Crashy test plugin (each
call faults the way it names), interop load from several grpcio clients
that counts every failure, new connections opened throughout, and the
supervising process's descriptors and memory from /proc."""
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

crashy_pb2 = rt.proto_module("crashy.proto",
                             extra_paths=[os.path.join(rt.SOURCE_DIR, "tests/plugins/crashy")])
msgs = rt.proto_module("grpc/testing/messages.proto")
health_pb2 = rt.proto_module("grpc/health/v1/health.proto")
admin_pb2 = rt.proto_module("rpchost/admin/v1/admin.proto")
CRASH = "/rpchost.test.Crashy/Crash"
UNARY = "/grpc.testing.TestService/UnaryCall"
SERVICE = "rpchost.test.Crashy"


def install(host, plugin, dest="crashy.so"):
    """Renames a copy of a test plugin into the plugin directory."""
    src = os.path.join(rt.TEST_PLUGIN_DIR, plugin + ".so")
    tmp = os.path.join(host.tmp, ".incoming-" + dest)
    shutil.copyfile(src, tmp)
    os.rename(tmp, os.path.join(host.plugin_dir, dest))


def crash(ch, how, timeout=10):
    """Calls Crash(how); returns (code, details or version)."""
    try:
        r = rt.unary(ch, CRASH, crashy_pb2.CrashRequest(how=how), crashy_pb2.CrashReply,
                     timeout=timeout)
        return grpc.StatusCode.OK, r.version
    except grpc.RpcError as e:
        return e.code(), e.details()


def wait_until(what, fn, timeout=15, host=None):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError("%s: not within %ss (last: %r)%s"
                         % (what, timeout, last,
                            "; log:\n" + host.logs()[-5000:] if host else ""))


def wait_ok(ch, want_version=None, timeout=15):
    """Waits until Crash(ok) answers OK (with want_version if given)."""
    def probe():
        code, v = crash(ch, "ok", timeout=2)
        return v if code == grpc.StatusCode.OK and (want_version in (None, v)) else None
    return wait_until("Crashy answers OK" + (" with %s" % want_version if want_version else ""),
                      probe, timeout)


def crash_lines(host):
    return re.findall(r"serving process crashed: .*", host.logs())


def wait_crash_lines(host, n, timeout=15):
    return wait_until("%d crash lines" % n,
                      lambda: (lambda c: c if len(c) >= n else None)(crash_lines(host)), timeout)


def health(ch, service):
    stub = ch.unary_unary("/grpc.health.v1.Health/Check",
                          request_serializer=lambda m: m.SerializeToString(),
                          response_deserializer=health_pb2.HealthCheckResponse.FromString)
    return stub(health_pb2.HealthCheckRequest(service=service), timeout=5).status


def list_plugins(admin_ch):
    return rt.unary(admin_ch, "/rpchost.admin.v1.Admin/ListPlugins",
                    admin_pb2.ListPluginsRequest(), admin_pb2.ListPluginsResponse,
                    timeout=10).plugins


def admin_channel(sock):
    return grpc.insecure_channel("unix:" + sock)


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def proc_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def serving_pid(pid):
    """The serving process: the supervisor's only child."""
    with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
        kids = f.read().split()
    return int(kids[0]) if kids else None


class InteropLoad:
    """n client threads, each with its own channel (and so its own
    connection), calling interop UnaryCall without pause; plus one thread
    that opens a new channel for every call (new connections throughout).
    Every call is counted; failures are kept with their status. After a
    failure a client waits 10 ms before its next call, as a retrying client
    would: without it, a channel in reconnect backoff fails calls at once
    and a busy loop would count thousands of failures for one outage."""

    def __init__(self, host, n=4):
        self.host = host
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.failures = []
        self.new_conn_ok = 0
        self.new_conn_failures = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]
        self.threads.append(threading.Thread(target=self._new_conns, daemon=True))

    def _call(self, ch):
        req = msgs.SimpleRequest(response_size=16)
        r = rt.unary(ch, UNARY, req, msgs.SimpleResponse, timeout=10)
        if len(r.payload.body) != 16:
            raise AssertionError("payload of %d bytes" % len(r.payload.body))

    def _run(self):
        ch = self.host.channel()
        deadline = time.time() + 120  # bounded even if stop is never called
        while not self.stop_ev.is_set() and time.time() < deadline:
            try:
                self._call(ch)
                with self.lock:
                    self.ok += 1
            except grpc.RpcError as e:
                with self.lock:
                    self.failures.append("%s: %s" % (e.code(), e.details()))
                time.sleep(0.01)
        ch.close()

    def _new_conns(self):
        deadline = time.time() + 120
        while not self.stop_ev.is_set() and time.time() < deadline:
            ch = self.host.channel()
            try:
                self._call(ch)
                with self.lock:
                    self.new_conn_ok += 1
            except grpc.RpcError as e:
                with self.lock:
                    self.new_conn_failures.append("%s: %s" % (e.code(), e.details()))
                time.sleep(0.01)
            ch.close()

    def total(self):
        with self.lock:
            return self.ok + len(self.failures)

    def wait_calls(self, n, timeout=60):
        wait_until("%d interop calls" % n, lambda: self.total() >= n, timeout)

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

    def report(self):
        return ("%d interop calls OK, %d failed %s; %d new connections OK, %d failed %s"
                % (self.ok, len(self.failures), self.failures[:3], self.new_conn_ok,
                   len(self.new_conn_failures), self.new_conn_failures[:3]))
