"""authlog.log through a real host: one line per call with the right fields
(JSON lines that parse, and the text format on stderr), rotation by rename
+ SIGHUP under load loses no line, SIGHUP applies a new log_format, and a
sink that cannot keep up makes lines dropped and counted, never slow calls."""
import collections
import datetime
import os
import re
import shutil
import signal
import tempfile
import threading
import time

import grpc

import authlog_common as ac
from authlog_common import expect
import rpchost_test

LOAD_THREADS = 4
LOAD_MAX_CALLS = 1500  # per thread
LOAD_MAX_SECONDS = 12


def parse_time(s):
    expect(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", s), "time %r" % s)
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def known_calls(host, tokens):
    """Makes a known set of calls; returns the expected (method, status,
    principal, message) of each and the exact byte counts of some."""
    expected = []
    sizes = {}
    ch = host.channel()
    try:
        req = ac.messages.SimpleRequest(response_size=10, payload=ac.messages.Payload(body=b"q" * 5))
        for _ in range(3):
            resp = ac.unary_call(ch, ac.md(tokens["alice"]))
            expected.append((ac.SVC + "UnaryCall", "OK", "alice", ""))
        sizes[(ac.SVC + "UnaryCall", "OK")] = (5 + len(req.SerializeToString()),
                                               5 + len(resp.SerializeToString()))
        # one gzip call both ways: the log shows wire and uncompressed sizes
        creq = ac.messages.SimpleRequest(response_size=20000, payload=ac.messages.Payload(body=b"q" * 20000),
                                         response_compressed=ac.messages.BoolValue(value=True))
        cresp = rpchost_test.unary(ch, ac.SVC + "UnaryCall", creq, ac.messages.SimpleResponse,
                                   metadata=ac.md(tokens["alice"]), compression=grpc.Compression.Gzip,
                                   timeout=30)
        expected.append((ac.SVC + "UnaryCall", "OK", "alice", ""))
        sizes["compressed"] = (5 + len(creq.SerializeToString()), 5 + len(cresp.SerializeToString()))
        for _ in range(2):
            ac.status_of(ac.unary_call, ch)
            expected.append((ac.SVC + "UnaryCall", "UNAUTHENTICATED", None, "missing bearer token"))
        ac.status_of(ac.unary_call, ch, ac.md("bogus"))
        expected.append((ac.SVC + "UnaryCall", "UNAUTHENTICATED", None, "invalid token"))
        got = ac.status_of(ac.unary_call, ch, ac.md(tokens["bob"]))
        expected.append((ac.SVC + "UnaryCall", "PERMISSION_DENIED", "bob", got[1]))
        ac.health_check(ch)
        expected.append(("/grpc.health.v1.Health/Check", "OK", None, ""))
        ac.health_check(ch, ac.md(tokens["dave"]))
        expected.append(("/grpc.health.v1.Health/Check", "OK", "dave", ""))
        expect(len(ac.output_call(ch, ac.md(tokens["alice"]))) == 2, "2 streamed responses")
        expected.append((ac.SVC + "StreamingOutputCall", "OK", "alice", ""))
        if ac.HAVE_RIDES:
            ac.rides_start(ch, ac.md(tokens["alice"]))
            expected.append(("/Rides/Start", "OK", "alice", ""))
            expect(ac.rides_track(ch, ac.md(tokens["bob"]), n=4).count == 4, "Track count")
            expected.append(("/Rides/Track", "OK", "bob", ""))
            got = ac.status_of(ac.rides_start, ch)
            expected.append(("/Rides/Start", "UNAUTHENTICATED", None, "missing bearer token"))
    finally:
        ch.close()
    return expected, sizes


def check_json_lines(tmp, tokens_file, tokens):
    log = os.path.join(tmp, "access.json")
    t0 = time.time()
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file, log)) as h:
        expected, sizes = known_calls(h, tokens)
        h.stop()  # fini flushes every line
    t1 = time.time()
    lines = ac.read_json_lines(log)
    expect(len(lines) == len(expected), "%d log lines for %d calls" % (len(lines), len(expected)))
    got = collections.Counter((j["method"], j["status"], j["principal"], j["message"]) for j in lines)
    want = collections.Counter(expected)
    expect(got == want, "log lines differ from the calls:\n got %s\nwant %s" % (got, want))
    codes = {"OK": 0, "UNAUTHENTICATED": 16, "PERMISSION_DENIED": 7}
    compressed = []
    for j in lines:
        for key in ("time", "method", "status", "code", "duration", "duration_ns", "peer",
                    "principal", "bytes_in", "bytes_out", "bytes_in_uncompressed",
                    "bytes_out_uncompressed", "messages_in", "messages_out", "message"):
            expect(key in j, "no %s in %s" % (key, j))
        ts = parse_time(j["time"])
        expect(t0 - 1 <= ts <= t1 + 1, "time %s outside the test run" % j["time"])
        expect(j["code"] == codes[j["status"]], "code %s for %s" % (j["code"], j["status"]))
        expect(j["duration_ns"] > 0 and j["duration"] > 0, "duration not > 0: %s" % j)
        expect(abs(j["duration"] - j["duration_ns"] / 1e9) < 2e-6, "duration mismatch %s" % j)
        expect(j["duration"] < 20, "duration %s" % j["duration"])
        expect(re.fullmatch(r"ipv4:127\.0\.0\.1:\d+|ipv6:\[::1\]:\d+", j["peer"]),
               "peer %r" % j["peer"])
        if j["status"] == "OK":
            expect(j["messages_in"] >= 1 and j["messages_out"] >= 1 and j["bytes_out"] > 0,
                   "counts of an OK call: %s" % j)
        if j["method"] == "/Rides/Track" and j["status"] == "OK":
            expect(j["messages_in"] == 4 and j["messages_out"] == 1, "Track counts %s" % j)
        if j["method"].endswith("StreamingOutputCall"):
            expect(j["messages_in"] == 1 and j["messages_out"] == 2, "stream counts %s" % j)
        key = (j["method"], j["status"])
        if j["bytes_in"] != j["bytes_in_uncompressed"]:
            compressed.append(j)
            continue
        expect(j["bytes_out"] == j["bytes_out_uncompressed"], "out sizes differ: %s" % j)
        if key in sizes:
            expect((j["bytes_in"], j["bytes_out"]) == sizes[key],
                   "bytes in/out %s, want %s" % ((j["bytes_in"], j["bytes_out"]), sizes[key]))
    expect(len(compressed) == 1, "%d log lines of compressed calls" % len(compressed))
    c = compressed[0]
    expect((c["bytes_in_uncompressed"], c["bytes_out_uncompressed"]) == sizes["compressed"],
           "uncompressed sizes %s, want %s" % (c, sizes["compressed"]))
    expect(c["bytes_in"] * 10 < c["bytes_in_uncompressed"] and
           c["bytes_out"] * 10 < c["bytes_out_uncompressed"], "wire sizes not compressed: %s" % c)


