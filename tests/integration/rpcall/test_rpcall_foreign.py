"""rpcall against a server that is not rpchost: Debian's python3-grpcio
serving Rides (rides_server.py), called with --protoset, over TLS with the
dev CA and over h2c; v1alpha-only reflection (fallback from v1); every
connection and TLS error class; metadata, deadlines, status details."""
import os
import subprocess
import time

from rpcall_util import (ORIGINAL_JSON, RPCALL, cleanup, PyServer, SilentPort, TlsHttp1Port, expect, one_line_error,
                         refused_address, rides_protoset, rpcall, rt, stream_lines,
                         track_lines)

CA = rt.CA


def tls_args():
    return ["--protoset", rides_protoset(), "--cacert", CA]


def h2c_args():
    return ["--protoset", rides_protoset(), "--plaintext"]


def test_protoset_list_describe_offline():
    # --protoset needs no server for list and describe.
    r = expect(rpcall("--protoset", rides_protoset(), refused_address(), "list"), 0)
    assert r.out.split() == ["Rides"], r
    r = expect(rpcall("--protoset", rides_protoset(), refused_address(), "list", "Rides"), 0)
    assert r.out.split() == ["Rides.Start", "Rides.Track"], r
    r = expect(rpcall("--protoset", rides_protoset(), refused_address(), "describe", "Rides"), 0)
    assert "rpc Track ( stream .TrackRequest ) returns ( .TrackResponse );" in r.out, r
    r = expect(rpcall("--protoset", rides_protoset(), refused_address(), "describe",
                      "StartRequest"), 0)
    for line in ("message StartRequest {", "int64 car_id = 1;", "repeated string passenger_ids = 3;",
                 ".RideType type = 4;", ".google.protobuf.Timestamp time = 6;"):
        assert line in r.out, (line, r)


def test_start_original_json(srv, args):
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", ORIGINAL_JSON), 0)
    rid = r.json()["id"]
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), r
    # SERVICE.METHOD, json-lines output
    r = expect(rpcall(*args, srv.address, "Rides.Start", "-d", ORIGINAL_JSON,
                      "--format", "json-lines"), 0)
    assert len(r.out.splitlines()) == 1 and len(r.lines()[0]["id"]) == 32, r


def test_start_from_file_and_stdin(srv, args, tmp):
    path = os.path.join(tmp, "req.json")
    with open(path, "w") as f:
        f.write(ORIGINAL_JSON)
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", "@" + path), 0)
    assert len(r.json()["id"]) == 32
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", "@-", input=ORIGINAL_JSON), 0)
    assert len(r.json()["id"]) == 32
    # rpcall reads a pipe non-blocking, and leaves a shared stdin as it was.
    import fcntl
    rd, wr = os.pipe()
    os.write(wr, ORIGINAL_JSON.encode())
    os.close(wr)
    try:
        p = subprocess.run([RPCALL] + list(args) + [srv.address, "Rides/Start", "-d", "@-"],
                           stdin=rd, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        assert not fcntl.fcntl(rd, fcntl.F_GETFL) & os.O_NONBLOCK, "stdin left non-blocking"
    finally:
        os.close(rd)


def test_track_pipe(srv, args):
    r = expect(stream_lines(list(args) + [srv.address, "Rides/Track", "-d", "@-"],
                            track_lines(7)), 0)
    assert r.json() == {"count": "7"}, r


def test_invalid_argument(srv, args):
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", '{"car_id": 7}'), 64 + 3)
    assert r.err.strip() == "ERROR: InvalidArgument: driver_id is empty", r
    assert r.out == "", r


def test_status_details(srv, args):
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", '{"driver_id": "details"}'),
               64 + 3, "ERROR: InvalidArgument: driver details is banned")
    # A standard google.rpc detail is printed as JSON ...
    assert "details[0]: type.googleapis.com/google.rpc.ErrorInfo" in r.err, r
    for part in ('"reason": "DRIVER_BANNED"', '"domain": "rides.example"',
                 '"field": "driver_id"'):
        assert part in r.err, (part, r)
    # ... and one of an unknown type field by field.
    assert "details[1]: type.googleapis.com/rides.example.Custom" in r.err, r
    assert '1: 42' in r.err and '2: "why"' in r.err, r


def test_deadline(srv, args):
    t = time.time()
    # (1.5 s: enough to connect on a loaded machine, well under the
    # server's 5 s.)
    r = expect(rpcall(*args, "--max-time", "1.5", srv.address, "Rides/Start", "-d",
                      '{"driver_id": "slow"}'), 64 + 4, "ERROR: DeadlineExceeded")
    assert time.time() - t < 4.5, "the deadline did not cut the call short: %r" % r


