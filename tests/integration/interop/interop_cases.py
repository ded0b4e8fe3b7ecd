"""The gRPC interop test cases (grpc/grpc doc/interop-test-descriptions.md)
as a client runs them, plus checks of the interop plugin's own limits.
Each case takes a channel to an rpchost serving the interop plugin and
raises on any difference from what the descriptions require."""
import os
import queue
import sys
import threading
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

messages = rpchost_test.proto_module("grpc/testing/messages.proto")
empty_pb2 = rpchost_test.proto_module("grpc/testing/empty.proto")

SVC = "/grpc.testing.TestService/"
TIMEOUT = 30  # every call is bounded in time
REQ_SIZES = [27182, 8, 1828, 45904]
RESP_SIZES = [31415, 9, 2653, 58979]
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
SPECIAL_MESSAGE = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
RECV_LIMIT = 4 << 20  # the host's default receive limit


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_status(err, code, details=None):
    expect(isinstance(err, grpc.RpcError), "expected an RpcError, got %r" % (err,))
    expect(err.code() == code, "status %s (%r), want %s" % (err.code(), err.details(), code))
    if details is not None:
        expect(err.details() == details, "message %r, want %r" % (err.details(), details))


def fails_with(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        expect_status(e, code, details)
        return e
    raise AssertionError("call succeeded, want %s" % code)


def zeros(n):
    return messages.Payload(body=b"\0" * n)


def params(*sizes, interval_us=0):
    return [messages.ResponseParameters(size=s, interval_us=interval_us) for s in sizes]


# --- method callables ------------------------------------------------------

def empty_call(ch):
    return rpchost_test.stub(ch, "unary_unary", SVC + "EmptyCall", empty_pb2.Empty)


def unary_call(ch):
    return rpchost_test.stub(ch, "unary_unary", SVC + "UnaryCall", messages.SimpleResponse)


def output_call(ch):
    return rpchost_test.stub(ch, "unary_stream", SVC + "StreamingOutputCall",
                             messages.StreamingOutputCallResponse)


def input_call(ch):
    return rpchost_test.stub(ch, "stream_unary", SVC + "StreamingInputCall",
                             messages.StreamingInputCallResponse)


def full_duplex(ch):
    return rpchost_test.stub(ch, "stream_stream", SVC + "FullDuplexCall",
                             messages.StreamingOutputCallResponse)


def half_duplex(ch):
    return rpchost_test.stub(ch, "stream_stream", SVC + "HalfDuplexCall",
                             messages.StreamingOutputCallResponse)


class Requests:
    """A request iterator the test feeds one message at a time (ping-pong).
    close() half-closes; the iterator also ends after TIMEOUT idle seconds
    so a failed case never leaves a grpc thread blocked."""

    _END = object()

    def __init__(self):
        self.q = queue.Queue()

    def send(self, msg):
        self.q.put(msg)

    def close(self):
        self.q.put(self._END)

    def __iter__(self):
        return self

    def __next__(self):
        try:
            item = self.q.get(timeout=TIMEOUT)
        except queue.Empty:
            raise StopIteration
        if item is self._END:
            raise StopIteration
        return item


# --- the interop cases -----------------------------------------------------

def empty_unary(ch):
    resp = empty_call(ch)(empty_pb2.Empty(), timeout=TIMEOUT)
    expect(isinstance(resp, empty_pb2.Empty), "response is not an Empty")
    expect(resp.ByteSize() == 0, "Empty response not empty")


def large_unary(ch):
    req = messages.SimpleRequest(response_size=314159, payload=zeros(271828))
    resp = unary_call(ch)(req, timeout=TIMEOUT)
    expect(len(resp.payload.body) == 314159, "body %d bytes" % len(resp.payload.body))
    expect(resp.payload.body == b"\0" * 314159, "body not all zeros")


def client_streaming(ch):
    reqs = [messages.StreamingInputCallRequest(payload=zeros(n)) for n in REQ_SIZES]
    resp = input_call(ch)(iter(reqs), timeout=TIMEOUT)
    expect(resp.aggregated_payload_size == 74922,
           "aggregated_payload_size %d" % resp.aggregated_payload_size)


def server_streaming(ch):
    req = messages.StreamingOutputCallRequest(response_parameters=params(*RESP_SIZES))
    call = output_call(ch)(req, timeout=TIMEOUT)
    sizes = [len(r.payload.body) for r in call]
    expect(sizes == RESP_SIZES, "sizes %s" % sizes)
    expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def ping_pong(ch):
    reqs = Requests()
    call = full_duplex(ch)(reqs, timeout=TIMEOUT)
    try:
        for req_size, resp_size in zip(REQ_SIZES, RESP_SIZES):
            reqs.send(messages.StreamingOutputCallRequest(
                response_parameters=params(resp_size), payload=zeros(req_size)))
            resp = next(call)
            expect(len(resp.payload.body) == resp_size,
                   "response %d bytes, want %d" % (len(resp.payload.body), resp_size))
        reqs.close()
        rest = list(call)
        expect(rest == [], "%d responses after half close" % len(rest))
        expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())
    finally:
        reqs.close()
        call.cancel()


