"""Exact counts of every gRPC series (go-grpc-prometheus names, labels and
code names) after known calls of each call type and several status codes,
made with grpcio against the interop plugin; refused calls (unknown
method, 415) counted under the "unknown" method."""
import subprocess
import threading

import grpc

import interop_cases as ic
import metrics_lib as ml
from metrics_lib import expect, value

results = ml.rpchost_test.Results()
CODES = ["OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
         "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
         "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
         "Unauthenticated"]


def check_method(s, method, kind, started, handled, received, sent):
    """handled: {code: n}; every other code must be 0 (and present)."""
    lb = ml.method_labels(method, kind)
    got = value(s, "grpc_server_started_total", **lb)
    expect(got == started, "%s started %s, want %d" % (method, got, started))
    for code in CODES:
        want = handled.get(code, 0)
        got = value(s, "grpc_server_handled_total", grpc_code=code, **lb)
        expect(got == want, "%s handled{%s} %s, want %d" % (method, code, got, want))
    got = value(s, "grpc_server_msg_received_total", **lb)
    expect(got == received, "%s msg_received %s, want %d" % (method, got, received))
    got = value(s, "grpc_server_msg_sent_total", **lb)
    expect(got == sent, "%s msg_sent %s, want %d" % (method, got, sent))
    n = sum(handled.values())
    got = value(s, "grpc_server_handling_seconds_count", **lb)
    expect(got == n, "%s handling_seconds_count %s, want %d" % (method, got, n))
    inf = value(s, "grpc_server_handling_seconds_bucket", le="+Inf", **lb)
    expect(inf == n, "%s +Inf bucket %s, want %d" % (method, inf, n))
    total = value(s, "grpc_server_handling_seconds_sum", **lb)
    expect(total is not None and total >= 0 and (n > 0 or total == 0), "%s sum %s" % (method, total))


def echo_status(code, msg="told to"):
    return ic.messages.EchoStatus(code=code, message=msg)


