"""examples/kv-plugin (kv.v1.KV) through a real host and grpcio clients:

- Put / Get / NOT_FOUND / bad keys; a Watch gets its response headers
  before any event (send_headers), so a client knows it is registered;
- 8 clients Put while a Watch reads: every event once, in version order,
  whichever worker each Put ran on (the host keeps a call's sends in the
  order they were made across threads);
- replace kv.so under load: 0 failed Put/Get, the data survives (the new
  build shares the old one's store) and the running Watch keeps streaming
  (the new build adopts it): every Put once, in version order, across the
  replace;
- a build with another state layout starts empty and the log says why,
  and the Watch it cannot adopt ends with UNAVAILABLE within 2 s (retire);
- removing kv.so ends a Watch at once with UNAVAILABLE;
- backpressure: a watcher that does not read is ended with
  RESOURCE_EXHAUSTED past its backlog, while the Puts and a reading
  watcher go on;
- an interceptor with state (tests/plugins/statecount counts every call)
  replaced under load: 0 failed calls and the count is exact afterwards.
"""
import os
import queue
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../lib"))

import grpc  # noqa: E402
import rpchost_test as rt  # noqa: E402

pb = rt.proto_module("kv.proto", extra_paths=[os.path.join(rt.SOURCE_DIR, "examples/kv-plugin")])
count_pb = rt.proto_module("statecount.proto",
                           extra_paths=[os.path.join(rt.SOURCE_DIR, "tests/plugins/statecount")])
SVC = "/kv.v1.KV/"
DRAIN_MS = 300


class Kv:
    def __init__(self, channel):
        self.put_ = rt.stub(channel, "unary_unary", SVC + "Put", pb.PutReply)
        self.get_ = rt.stub(channel, "unary_unary", SVC + "Get", pb.GetReply)
        self.watch_ = rt.stub(channel, "unary_stream", SVC + "Watch", pb.Event)

    def put(self, key, value, timeout=10):
        return self.put_(pb.PutRequest(key=key, value=value), timeout=timeout).version

    def get(self, key, timeout=10):
        return self.get_(pb.GetRequest(key=key), timeout=timeout)

    def watch(self, prefix, timeout=60):
        """A Watch whose response headers arrived: it is registered."""
        call = self.watch_(pb.WatchRequest(prefix=prefix), timeout=timeout)
        call.initial_metadata()
        return call


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def status_of(fn):
    try:
        fn()
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, ""


