"""Admin/WatchStats and Admin/ListRecentErrors through grpcio: a method's
counts rise in the stream while a client calls it, failed calls show up
with their code in the interval's errors and in the recent errors (with
method, message and peer), the plugins are listed, and callers that are
not admins are refused."""
import threading
import time

import grpc

import interop_cases as ic
import rpchost_test as rt

admin_pb2 = rt.proto_module("rpchost/admin/v1/admin.proto")
SVC = "/rpchost.admin.v1.Admin/"
ADMIN_MD = (("x-test-principal", "root"),)
USER_MD = (("x-test-principal", "alice"),)
CONFIG = "[rpchost]\nadmin_principals = ops, root\n"
EMPTY = "/grpc.testing.TestService/EmptyCall"
UNARY = "/grpc.testing.TestService/UnaryCall"
results = rt.Results()


def host():
    return rt.Host(plugins=["interop", "testauth"], config=CONFIG,
                   args=["--metrics-listen", "127.0.0.1:%d" % rt.free_port()])


def watch(ch, md=ADMIN_MD, interval_ms=0, timeout=60):
    fn = rt.stub(ch, "unary_stream", SVC + "WatchStats", admin_pb2.Stats)
    return fn(admin_pb2.WatchStatsRequest(interval_ms=interval_ms), metadata=md, timeout=timeout)


def method_of(stats, path):
    hits = [m for m in stats.methods if m.method == path]
    return hits[0] if hits else None


def next_until(stream, pred, what, deadline_s=20):
    """Reads Stats messages until pred(stats) holds; fails at the deadline."""
    end = time.monotonic() + deadline_s
    for st in stream:
        if pred(st):
            return st
        if time.monotonic() > end:
            break
    raise AssertionError("no Stats message with %s within %ss" % (what, deadline_s))


def case_counts_rise_while_called():
    with host() as h:
        ch = h.channel()
        stream = watch(ch)
        first = next(stream)
        assert not first.metrics_off, first
        assert first.interval_seconds == 0
        names = {p.name for p in first.plugins}
        assert {"interop", "testauth", "admin"} <= names, names
        interop = [p for p in first.plugins if p.name == "interop"][0]
        assert interop.state == admin_pb2.PLUGIN_STATE_SERVING
        assert "grpc.testing.TestService" in interop.services

        stop = threading.Event()
        made = [0]

        def caller():
            empty = ic.empty_call(ch)
            end = time.monotonic() + 30
            while not stop.is_set() and time.monotonic() < end:
                empty(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT)
                made[0] += 1
                time.sleep(0.005)

        t = threading.Thread(target=caller)
        t.start()
        try:
            st = next_until(stream, lambda s: method_of(s, EMPTY) is not None
                            and method_of(s, EMPTY).calls > 0 and s.interval_seconds > 0,
                            "EmptyCall calls in an interval")
            m = method_of(st, EMPTY)
            assert m.type == "unary", m
            assert m.calls_per_second > 0, m
            assert abs(m.calls_per_second - m.calls / st.interval_seconds) < 1e-6, m
            assert m.p50_seconds > 0 and m.p99_seconds >= m.p50_seconds, m
            assert m.errors_total == 0 and not m.errors, m
            total_before = m.calls_total
            st = next_until(stream, lambda s: method_of(s, EMPTY).calls_total > total_before,
                            "a higher EmptyCall total")
            assert st.interval_seconds > 0.5, st.interval_seconds
        finally:
            stop.set()
            t.join()
        # Once the caller stopped the total is exact and the rate drops to 0.
        st = next_until(stream, lambda s: method_of(s, EMPTY).calls_total == made[0]
                        and method_of(s, EMPTY).calls == 0, "EmptyCall settled at %d" % made[0])
        assert method_of(st, EMPTY).calls_per_second == 0
        stream.cancel()


def case_errors_counted_and_recent():
    with host() as h:
        ch = h.channel()
        stream = watch(ch, interval_ms=250)
        next(stream)
        unary = ic.unary_call(ch)
        for code, msg in ((5, "no such ride"), (5, "no such ride"), (9, "not now")):
            req = ic.messages.SimpleRequest(
                response_status=ic.messages.EchoStatus(code=code, message=msg))
            try:
                unary(req, timeout=ic.TIMEOUT)
                raise AssertionError("call succeeded")
            except grpc.RpcError as e:
                assert e.code().value[0] == code, e

        def has_errors(s):
            m = method_of(s, UNARY)
            return m is not None and m.errors_total == 3
        st = next_until(stream, has_errors, "3 UnaryCall errors")
        m = method_of(st, UNARY)
        assert m.calls_total == 3, m
        recent = [e for e in st.recent_errors if e.method == UNARY]
        assert [e.message for e in recent] == ["not now", "no such ride", "no such ride"], recent
        assert recent[0].code == 9 and recent[0].code_name == "FailedPrecondition", recent[0]
        assert recent[0].peer.startswith(("ipv4:127.0.0.1:", "ipv6:[::1]:")), recent[0]
        assert recent[0].unix_ms > 0
        stream.cancel()

        r = rt.unary(ch, SVC + "ListRecentErrors", admin_pb2.ListRecentErrorsRequest(),
                     admin_pb2.ListRecentErrorsResponse, metadata=ADMIN_MD, timeout=10)
        mine = [e for e in r.errors if e.method == UNARY]
        assert [e.code_name for e in mine] == ["FailedPrecondition", "NotFound", "NotFound"], mine


def case_not_for_non_admins():
    with host() as h:
        ch = h.channel()
        for md in (USER_MD, ()):
            try:
                next(watch(ch, md=md))
                raise AssertionError("WatchStats answered a non-admin")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            try:
                rt.unary(ch, SVC + "ListRecentErrors", admin_pb2.ListRecentErrorsRequest(),
                         admin_pb2.ListRecentErrorsResponse, metadata=md, timeout=10)
                raise AssertionError("ListRecentErrors answered a non-admin")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        try:
            next(watch(ch, interval_ms=10))
            raise AssertionError("interval 10 ms accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, e


def case_metrics_off():
    with rt.Host(plugins=["interop", "testauth"], config=CONFIG) as h:
        st = next(watch(h.channel()))
        assert st.metrics_off and not st.methods, st
        assert any(p.name == "interop" for p in st.plugins)


for case in (case_counts_rise_while_called, case_errors_counted_and_recent,
             case_not_for_non_admins, case_metrics_off):
    results.run(case.__name__, case)
results.finish()