def check_text_on_stderr(tmp, tokens_file, tokens):
    cfg = ac.config(tokens_file, log_format="text")  # no log_file: stderr
    with rpchost_test.Host(plugins=ac.plugins(), config=cfg) as h:
        expected, _ = known_calls(h, tokens)
        h.stop()
        logs = h.logs()
    lines = [ln for ln in logs.splitlines() if " took " in ln and "sec status=" in ln]
    expect(len(lines) == len(expected), "%d text lines for %d calls:\n%s" %
           (len(lines), len(expected), logs))
    got = collections.Counter()
    for ln in lines:
        m = ac.TEXT_LINE.match(ln)
        expect(m, "text line does not parse: %r" % ln)
        parse_time(m["time"])
        expect(float(m["seconds"]) > 0, "duration 0 in %r" % ln)
        expect(re.fullmatch(r"ipv[46]:\S+", m["peer"]), "peer in %r" % ln)
        principal = None if m["principal"] == "-" else m["principal"]
        got[(m["method"], m["status"], principal, m["message"] or "")] += 1
    # text escapes quotes; none of the expected messages has any
    expect(got == collections.Counter(expected), "text lines differ:\n got %s\nwant %s" %
           (got, collections.Counter(expected)))


def run_load(host, token, stop_evt=None):
    """LOAD_THREADS channels calling UnaryCall; returns (calls, failures)."""
    counts = [0] * LOAD_THREADS
    failures = []
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_MAX_SECONDS

    def worker(i):
        ch = host.channel(options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            for _ in range(LOAD_MAX_CALLS):
                if time.monotonic() > deadline or (stop_evt and stop_evt.is_set()):
                    break
                got = ac.status_of(ac.unary_call, ch, ac.md(token))
                counts[i] += 1
                if got[0] != grpc.StatusCode.OK:
                    with lock:
                        failures.append(got)
        finally:
            ch.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(LOAD_THREADS)]
    for t in threads:
        t.start()
    return threads, counts, failures


