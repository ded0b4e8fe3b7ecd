"""The tokens file changed under load, without restart: a new token works
within a second, a removed token is refused, a broken file keeps the old
tokens in force (and the log says why), and none of the calls of the
principal that stays fails meanwhile."""
import os
import shutil
import tempfile
import threading
import time

import grpc

import authlog_common as ac
from authlog_common import expect, expect_status, status_of
import rpchost_test

LOAD_THREADS = 4
LOAD_SECONDS = 30  # upper bound; the load stops when the checks are done
# The watcher takes a change up within about a second on an idle machine
# (poll + 500 ms to settle; the time is printed). The bound is what a
# loaded 2-core CI machine under ASan cannot break, and still far below
# "never": a reload that does not happen fails at the wait's 20 s deadline.
NEW_TOKEN_WITHIN = 10.0
RELOAD_WAIT = 20


def load(host, token, stop):
    counts = [0] * LOAD_THREADS
    failures = []
    lock = threading.Lock()
    deadline = time.monotonic() + LOAD_SECONDS

    def worker(i):
        ch = host.channel(options=[("grpc.use_local_subchannel_pool", 1)])
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                fn = ac.unary_call if i % 2 else ac.empty_call
                got = status_of(fn, ch, ac.md(token))
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


def time_until(cond, timeout):
    t0 = time.monotonic()
    ok = ac.wait_until(cond, timeout, step=0.01)
    return ok, time.monotonic() - t0


def check_changes_under_load(tmp, tokens_file, tokens, host):
    stop = threading.Event()
    threads, counts, failures = load(host, tokens["dave"], stop)
    ch = host.channel()
    try:
        expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])), grpc.StatusCode.OK)

        # a new token, added with the real tool, works within a second
        carol = ac.add_token(tokens_file, "carol", [ac.SVC + "UnaryCall"])
        ok, took = time_until(lambda: status_of(ac.unary_call, ch, ac.md(carol))[0] ==
                              grpc.StatusCode.OK, RELOAD_WAIT)
        print("  new token accepted after %.3fs" % took, flush=True)
        expect(ok and took <= NEW_TOKEN_WITHIN, "new token took %.3fs (ok=%s)" % (took, ok))
        expect_status(status_of(ac.empty_call, ch, ac.md(carol)),
                      grpc.StatusCode.PERMISSION_DENIED, contains="EmptyCall")

        # a removed token is refused
        ac.remove_token(tokens_file, "alice")
        ok, took = time_until(lambda: status_of(ac.unary_call, ch, ac.md(tokens["alice"]))[0] ==
                              grpc.StatusCode.UNAUTHENTICATED, RELOAD_WAIT)
        print("  removed token refused after %.3fs" % took, flush=True)
        expect(ok and took <= NEW_TOKEN_WITHIN, "removal took %.3fs (ok=%s)" % (took, ok))
        expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])),
                      grpc.StatusCode.UNAUTHENTICATED, "invalid token")

        # a broken file: the old tokens stay in force, the log says why
        with open(tokens_file) as f:
            good = f.read()
        tmpf = tokens_file + ".new"
        with open(tmpf, "w") as f:
            f.write(good + "this-is-a-plain-token-not-a-hash eve *\n")
        os.rename(tmpf, tokens_file)
        expect(ac.wait_until(lambda: "stay in force" in host.logs(), RELOAD_WAIT),
               "no log line about the broken file:\n" + host.logs()[-3000:])
        expect("line %d" % (good.count("\n") + 1) in host.logs(), "the line is not named")
        expect_status(status_of(ac.unary_call, ch, ac.md(carol)), grpc.StatusCode.OK)
        expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])),
                      grpc.StatusCode.UNAUTHENTICATED, "invalid token")

        # fixed again, with alice back: both work
        with open(tmpf, "w") as f:
            f.write(good)
        os.rename(tmpf, tokens_file)
        alice2 = ac.add_token(tokens_file, "alice", [ac.SVC + "UnaryCall"])
        ok, took = time_until(lambda: status_of(ac.unary_call, ch, ac.md(alice2))[0] ==
                              grpc.StatusCode.OK, RELOAD_WAIT)
        expect(ok and took <= NEW_TOKEN_WITHIN, "fixed file took %.3fs (ok=%s)" % (took, ok))
        expect_status(status_of(ac.unary_call, ch, ac.md(carol)), grpc.StatusCode.OK)
    finally:
        ch.close()
        stop.set()
        for t in threads:
            t.join(LOAD_SECONDS + 30)
    calls = sum(counts)
    print("  %d calls of the unchanged principal during the changes" % calls, flush=True)
    expect(calls > 0, "no load ran")
    expect(not failures, "%d of %d calls failed, first %s" % (len(failures), calls, failures[:3]))


def check_missing_at_start(tmp, tokens):
    """A tokens file missing at start: authlog still loads and refuses
    (fail closed: never serve unauthenticated), then takes the file up."""
    path = os.path.join(tmp, "later-tokens")
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(path)) as h:
        ch = h.channel()
        try:
            expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])),
                          grpc.StatusCode.UNAUTHENTICATED, "invalid token")
            expect_status(status_of(ac.unary_call, ch), grpc.StatusCode.UNAUTHENTICATED,
                          "missing bearer token")
            expect("later-tokens: No such file or directory; authlog.auth refuses every call"
                   in h.logs(), "no clear line:\n" + h.logs()[-2000:])
            eve = ac.add_token(path, "eve", [ac.SVC + "UnaryCall"])
            expect(ac.wait_until(lambda: status_of(ac.unary_call, ch, ac.md(eve))[0] ==
                                 grpc.StatusCode.OK, RELOAD_WAIT), "the new file was not taken up")
        finally:
            ch.close()


def check_hot_replace(tmp, tokens_file, tokens):
    """authlog.so replaced twice under load (a new build renamed over it):
    no call fails, and the two retired instances flush every line before
    they go (lines == calls)."""
    log = os.path.join(tmp, "replace.log")
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file, log)) as h:
        stop = threading.Event()
        threads, counts, failures = load(h, tokens["dave"], stop)
        try:
            for n in (1, 2):
                expect(ac.wait_until(lambda: sum(counts) > 300 * n, 20), "load too slow")
                h.add_plugin("authlog")
                expect(ac.wait_until(lambda: h.logs().count("plugin authlog 1.0.0 replaced") >= n,
                                     10), "authlog not replaced:\n" + h.logs()[-2000:])
            expect(ac.wait_until(lambda: sum(counts) > 1000, 20), "load too slow")
        finally:
            stop.set()
            for t in threads:
                t.join(LOAD_SECONDS + 30)
        h.stop()
    calls = sum(counts)
    lines = ac.count_lines(log)
    print("  %d calls, %d lines, 2 replacements" % (calls, lines), flush=True)
    expect(not failures, "%d of %d calls failed, first %s" % (len(failures), calls, failures[:3]))
    expect(lines == calls, "%d log lines for %d calls" % (lines, calls))


results = rpchost_test.Results()
tmp = tempfile.mkdtemp(prefix="authlog-reload-")
try:
    tokens_file, tokens = ac.make_tokens(tmp)
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file)) as h:
        results.run("tokens file changed under load", check_changes_under_load,
                    tmp, tokens_file, tokens, h)
    results.run("authlog.so replaced under load", check_hot_replace, tmp, tokens_file, tokens)
    results.run("tokens file missing at start: refuse, then take it up",
                check_missing_at_start, tmp, tokens)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
results.finish()