def empty_stream(ch):
    call = full_duplex(ch)(iter([]), timeout=TIMEOUT)
    got = list(call)
    expect(got == [], "%d responses" % len(got))
    expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


def _check_echo(call):
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    expect(initial.get(ECHO_INITIAL[0]) == ECHO_INITIAL[1],
           "initial metadata %r" % (call.initial_metadata(),))
    expect(trailing.get(ECHO_TRAILING[0]) == ECHO_TRAILING[1],
           "trailing metadata %r" % (call.trailing_metadata(),))


def custom_metadata(ch):
    md = (ECHO_INITIAL, ECHO_TRAILING)
    req = messages.SimpleRequest(response_size=314159, payload=zeros(271828))
    resp, call = unary_call(ch).with_call(req, metadata=md, timeout=TIMEOUT)
    expect(len(resp.payload.body) == 314159, "unary body %d" % len(resp.payload.body))
    _check_echo(call)
    sreq = messages.StreamingOutputCallRequest(response_parameters=params(314159),
                                               payload=zeros(271828))
    call = full_duplex(ch)(iter([sreq]), metadata=md, timeout=TIMEOUT)
    sizes = [len(r.payload.body) for r in call]
    expect(sizes == [314159], "duplex sizes %s" % sizes)
    _check_echo(call)


def _status_echo(ch, code, message):
    st = messages.EchoStatus(code=code.value[0], message=message)
    fails_with(lambda: unary_call(ch)(messages.SimpleRequest(response_status=st), timeout=TIMEOUT),
               code, message)
    call = full_duplex(ch)(iter([messages.StreamingOutputCallRequest(response_status=st)]),
                           timeout=TIMEOUT)
    fails_with(lambda: list(call), code, message)


def status_code_and_message(ch):
    _status_echo(ch, grpc.StatusCode.UNKNOWN, "test status message")


def special_status_message(ch):
    _status_echo(ch, grpc.StatusCode.UNKNOWN, SPECIAL_MESSAGE)