def check_rotation_under_load(tmp, tokens_file, tokens):
    log = os.path.join(tmp, "rot.log")
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file, log)) as h:
        threads, counts, failures = run_load(h, tokens["alice"])
        for k in (1, 2):
            ac.wait_until(lambda: ac.count_lines(log) > 50, 10)
            os.rename(log, "%s.%d" % (log, k))
            h.signal(signal.SIGHUP)
            expect(ac.wait_until(lambda: os.path.exists(log), 5),
                   "SIGHUP did not reopen %s:\n%s" % (log, h.logs()))
        for t in threads:
            t.join(LOAD_MAX_SECONDS + 30)
        expect(not any(t.is_alive() for t in threads), "load still running")
        h.stop()
    calls = sum(counts)
    files = [log + ".1", log + ".2", log]
    per_file = [ac.count_lines(p) for p in files]
    print("  %d calls; lines per file %s" % (calls, per_file), flush=True)
    expect(not failures, "%d calls failed, first %s" % (len(failures), failures[:3]))
    expect(all(n > 0 for n in per_file), "a file got no line: %s" % per_file)
    expect(sum(per_file) == calls, "%d lines for %d calls" % (sum(per_file), calls))
    lines = ac.read_json_lines(*files)  # every line is whole JSON
    expect(all(j["status"] == "OK" and j["principal"] == "alice" for j in lines), "bad line")


def check_sighup_new_format(tmp, tokens_file, tokens):
    log = os.path.join(tmp, "fmt.log")
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file, log)) as h:
        ch = h.channel()
        try:
            for _ in range(3):
                ac.unary_call(ch, ac.md(tokens["alice"]))
            with open(h.config_path, "w") as f:
                f.write(ac.config(tokens_file, log, log_format="text"))
            h.signal(signal.SIGHUP)

            def text_seen():
                ac.unary_call(ch, ac.md(tokens["alice"]))
                with open(log) as f:
                    return any(" took " in ln for ln in f)
            expect(ac.wait_until(text_seen, 10, step=0.1),
                   "no text line after SIGHUP:\n" + h.logs())
        finally:
            ch.close()
        h.stop()
    with open(log) as f:
        lines = f.read().splitlines()
    kinds = ["json" if ln.startswith("{") else "text" for ln in lines]
    expect(kinds[:3] == ["json"] * 3, "first lines %s" % kinds[:3])
    first_text = kinds.index("text")
    expect(all(k == "text" for k in kinds[first_text:]), "formats interleave: %s" % kinds)
    for ln in lines[first_text:]:
        expect(ac.TEXT_LINE.match(ln), "text line %r" % ln)