def test_metadata_and_verbose(srv, args):
    r = expect(rpcall(*args, "-v", "-H", "x-echo: hello", srv.address, "Rides/Start", "-d",
                      '{"driver_id": "x"}'), 0)
    assert "Response headers received:" in r.err and "content-type: application/grpc" in r.err, r
    assert "Response trailers received:" in r.err and "x-echo: hello" in r.err, r
    assert "grpc-status: 0" in r.err, r
    assert len(r.json()["id"]) == 32, r


def test_bad_input(srv, args):
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", '{"location": {"latt": 1}}'), 1)
    assert "location.latt" in r.err, r
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", '{"driver_id": "a"} {}'), 1,
               "exactly one request message")
    r = expect(rpcall(*args, srv.address, "Rides/Start", "-d", '{"driver_id": '), 1,
               "ended inside message 1")
    r = expect(rpcall(*args, srv.address, "Rides/Nope"), 1, "no method 'Nope'")
    assert "Start, Track" in r.err, r
    r = expect(rpcall(*args, srv.address, "Nope/Start"), 1, "service 'Nope' not found")
    # A bad message in the middle of a stream stops the stream.
    lines = track_lines(3) + ['{"car_id": "x"}'] + track_lines(2)
    r = expect(stream_lines(list(args) + [srv.address, "Rides/Track", "-d", "@-"], lines), 1,
               "request message 4")


def test_tls_errors(tls_srv, h2c_srv):
    addr = tls_srv.address
    p = ["--protoset", rides_protoset()]
    r = expect(rpcall(*p, addr, "Rides/Start", "-d", "{}"), 1)
    line = one_line_error(r)
    assert "not trusted" in line and "--cacert" in line and "rpchost development CA" in line, r
    r = expect(rpcall(*p, "--cacert", CA, "--servername", "other.example", addr,
                      "Rides/Start", "-d", "{}"), 1)
    line = one_line_error(r)
    assert "does not match the name 'other.example'" in line and "localhost" in line, r
    r = expect(rpcall(*p, "--plaintext", addr, "Rides/Start", "-d", "{}"), 1)
    assert "drop --plaintext" in one_line_error(r), r
    r = expect(rpcall(*p, "--cacert", CA, h2c_srv.address, "Rides/Start", "-d", "{}"), 1)
    assert "did not answer with TLS" in one_line_error(r) and "--plaintext" in r.err, r
    with TlsHttp1Port() as web:
        r = expect(rpcall(*p, "--cacert", CA, web.address, "Rides/Start", "-d", "{}"), 1)
        line = one_line_error(r)
        assert "did not agree to HTTP/2" in line and "ALPN" in line, r
    r = expect(rpcall(*p, "--insecure", addr, "Rides/Start", "-d", '{"driver_id": "x"}'), 0)
    # 127.0.0.1 is in the certificate's subjectAltName too
    r = expect(rpcall(*p, "--cacert", CA, "127.0.0.1:%d" % tls_srv.port, "Rides/Start", "-d",
                      '{"driver_id": "x"}'), 0)
    r = expect(rpcall(*p, "--cacert", "/nonexistent/ca.pem", addr, "Rides/Start"), 1)
    assert "--cacert /nonexistent/ca.pem" in one_line_error(r), r
    r = expect(rpcall(*p, "--cacert", CA, "--cert", rt.CLIENT_CERT, addr, "Rides/Start"), 1)
    assert "--key" in one_line_error(r), r


def test_connection_errors():
    p = ["--protoset", rides_protoset()]
    r = expect(rpcall(*p, "--plaintext", refused_address(), "Rides/Start"), 1)
    assert "connection refused" in one_line_error(r), r
    with SilentPort() as silent:
        t = time.time()
        r = expect(rpcall(*p, "--cacert", CA, "--connect-timeout", "1", silent.address,
                          "Rides/Start"), 1)
        assert "timed out" in one_line_error(r) and "--connect-timeout" in r.err, r
        assert time.time() - t < 5, r
        r = expect(rpcall(*p, "--plaintext", "--connect-timeout", "1", silent.address,
                          "Rides/Start"), 1)
        assert "sent no HTTP/2 settings" in one_line_error(r), r
    r = expect(rpcall(*p, "--plaintext", "no-such-host.invalid:80", "Rides/Start"), 1)
    assert "cannot resolve host 'no-such-host.invalid'" in one_line_error(r), r
    r = expect(rpcall(*p, "--plaintext", "unix:/nonexistent/rpcall.sock", "Rides/Start"), 1)
    assert "no such socket file" in one_line_error(r), r