def unimplemented_method(ch):
    fails_with(lambda: rpchost_test.unary(ch, SVC + "UnimplementedCall", empty_pb2.Empty(),
                                          empty_pb2.Empty, timeout=TIMEOUT),
               grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(ch):
    fails_with(lambda: rpchost_test.unary(ch, "/grpc.testing.UnimplementedService/UnimplementedCall",
                                          empty_pb2.Empty(), empty_pb2.Empty, timeout=TIMEOUT),
               grpc.StatusCode.UNIMPLEMENTED)


def cancel_after_begin(ch):
    reqs = Requests()
    fut = input_call(ch).future(reqs, timeout=TIMEOUT)
    fut.cancel()
    reqs.close()
    try:
        fut.result(timeout=TIMEOUT)
        raise AssertionError("cancelled call succeeded")
    except grpc.FutureCancelledError:
        pass
    expect(fut.code() == grpc.StatusCode.CANCELLED, "status %s" % fut.code())
    empty_unary(ch)  # the connection and the server are fine


def cancel_after_first_response(ch):
    reqs = Requests()
    call = full_duplex(ch)(reqs, timeout=TIMEOUT)
    reqs.send(messages.StreamingOutputCallRequest(response_parameters=params(31415),
                                                  payload=zeros(27182)))
    resp = next(call)
    expect(len(resp.payload.body) == 31415, "first response %d bytes" % len(resp.payload.body))
    call.cancel()
    reqs.close()
    expect(call.code() == grpc.StatusCode.CANCELLED, "status %s" % call.code())
    empty_unary(ch)


def timeout_on_sleeping_server(ch):
    reqs = Requests()
    call = full_duplex(ch)(reqs, timeout=0.001)
    reqs.send(messages.StreamingOutputCallRequest(payload=zeros(27182)))
    try:
        fails_with(lambda: list(call), grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        reqs.close()
    empty_unary(ch)


def _bool(v):
    return messages.BoolValue(value=v)


def client_compressed_unary(ch):
    def call(expect_compressed, compression=None):
        req = messages.SimpleRequest(expect_compressed=_bool(expect_compressed),
                                     response_size=314159, payload=zeros(271828))
        return unary_call(ch)(req, timeout=TIMEOUT, compression=compression)
    # the feature probe: uncompressed, but expecting compression
    fails_with(lambda: call(True), grpc.StatusCode.INVALID_ARGUMENT)
    for expect_compressed, compression in ((True, grpc.Compression.Gzip),
                                           (True, grpc.Compression.Deflate),
                                           (False, None)):
        resp = call(expect_compressed, compression)
        expect(len(resp.payload.body) == 314159, "body %d" % len(resp.payload.body))
        expect(resp.payload.body == b"\0" * 314159, "body not zeros")


def client_compressed_streaming(ch):
    probe = messages.StreamingInputCallRequest(expect_compressed=_bool(True), payload=zeros(27182))
    fails_with(lambda: input_call(ch)(iter([probe]), timeout=TIMEOUT),
               grpc.StatusCode.INVALID_ARGUMENT)
    # grpcio compresses every message of a call (no per-message flag in
    # its API): the second message, expecting none, is compressed too,
    # which the server accepts (it only checks expect_compressed = true).
    reqs = [messages.StreamingInputCallRequest(expect_compressed=_bool(True), payload=zeros(27182)),
            messages.StreamingInputCallRequest(expect_compressed=_bool(False), payload=zeros(45904))]
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        resp = input_call(ch)(iter(reqs), timeout=TIMEOUT, compression=compression)
        expect(resp.aggregated_payload_size == 73086,
               "aggregated_payload_size %d" % resp.aggregated_payload_size)


def server_compressed_unary(ch):
    """grpcio inflates what it gets; the flags themselves are checked on
    the wire by server_compressed_wire."""
    for compressed in (True, False):
        req = messages.SimpleRequest(response_compressed=_bool(compressed), response_size=314159,
                                     payload=zeros(271828))
        resp = unary_call(ch)(req, timeout=TIMEOUT)
        expect(len(resp.payload.body) == 314159, "body %d" % len(resp.payload.body))
        expect(resp.payload.body == b"\0" * 314159, "body not zeros")


def server_compressed_streaming(ch):
    req = messages.StreamingOutputCallRequest(response_parameters=[
        messages.ResponseParameters(compressed=_bool(True), size=31415),
        messages.ResponseParameters(compressed=_bool(False), size=92653)])
    call = output_call(ch)(req, timeout=TIMEOUT)
    bodies = [r.payload.body for r in call]
    expect([len(b) for b in bodies] == [31415, 92653], "sizes %s" % [len(b) for b in bodies])
    expect(all(b == b"\0" * len(b) for b in bodies), "bodies not zeros")
    expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())


INTEROP_CASES = [
    empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream,
    custom_metadata, status_code_and_message, special_status_message, unimplemented_method,
    unimplemented_service, cancel_after_begin, cancel_after_first_response,
    timeout_on_sleeping_server, client_compressed_unary, client_compressed_streaming,
    server_compressed_unary, server_compressed_streaming,
]


# --- beyond the interop cases: limits and server behaviour -----------------

def _request_of_size(total):
    """A SimpleRequest whose serialized size is exactly `total` bytes."""
    n = total - 16
    while True:
        req = messages.SimpleRequest(payload=zeros(n))
        size = req.ByteSize()
        if size == total:
            return req
        n += total - size


def receive_limit(ch):
    ok = unary_call(ch)(_request_of_size(RECV_LIMIT), timeout=TIMEOUT)
    expect(len(ok.payload.body) == 0, "request at the limit: unexpected response")
    fails_with(lambda: unary_call(ch)(_request_of_size(RECV_LIMIT + 1), timeout=TIMEOUT),
               grpc.StatusCode.RESOURCE_EXHAUSTED)
    empty_unary(ch)


def send_limit(ch):
    """A response over the host's send limit (4 MiB) fails with
    RESOURCE_EXHAUSTED and a message; the channel keeps working."""
    ok = unary_call(ch)(messages.SimpleRequest(response_size=RECV_LIMIT - 64), timeout=TIMEOUT)
    expect(len(ok.payload.body) == RECV_LIMIT - 64, "body just under the limit")
    e = fails_with(lambda: unary_call(ch)(messages.SimpleRequest(response_size=RECV_LIMIT),
                                          timeout=TIMEOUT), grpc.StatusCode.RESOURCE_EXHAUSTED)
    expect(e.details(), "no status message")
    empty_unary(ch)


def bad_requests(ch):
    """Bad input gets INVALID_ARGUMENT with a message, never a crash."""
    for req in (messages.SimpleRequest(response_size=-1),
                messages.SimpleRequest(response_size=(16 << 20) + 1)):
        e = fails_with(lambda: unary_call(ch)(req, timeout=TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT)
        expect(e.details(), "no status message")
    for rp in (params(-5), params(17 << 20), params(1, interval_us=-1)):
        req = messages.StreamingOutputCallRequest(response_parameters=rp)
        fails_with(lambda: list(output_call(ch)(req, timeout=TIMEOUT)),
                   grpc.StatusCode.INVALID_ARGUMENT)
    probe = messages.StreamingInputCallRequest(expect_compressed=messages.BoolValue(value=True),
                                               payload=zeros(27182))
    fails_with(lambda: input_call(ch)(iter([probe]), timeout=TIMEOUT),
               grpc.StatusCode.INVALID_ARGUMENT)


def interval_us(ch):
    """Each interval_us is a delay before its response, accumulating."""
    req = messages.StreamingOutputCallRequest(response_parameters=params(1, 2, 3, interval_us=200000))
    t0 = time.monotonic()
    arrivals = []
    for r in output_call(ch)(req, timeout=TIMEOUT):
        arrivals.append((time.monotonic() - t0, len(r.payload.body)))
    expect([s for _, s in arrivals] == [1, 2, 3], "sizes %s" % arrivals)
    expect(arrivals[0][0] >= 0.18, "first response after %.3fs, want >= 0.2s" % arrivals[0][0])
    expect(arrivals[2][0] >= 0.58, "last response after %.3fs, want >= 0.6s" % arrivals[2][0])


def half_duplex_buffers(ch):
    """HalfDuplexCall answers nothing before the client half-closes."""
    reqs = Requests()
    call = half_duplex(ch)(reqs, timeout=TIMEOUT)
    got = []
    reader = threading.Thread(target=lambda: got.extend(len(r.payload.body) for r in call))
    reader.start()
    try:
        for s in (5, 6, 7):
            reqs.send(messages.StreamingOutputCallRequest(response_parameters=params(s)))
        time.sleep(0.5)
        expect(got == [], "responses before half close: %s" % got)
        reqs.close()
        reader.join(TIMEOUT)
        expect(got == [5, 6, 7], "sizes %s" % got)
        expect(call.code() == grpc.StatusCode.OK, "status %s" % call.code())
    finally:
        reqs.close()
        call.cancel()
        reader.join(TIMEOUT)


def duplex_status_after_responses(ch):
    """A status request ends the stream after the responses queued before it."""
    st = messages.EchoStatus(code=grpc.StatusCode.ABORTED.value[0], message="stop here")
    reqs = [messages.StreamingOutputCallRequest(response_parameters=params(3, 4, interval_us=50000)),
            messages.StreamingOutputCallRequest(response_status=st),
            messages.StreamingOutputCallRequest(response_parameters=params(99))]
    call = full_duplex(ch)(iter(reqs), timeout=TIMEOUT)
    got = []
    try:
        for r in call:
            got.append(len(r.payload.body))
        raise AssertionError("stream ended OK")
    except grpc.RpcError as e:
        expect_status(e, grpc.StatusCode.ABORTED, "stop here")
    expect(got == [3, 4], "sizes before the status %s" % got)


def cancel_during_timer(ch):
    """Cancelling a stream whose next response waits on a timer: the server
    drops the rest, and keeps serving."""
    req = messages.StreamingOutputCallRequest(
        response_parameters=params(10) + params(20, interval_us=2000000))
    call = output_call(ch)(req, timeout=TIMEOUT)
    expect(len(next(call).payload.body) == 10, "first response")
    call.cancel()
    expect(call.code() == grpc.StatusCode.CANCELLED, "status %s" % call.code())
    # a deadline while the server waits on a timer
    req = messages.StreamingOutputCallRequest(response_parameters=params(1, interval_us=3000000))
    fails_with(lambda: list(output_call(ch)(req, timeout=0.3)), grpc.StatusCode.DEADLINE_EXCEEDED)
    time.sleep(0.2)
    empty_unary(ch)


def many_timer_streams(ch):
    """100 concurrent streams, each with 5 delayed responses."""
    req = messages.StreamingOutputCallRequest(response_parameters=params(*range(1, 6), interval_us=20000))
    calls = [output_call(ch)(req, timeout=TIMEOUT) for _ in range(100)]
    for c in calls:
        sizes = [len(r.payload.body) for r in c]
        expect(sizes == [1, 2, 3, 4, 5], "sizes %s" % sizes)


EXTRA_CASES = [receive_limit, send_limit, bad_requests, interval_us, half_duplex_buffers,
               duplex_status_after_responses, cancel_during_timer, many_timer_streams]


# --- the compressed flags on the wire ----------------------------------------
# grpcio and grpc-js inflate responses without telling whether a message
# was compressed: the flags the interop cases assert are read here from
# the raw HTTP/2 stream (core_lib.RawH2).

def _wire_messages(host, path, request, accept="identity,deflate,gzip"):
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))
    import core_lib
    r = core_lib.RawH2(host, tls=not host.plaintext)
    try:
        r.grpc_headers(1, path, extra=[("grpc-accept-encoding", accept)])
        r.data_flow(1, core_lib.grpc_body(request.SerializeToString()), end_stream=True)
        st = r.response(1)
    finally:
        r.close()
    http, code, text = core_lib.status_of(st)
    expect(http == "200" and code == 0, "status %s %s %r" % (http, code, text))
    headers = {}
    for h in st["headers"]:
        headers.update(h)
    out, data = [], st["data"]
    while data:
        flag, n = data[0], int.from_bytes(data[1:5], "big")
        out.append((flag, data[5:5 + n]))
        data = data[5 + n:]
    return headers, out