def check_slow_sink_drops(tmp, tokens_file, tokens):
    """The log is a FIFO the test does not read at first: the flusher blocks
    on it, the 4 KiB rings fill and lines are dropped, yet every call
    succeeds quickly; afterwards lines read + lines reported dropped equals
    the calls made."""
    fifo = os.path.join(tmp, "slow.fifo")
    os.mkfifo(fifo)
    rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so the host's open does not wait
    cfg = ac.config(tokens_file, fifo, extra="log_buffer = 4K")
    received = bytearray()
    try:
        with rpchost_test.Host(plugins=ac.plugins(), config=cfg) as h:
            t0 = time.monotonic()
            threads, counts, failures = run_load(h, tokens["alice"])
            for t in threads:
                t.join(LOAD_MAX_SECONDS + 30)
            elapsed = time.monotonic() - t0
            calls = sum(counts)
            expect(not failures, "%d calls failed: %s" % (len(failures), failures[:3]))
            print("  %d calls in %.1fs with a stalled log sink" % (calls, elapsed), flush=True)

            # now read the FIFO until the host closes it
            def drain():
                os.set_blocking(rfd, True)
                while True:
                    b = os.read(rfd, 1 << 16)
                    if not b:
                        return
                    received.extend(b)
            reader = threading.Thread(target=drain)
            reader.start()
            h.stop()
            reader.join(30)
            logs = h.logs()
    finally:
        os.close(rfd)
    dropped = sum(int(n) for n in re.findall(r"(\d+) access log lines dropped", logs))
    got = received.count(b"\n")
    print("  %d lines written, %d reported dropped" % (got, dropped), flush=True)
    expect(dropped > 0, "nothing dropped with a stalled sink:\n" + logs[-2000:])
    expect(got + dropped == calls, "%d written + %d dropped != %d calls" % (got, dropped, calls))


def check_switches(tmp, tokens_file, tokens):
    """auth = off lets every call through (still logged); log = off writes
    nothing; both change on SIGHUP."""
    log = os.path.join(tmp, "switch.log")
    with rpchost_test.Host(plugins=ac.plugins(),
                           config=ac.config(tokens_file, log, extra="auth = off")) as h:
        ch = h.channel()
        try:
            for _ in range(3):
                ac.unary_call(ch)  # no token: fine with auth off
            for n, keys in ((1, "auth = off\nlog = off"), (2, "auth = on\nlog = off")):
                with open(h.config_path, "w") as f:
                    f.write(ac.config(tokens_file, log, extra=keys))
                h.signal(signal.SIGHUP)
                expect(ac.wait_until(lambda: h.logs().count("in force now: auth") >= n, 10),
                       "no reload line:\n" + h.logs()[-2000:])
                if n == 1:
                    for _ in range(5):
                        ac.unary_call(ch)
            ac.expect_status(ac.status_of(ac.unary_call, ch), grpc.StatusCode.UNAUTHENTICATED,
                             "missing bearer token")
            ac.unary_call(ch, ac.md(tokens["alice"]))
        finally:
            ch.close()
        h.stop()
    lines = ac.read_json_lines(log)
    expect(len(lines) == 3, "%d lines, want the 3 made before log = off" % len(lines))
    expect(all(j["status"] == "OK" and j["principal"] is None for j in lines), "lines %s" % lines)


results = rpchost_test.Results()
tmp = tempfile.mkdtemp(prefix="authlog-log-")
try:
    tokens_file, tokens = ac.make_tokens(tmp)
    results.run("JSON lines: one per call, fields right", check_json_lines, tmp, tokens_file, tokens)
    results.run("text lines on stderr", check_text_on_stderr, tmp, tokens_file, tokens)
    results.run("rotation by rename + SIGHUP under load loses no line",
                check_rotation_under_load, tmp, tokens_file, tokens)
    results.run("SIGHUP applies a new log_format", check_sighup_new_format, tmp, tokens_file, tokens)
    results.run("auth = off and log = off, switched by SIGHUP", check_switches, tmp, tokens_file,
                tokens)
    results.run("a stalled sink drops and counts lines, calls unaffected",
                check_slow_sink_drops, tmp, tokens_file, tokens)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
results.finish()
