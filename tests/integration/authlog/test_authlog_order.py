"""The host runs interceptors in the configured order ([rpchost]
interceptors), checked with the test-only plugin ordertest (two
interceptors, ordertest.a and ordertest.b, that add initial metadata and
record start/end lines) around authlog.auth and authlog.log."""
import os
import shutil
import tempfile

import grpc

import authlog_common as ac
from authlog_common import expect, expect_status, status_of
import rpchost_test


def call_with_md(ch, token):
    fn = rpchost_test.stub(ch, "unary_unary", ac.SVC + "UnaryCall", ac.messages.SimpleResponse)
    _, call = fn.with_call(ac.messages.SimpleRequest(response_size=1), metadata=ac.md(token),
                           timeout=ac.TIMEOUT)
    return [v for k, v in call.initial_metadata() if k == "x-ordertest"]


def records(path):
    with open(path) as f:
        return [ln.split() for ln in f.read().splitlines()]


def host_cfg(tokens_file, record, order, reject=None):
    extra = "[plugin.ordertest]\nrecord_file = %s\n" % record
    if reject:
        extra += "reject = %s\n" % reject
    return ac.config(tokens_file, interceptors=order, extra=extra)


def check_order(tmp, tokens_file, tokens):
    record = os.path.join(tmp, "order1")
    cfg = host_cfg(tokens_file, record, "ordertest.b, authlog.auth, ordertest.a, authlog.log")
    log = None
    with rpchost_test.Host(plugins=ac.plugins("ordertest"), config=cfg) as h:
        ch = h.channel()
        try:
            # b runs before auth (no principal yet), a after it
            got = call_with_md(ch, tokens["alice"])
            expect(got == ["ordertest.b principal=-", "ordertest.a principal=alice"], "initial metadata %s" % got)
            # a call auth refuses never reaches a; b saw it
            expect_status(status_of(ac.unary_call, ch), grpc.StatusCode.UNAUTHENTICATED,
                          "missing bearer token")
        finally:
            ch.close()
        h.stop()
        log = h.logs()
    rec = records(record)
    starts = [(r[1], r[3]) for r in rec if r[0] == "start"]
    expect(starts == [("ordertest.b", "principal=-"), ("ordertest.a", "principal=alice"),
                      ("ordertest.b", "principal=-")], "start records %s" % starts)
    # every interceptor of the chain sees the end of every call, the
    # refused one included (that is what lets authlog.log log it)
    ends = [r[1] for r in rec if r[0] == "end"]
    expect(sorted(ends) == sorted(["ordertest.a", "ordertest.b"] * 2), "end records %s\n%s" %
           (ends, log))


def check_reversed(tmp, tokens_file, tokens):
    record = os.path.join(tmp, "order2")
    cfg = host_cfg(tokens_file, record, "ordertest.a, ordertest.b, authlog.auth, authlog.log")
    with rpchost_test.Host(plugins=ac.plugins("ordertest"), config=cfg) as h:
        ch = h.channel()
        try:
            got = call_with_md(ch, tokens["alice"])
            expect(got == ["ordertest.a principal=-", "ordertest.b principal=-"], "initial metadata %s" % got)
        finally:
            ch.close()


def check_first_rejection_wins(tmp, tokens_file, tokens):
    """ordertest.b refuses EmptyCall; whichever of b and authlog.auth comes
    first decides what the client sees."""
    method = ac.SVC + "EmptyCall"
    for order, want, msg in (
            ("ordertest.b, authlog.auth", grpc.StatusCode.FAILED_PRECONDITION,
             "rejected by ordertest.b"),
            ("authlog.auth, ordertest.b", grpc.StatusCode.UNAUTHENTICATED,
             "missing bearer token")):
        record = os.path.join(tmp, "order3-" + order.split(".")[0])
        cfg = host_cfg(tokens_file, record, order + ", authlog.log", reject=method)
        with rpchost_test.Host(plugins=ac.plugins("ordertest"), config=cfg) as h:
            ch = h.channel()
            try:
                expect_status(status_of(ac.empty_call, ch), want, msg)
                # with a token auth passes, and b still refuses
                expect_status(status_of(ac.empty_call, ch, ac.md(tokens["bob"])),
                              grpc.StatusCode.FAILED_PRECONDITION, "rejected by ordertest.b")
            finally:
                ch.close()


results = rpchost_test.Results()
tmp = tempfile.mkdtemp(prefix="authlog-order-")
try:
    tokens_file, tokens = ac.make_tokens(tmp)
    results.run("configured order: b, auth, a", check_order, tmp, tokens_file, tokens)
    results.run("configured order: a, b, auth", check_reversed, tmp, tokens_file, tokens)
    results.run("the first interceptor to refuse decides", check_first_rejection_wins,
                tmp, tokens_file, tokens)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
results.finish()