def test_usage_errors():
    r = expect(rpcall("localhost", "list"), 2, "no port")
    r = expect(rpcall("localhost"), 2, "say what to do")
    r = expect(rpcall("localhost:1", "Rides"), 2, "not a method")
    r = expect(rpcall("--bogus", "localhost:1", "list"), 2, "unknown option --bogus")
    r = expect(rpcall("-c", "3", "localhost:1", "list"), 2, "bench option")
    r = expect(rpcall("--plaintext", "--cacert", CA, "localhost:1", "list"), 2)
    r = expect(rpcall("--protoset", rides_protoset(), "-H", "bad header", refused_address(),
                      "Rides/Start"), 1)
    r = expect(rpcall("--help"), 0, out_part="rpcall [options] ADDRESS list")


def test_reflection_v1alpha_fallback(refl_srv):
    a = ["--plaintext", refl_srv.address]
    r = expect(rpcall(*a, "list"), 0)
    assert r.out.split() == ["Rides"], r
    r = expect(rpcall(*a, "describe", "StartRequest"), 0, out_part="int64 car_id = 1;")
    r = expect(rpcall("-v", *a, "Rides/Start", "-d", ORIGINAL_JSON), 0,
               "grpc.reflection.v1alpha")
    assert len(r.json()["id"]) == 32, r
    r = expect(rpcall(*a, "describe", "NoSuchThing"), 1, "does not know")
    r = expect(rpcall(*a, "describe", "StartRequest.car_id"), 0, out_part="int64 car_id = 1;")


def test_no_reflection(h2c_srv):
    r = expect(rpcall("--plaintext", h2c_srv.address, "list"), 1)
    assert "does not support server reflection" in one_line_error(r) and "--protoset" in r.err


def test_bench_smoke(srv, args):
    r = expect(rpcall("bench", *args, "-c", "8", "--connections", "2", "-n", "300",
                      "--format", "json", srv.address, "Rides/Start", "-d", ORIGINAL_JSON), 0)
    rep = r.json()
    assert rep["count"] == 300 and rep["status"] == {"OK": 300}, r
    assert rep["latency_ms"]["p50"] > 0 and len(rep["histogram"]) == 10, r
    assert sum(b["count"] for b in rep["histogram"]) == 300, r
    # Failures are counted by code, and the exit says not all were OK.
    r = expect(rpcall("bench", *args, "-c", "4", "-n", "40", "--format", "json", srv.address,
                      "Rides/Start", "-d", '{"driver_id": ""}'), 1)
    rep = r.json()
    assert rep["status"] == {"InvalidArgument": 40}, r
    assert rep["errors"][0]["message"] == "driver_id is empty", r
    # Client streaming: every call sends the 7 messages.
    r = expect(rpcall("bench", *args, "-c", "4", "-n", "20", "--format", "json", srv.address,
                      "Rides/Track", "-d", "\n".join(track_lines(7))), 0)
    assert r.json()["messages_out"] == 140, r


def main():
    import tempfile
    res = rt.Results()
    tmp = tempfile.mkdtemp(prefix="rpcall-test-")
    with PyServer(tls=True) as tls_srv, PyServer() as h2c_srv, \
            PyServer(reflection=True) as refl_srv:
        res.run("protoset list/describe offline", test_protoset_list_describe_offline)
        for name, srv, args in (("tls", tls_srv, tls_args()), ("h2c", h2c_srv, h2c_args())):
            res.run(name + ": Start with the original JSON", test_start_original_json, srv, args)
            res.run(name + ": -d @FILE and @-", test_start_from_file_and_stdin, srv, args, tmp)
            res.run(name + ": Track fed 7 objects through a pipe", test_track_pipe, srv, args)
            res.run(name + ": INVALID_ARGUMENT exit 67", test_invalid_argument, srv, args)
            res.run(name + ": google.rpc.Status details", test_status_details, srv, args)
            res.run(name + ": --max-time deadline", test_deadline, srv, args)
            res.run(name + ": -H metadata, -v headers and trailers", test_metadata_and_verbose,
                    srv, args)
            res.run(name + ": bad request data", test_bad_input, srv, args)
        res.run("TLS error classes", test_tls_errors, tls_srv, h2c_srv)
        res.run("connection error classes", test_connection_errors)
        res.run("usage errors", test_usage_errors)
        res.run("reflection v1alpha fallback", test_reflection_v1alpha_fallback, refl_srv)
        res.run("no reflection: clear error", test_no_reflection, h2c_srv)
        res.run("bench smoke (h2c)", test_bench_smoke, h2c_srv, h2c_args())
        res.run("bench smoke (tls)", test_bench_smoke, tls_srv, tls_args())
    subprocess.run(["rm", "-rf", tmp])
    cleanup()
    res.finish()


if __name__ == "__main__":
    main()