def every_call_type():
    with ml.MetricsHost(plugins=["interop"], plaintext=True) as h:
        ch = h.channel()
        try:
            s = h.scrape()
            check_method(s, "EmptyCall", "unary", 0, {}, 0, 0)  # made at load, all zero
            for _ in range(3):
                ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
            unary = ic.unary_call(ch)
            for code in (3, 3, 5, 7, 16):
                ic.fails_with(lambda: unary(ic.messages.SimpleRequest(response_status=echo_status(code)),
                                            timeout=ic.TIMEOUT), grpc.StatusCode(
                    next(c for c in grpc.StatusCode if c.value[0] == code)))
            unary(ic.messages.SimpleRequest(response_size=10), timeout=ic.TIMEOUT)
            # server streaming: 4 responses
            out = list(ic.output_call(ch)(ic.messages.StreamingOutputCallRequest(
                response_parameters=ic.params(1, 2, 3, 4)), timeout=ic.TIMEOUT))
            expect(len(out) == 4, "got %d responses" % len(out))
            # client streaming: 5 requests, one response
            ic.input_call(ch)(iter([ic.messages.StreamingInputCallRequest(payload=ic.zeros(5))] * 5),
                              timeout=ic.TIMEOUT)
            # bidi: 3 ping-pongs, then one ending with Aborted after 1 response
            reqs = [ic.messages.StreamingOutputCallRequest(response_parameters=ic.params(7))] * 3
            got = list(ic.full_duplex(ch)(iter(reqs), timeout=ic.TIMEOUT))
            expect(len(got) == 3, "bidi got %d" % len(got))
            aborted = [ic.messages.StreamingOutputCallRequest(response_parameters=ic.params(7)),
                       ic.messages.StreamingOutputCallRequest(response_status=echo_status(10))]
            ic.fails_with(lambda: list(ic.full_duplex(ch)(iter(aborted), timeout=ic.TIMEOUT)),
                          grpc.StatusCode.ABORTED)
            # cancelled by the client after one ping-pong, its stream still open
            release = threading.Event()

            def one_then_wait():
                yield ic.messages.StreamingOutputCallRequest(response_parameters=ic.params(1))
                release.wait(ic.TIMEOUT)

            call = ic.full_duplex(ch)(one_then_wait(), timeout=ic.TIMEOUT)
            next(call)
            call.cancel()
            release.set()
            # unknown method
            ic.fails_with(lambda: ml.rpchost_test.unary(ch, "/grpc.testing.TestService/Nope",
                                                        ic.empty_pb2.Empty(), ic.empty_pb2.Empty,
                                                        timeout=ic.TIMEOUT),
                          grpc.StatusCode.UNIMPLEMENTED)
            # not gRPC at all: 415
            r = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                "--http2-prior-knowledge", "-X", "POST", "-H",
                                "content-type: text/plain",
                                "http://127.0.0.1:%d/grpc.testing.TestService/EmptyCall" % h.port],
                               capture_output=True, text=True, timeout=30)
            expect(r.stdout == "415", "curl got HTTP %r" % r.stdout)

            s = ml.wait_for(h, lambda s: value(s, "grpc_server_handled_total", grpc_code="Canceled",
                                               **ml.method_labels("FullDuplexCall", "bidi_stream")) == 1,
                            "the cancelled call to be counted")
            check_method(s, "EmptyCall", "unary", 3, {"OK": 3}, 3, 3)
            check_method(s, "UnaryCall", "unary", 6,
                         {"OK": 1, "InvalidArgument": 2, "NotFound": 1, "PermissionDenied": 1,
                          "Unauthenticated": 1}, 6, 1)
            check_method(s, "StreamingOutputCall", "server_stream", 1, {"OK": 1}, 1, 4)
            check_method(s, "StreamingInputCall", "client_stream", 1, {"OK": 1}, 5, 1)
            # bidi: 3 in/3 out, 2 in/1 out (then Aborted), 1 in/1 out (cancelled)
            check_method(s, "FullDuplexCall", "bidi_stream", 3,
                         {"OK": 1, "Aborted": 1, "Canceled": 1}, 6, 5)
            un = dict(grpc_type="unary", grpc_service="unknown", grpc_method="unknown")
            expect(value(s, "grpc_server_started_total", **un) == 2, "unknown started")
            expect(value(s, "grpc_server_handled_total", grpc_code="Unimplemented", **un) == 1,
                   "unknown Unimplemented")
            expect(value(s, "grpc_server_handled_total", grpc_code="Internal", **un) == 1,
                   "415 counted as Internal")
            expect(value(s, "grpc_server_msg_received_total", **un) == 0, "unknown received")
            # untouched methods stay at zero
            check_method(s, "HalfDuplexCall", "bidi_stream", 0, {}, 0, 0)
        finally:
            ch.close()


def custom_buckets():
    """[rpchost] metrics_buckets sets grpc_server_handling_seconds' bounds."""
    cfg = "[rpchost]\nmetrics_buckets = 0.5, 1, 30\n"
    with ml.MetricsHost(plugins=["interop"], plaintext=True, config=cfg) as h:
        ch = h.channel()
        try:
            ic.empty_call(ch)(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
            s = h.scrape()
            lb = ml.method_labels("EmptyCall", "unary")
            les = sorted(k[1] for k in s if k[0] == "grpc_server_handling_seconds_bucket"
                         and frozenset(lb.items()) <= k[1])
            les = sorted(dict(l)["le"] for l in les)
            expect(les == sorted(["0.5", "1", "30", "+Inf"]), "bounds %s" % les)
            expect(value(s, "grpc_server_handling_seconds_bucket", le="30", **lb) == 1, "le=30")
        finally:
            ch.close()


results.run("every call type and several codes, exact counts", every_call_type)
results.run("metrics_buckets", custom_buckets)
results.finish()