class Reader(threading.Thread):
    """Reads a Watch into a list until it ends; records how it ended."""

    def __init__(self, call):
        super().__init__(daemon=True)
        self.call = call
        self.events = []
        self.end = None
        self.end_at = None
        self.got = threading.Condition()
        self.start()

    def run(self):
        try:
            for ev in self.call:
                with self.got:
                    self.events.append(ev)
                    self.got.notify_all()
            self.end = (grpc.StatusCode.OK, "")
        except grpc.RpcError as e:
            self.end = (e.code(), e.details())
        self.end_at = time.monotonic()
        with self.got:
            self.got.notify_all()

    def wait_count(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.got:
            while len(self.events) < n and self.end is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.got.wait(left)
        return len(self.events)


def check_basics(host):
    ch = host.channel()
    kv = Kv(ch)
    v1 = kv.put(b"a", b"1")
    v2 = kv.put(b"a", b"2")
    assert v2 > v1 >= 1, (v1, v2)
    r = kv.get(b"a")
    assert (r.value, r.version) == (b"2", v2), r
    code, details = status_of(lambda: kv.get(b"nope"))
    assert code == grpc.StatusCode.NOT_FOUND and "no such key" in details, (code, details)
    code, details = status_of(lambda: kv.put(b"", b"x"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "key must be" in details, (code, details)
    code, _ = status_of(lambda: kv.put(b"k" * 5000, b"x"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, code
    # Headers before any event: initial_metadata() returns with no Put made.
    w = kv.watch(b"h/", timeout=10)
    r = Reader(w)
    v = kv.put(b"h/1", b"x")
    kv.put(b"other", b"y")  # outside the prefix
    assert r.wait_count(1, 10) == 1, r.end
    assert (r.events[0].key, r.events[0].value, r.events[0].version) == (b"h/1", b"x", v)
    w.cancel()
    ch.close()


def check_order(host):
    """8 clients Put while one Watch reads: every event once, in version order."""
    clients, per_client = 8, 400
    ch = host.channel()
    watch = Reader(Kv(ch).watch(b"o/"))
    puts = queue.Queue()
    errors = []

    def client(n):
        c = host.channel()
        kv = Kv(c)
        try:
            for i in range(per_client):
                key, val = b"o/%d/%d" % (n, i), b"v%d-%d" % (n, i)
                puts.put((kv.put(key, val), key, val))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        c.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors[:3]
    want = sorted(puts.queue)
    assert len(want) == clients * per_client
    got_n = watch.wait_count(len(want), 30)
    watch.call.cancel()
    assert got_n == len(want), "%d of %d events, end %r" % (got_n, len(want), watch.end)
    got = [(e.version, e.key, e.value) for e in watch.events]
    versions = [g[0] for g in got]
    out_of_order = sum(1 for a, b in zip(versions, versions[1:]) if b <= a)
    assert out_of_order == 0, "%d events out of order" % out_of_order
    assert got == want, "events differ from the Puts made"
    ch.close()


def check_order_h2load(host):
    """The same with h2load: 8 connections x 16 concurrent Puts each, far
    tighter than Python threads, so Puts on the watcher's own worker and on
    the other one really interleave."""
    total = 8000
    ch = host.channel()
    watch = Reader(Kv(ch).watch(b"h2/"))
    msg = pb.PutRequest(key=b"h2/k", value=b"x").SerializeToString()
    body = os.path.join(host.tmp, "put.bin")
    with open(body, "wb") as f:
        f.write(b"\0" + len(msg).to_bytes(4, "big") + msg)
    p = subprocess.run(["h2load", "-n", str(total), "-c", "8", "-m", "16",
                        "-H", "content-type: application/grpc", "-H", "te: trailers",
                        "-d", body, "http://127.0.0.1:%d/kv.v1.KV/Put" % host.port],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and ("%d succeeded" % total) in p.stdout, p.stdout + p.stderr
    got_n = watch.wait_count(total, 30)
    watch.call.cancel()
    assert got_n == total, "%d of %d events, end %r" % (got_n, total, watch.end)
    versions = [e.version for e in watch.events]
    out_of_order = sum(1 for a, b in zip(versions, versions[1:]) if b <= a)
    assert out_of_order == 0, "%d of %d events out of order" % (out_of_order, total)
    assert versions == list(range(versions[0], versions[0] + total)), "events missing or repeated"
    ch.close()


class Load:
    """Clients that Put then Get their own keys without pause and record
    every failure."""

    def __init__(self, host, clients=4):
        self.stop = threading.Event()
        self.failures = []
        self.ops = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(host, n)) for n in range(clients)]
        for t in self.threads:
            t.start()

    def run(self, host, n):
        ch = host.channel()
        kv = Kv(ch)
        i = 0
        while not self.stop.is_set():
            key, val = b"l/%d/%d" % (n, i % 50), b"%d" % i
            try:
                kv.put(key, val)
                r = kv.get(key)
                if r.value != val:
                    raise AssertionError("Get %r -> %r, want %r" % (key, r.value, val))
            except Exception as e:  # noqa: BLE001
                self.failures.append("%s: %s" % (key, e))
            with self.lock:
                self.ops += 2
            i += 1
        ch.close()

    def wait_ops(self, n, timeout):
        wait_for(lambda: self.ops >= n, timeout, "%d load operations" % n)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        return self.failures


def seed(kv, n=100):
    return {b"s/%d" % i: b"seed-%d" % i for i in range(n) if kv.put(b"s/%d" % i, b"seed-%d" % i)}


def check_replace_under_load(host):
    ch = host.channel()
    kv = Kv(ch)
    seeded = seed(kv)
    watch = Reader(kv.watch(b""))
    first = kv.put(b"first", b"")  # the Watch sees every Put from here on
    load = Load(host)
    load.wait_ops(200, 30)
    mark = len(host.logs())
    host.add_plugin("kv_next", dest_name="kv")
    wait_for(lambda: "plugin kv 1.1.0 took over the state of 1.0.0" in host.logs()[mark:], 15,
             "the replace")
    assert "and 1 running watches" in host.logs()[mark:], host.logs()[mark:]
    switched = time.monotonic()
    before = load.ops
    load.wait_ops(before + 1000, 30)  # the new build serves the load
    # Past the old build's drain timeout (DRAIN_MS): an adopted call is not
    # cancelled with the old instance's leftovers.
    wait_for(lambda: time.monotonic() > switched + 3 * DRAIN_MS / 1000.0, 10,
             "the old build's drain timeout to pass")
    failures = load.finish()
    assert not failures, "%d failed Put/Get: %s" % (len(failures), failures[:3])
    last = kv.put(b"last", b"")
    # The Watch kept streaming across the replace: every Put once, in order.
    want = last - first + 1
    got_n = watch.wait_count(want, 30)
    assert watch.end is None, "the Watch ended: %r" % (watch.end,)
    versions = [e.version for e in watch.events]
    assert got_n == want and versions == list(range(first, last + 1)), \
        "%d events for %d Puts; first gaps/repeats at %r" % (
            got_n, want, [(a, b) for a, b in zip(versions, versions[1:]) if b != a + 1][:3])
    # The data survived.
    for k, v in seeded.items():
        assert kv.get(k).value == v, k
    assert "plugin kv 1.1.0 replaced 1.0.0" in host.logs()
    # Drain: the old build has no call left to wait for.
    watch.call.cancel()
    ch.close()


def check_layout_change(host):
    ch = host.channel()
    kv = Kv(ch)
    kv.put(b"x", b"kept?")
    watch = Reader(kv.watch(b""))
    mark = len(host.logs())
    host.add_plugin("kv_newlayout", dest_name="kv")
    wait_for(lambda: "plugin kv 2.0.0 replaced" in host.logs()[mark:], 15, "the replace")
    switched = time.monotonic()
    # Not adoptable by a build that cannot read the store: ended at once.
    wait_for(lambda: watch.end is not None, 2.0, "the Watch to end after the replace")
    assert watch.end[0] == grpc.StatusCode.UNAVAILABLE and "replaced" in watch.end[1], watch.end
    assert watch.end_at - switched < 2.0
    logs = host.logs()[mark:]
    assert re.search(r"plugin kv 2\.0\.0 did not take the state of 1\.1\.0 \(state version 2",
                     logs), logs
    assert "reads layout 3: starting with an empty store" in logs, logs
    code, _ = status_of(lambda: kv.get(b"x"))
    assert code == grpc.StatusCode.NOT_FOUND, code
    ch.close()


def check_remove(host):
    ch = host.channel()
    kv = Kv(ch)
    watch = Reader(kv.watch(b""))
    os.unlink(os.path.join(host.plugin_dir, "kv.so"))
    t = time.monotonic()
    wait_for(lambda: watch.end is not None, 2.0, "the Watch to end after the removal")
    assert watch.end[0] == grpc.StatusCode.UNAVAILABLE and "removed" in watch.end[1], watch.end
    assert watch.end_at - t < 2.0
    ch.close()


def check_slow_watcher(host):
    """A watcher whose client does not read falls behind, gets its events
    queued by kv (watch_backlog = 16 here) and is then ended with
    RESOURCE_EXHAUSTED; the Puts and a watcher that reads are unaffected."""
    puts, size = 400, 65536  # 25 MiB: more than any client window holds
    slow_ch = host.channel(options=[("grpc.http2.bdp_probe", 0)])
    slow = Kv(slow_ch).watch(b"big/")  # never read until the end
    ch = host.channel()
    kv = Kv(ch)
    fast = Reader(kv.watch(b"big/"))
    versions = [kv.put(b"big/%d" % i, b"%06d" % i + b"x" * (size - 6)) for i in range(puts)]
    assert fast.wait_count(puts, 60) == puts, (len(fast.events), fast.end)
    assert [e.version for e in fast.events] == versions
    assert fast.end is None
    code, details = status_of(lambda: list(slow))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "fell more than 16 events or" in \
        details, (code, details)
    fast.call.cancel()
    slow_ch.close()
    ch.close()


def check_slow_watcher_bytes(host):
    """The backlog is bounded in bytes as well as in events: one key
    overwritten with large values (the store stays small) ends a watcher
    that does not read once it would queue more than max_bytes (1 MiB
    here), long before watch_backlog (4096) events."""
    puts, size = 400, 65536
    slow_ch = host.channel(options=[("grpc.http2.bdp_probe", 0)])
    slow = Kv(slow_ch).watch(b"big/")  # never read until the end
    ch = host.channel()
    kv = Kv(ch)
    for i in range(puts):
        kv.put(b"big/0", b"%06d" % i + b"x" * (size - 6))
    code, details = status_of(lambda: list(slow))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "or 1048576 bytes behind" in \
        details, (code, details)
    assert kv.get(b"big/0").value.startswith(b"%06d" % (puts - 1))
    slow_ch.close()
    ch.close()


def check_interceptor_state(host):
    load = Load(host)
    load.wait_ops(200, 30)
    mark = len(host.logs())
    host.add_plugin("statecount_next", dest_name="statecount")
    wait_for(lambda: "plugin statecount 1.1.0 took over the state of 1.0.0" in
             host.logs()[mark:], 15, "the replace")
    before = load.ops
    load.wait_ops(before + 1000, 30)
    failures = load.finish()
    assert not failures, "%d failed calls: %s" % (len(failures), failures[:3])
    ch = host.channel()
    total = rt.unary(ch, "/rpchost.test.CallCount/Total", count_pb.TotalRequest(),
                     count_pb.TotalReply, timeout=10).calls
    ch.close()
    # Every Put and Get of the load, and this Total call, counted once.
    assert total == load.ops + 1, "count %d, calls made %d" % (total, load.ops + 1)


def main():
    res = rt.Results()
    # Two workers: about half the Put clients share the watcher's worker,
    # whose sends would overtake those queued from the other worker.
    with rt.Host(plugins=("kv",), plaintext=True, workers=2) as host:
        res.run("8 clients Put while a Watch reads: every event once, in version order",
                check_order, host)
        res.run("h2load: 8x16 concurrent Puts, a Watch gets every event once, in order",
                check_order_h2load, host)
    with rt.Host(plugins=("kv",), plaintext=True, workers=4,
                 config="[rpchost]\ndrain_timeout_ms = %d\n" % DRAIN_MS) as host:
        res.run("Put, Get, NOT_FOUND, bad keys; Watch headers before events", check_basics, host)
        res.run("replace under load: 0 failures, data kept, the Watch streams on, every "
                "event once", check_replace_under_load, host)
        res.run("another state layout starts empty, says why; its Watch ends UNAVAILABLE < 2 s",
                check_layout_change, host)
        res.run("removing kv.so ends a Watch with UNAVAILABLE at once", check_remove, host)
    with rt.Host(plugins=("kv",), plaintext=True, workers=2,
                 config="[plugin.kv]\nwatch_backlog = 16\n") as host:
        res.run("a watcher that does not read is ended RESOURCE_EXHAUSTED; others go on",
                check_slow_watcher, host)
    with rt.Host(plugins=("kv",), plaintext=True, workers=2,
                 config="[plugin.kv]\nmax_bytes = 1048576\n") as host:
        res.run("a watcher that does not read is ended once it would queue max_bytes",
                check_slow_watcher_bytes, host)
    with rt.Host(plugins=("kv", "statecount"), plaintext=True, workers=2) as host:
        res.run("interceptor with state replaced under load: 0 failures, exact count",
                check_interceptor_state, host)
    res.finish()


if __name__ == "__main__":
    main()