def server_compressed_wire(host):
    """response_compressed / ResponseParameters.compressed decide each
    response's compressed flag; grpc-encoding names the algorithm the
    client accepted (gzip first, deflate when gzip is not accepted)."""
    import gzip
    import zlib
    for accept, algo in (("identity,deflate,gzip", "gzip"), ("identity,deflate", "deflate")):
        for compressed in (True, False):
            req = messages.SimpleRequest(response_compressed=_bool(compressed), response_size=314159)
            headers, msgs = _wire_messages(host, SVC + "UnaryCall", req, accept)
            expect([f for f, _ in msgs] == [1 if compressed else 0], "flags %s" % [f for f, _ in msgs])
            body = msgs[0][1]
            if compressed:
                expect(headers.get("grpc-encoding") == algo, "grpc-encoding %r" % headers)
                body = gzip.decompress(body) if algo == "gzip" else zlib.decompress(body)
                expect(len(msgs[0][1]) < 2000, "314 KiB of zeros in %d bytes" % len(msgs[0][1]))
            resp = messages.SimpleResponse.FromString(body)
            expect(len(resp.payload.body) == 314159, "body %d" % len(resp.payload.body))
        req = messages.StreamingOutputCallRequest(response_parameters=[
            messages.ResponseParameters(compressed=_bool(True), size=31415),
            messages.ResponseParameters(compressed=_bool(False), size=92653)])
        headers, msgs = _wire_messages(host, SVC + "StreamingOutputCall", req, accept)
        expect([f for f, _ in msgs] == [1, 0], "stream flags %s" % [f for f, _ in msgs])
        expect(headers.get("grpc-encoding") == algo, "grpc-encoding %r" % headers)
    # a client that accepts no compression gets none, even when asking
    req = messages.SimpleRequest(response_compressed=_bool(True), response_size=1000)
    headers, msgs = _wire_messages(host, SVC + "UnaryCall", req, "identity")
    expect([f for f, _ in msgs] == [0] and "grpc-encoding" not in headers,
           "uncompressed for a client accepting identity only: %s %r" % ([f for f, _ in msgs], headers))


def configured_compression_wire(host):
    """[rpchost] compression = gzip, compression_min_bytes = 1000: responses
    of 1000 bytes or more go gzip-compressed to clients accepting gzip,
    smaller ones and other clients' go as they are; a plugin's choice
    (response_compressed = false) wins."""
    import gzip
    cases = [  # (accept, response_size, response_compressed, flag, grpc-encoding)
        ("identity,deflate,gzip", 5000, None, 1, "gzip"),
        ("gzip", 100, None, 0, "gzip"),
        ("identity", 5000, None, 0, None),
        ("identity,deflate", 5000, None, 0, None),
        ("identity,deflate,gzip", 5000, False, 0, None),
    ]
    for accept, size, compressed, flag, encoding in cases:
        req = messages.SimpleRequest(response_size=size)
        if compressed is not None:
            req.response_compressed.value = compressed
        headers, msgs = _wire_messages(host, SVC + "UnaryCall", req, accept)
        what = "accept %s, %d bytes: " % (accept, size)
        expect([f for f, _ in msgs] == [flag], what + "flags %s" % [f for f, _ in msgs])
        expect(headers.get("grpc-encoding") == encoding, what + "grpc-encoding %r" % headers)
        body = gzip.decompress(msgs[0][1]) if flag else msgs[0][1]
        expect(len(messages.SimpleResponse.FromString(body).payload.body) == size, what + "body")


WIRE_CASES = [server_compressed_wire]


def run_cases(results, host, label, cases=None):
    ch = host.channel()
    try:
        for case in cases or (INTEROP_CASES + EXTRA_CASES):
            results.run("%s %s" % (label, case.__name__), case, ch)
        if cases is None:
            for case in WIRE_CASES:
                results.run("%s %s" % (label, case.__name__), case, host)
    finally:
        ch.close()
