"""rpcall against rpchost with the rides and interop plugins, over TLS with
the dev CA and over h2c: discovery through the host's reflection, the
original Rides flows, interop streams (server stream printed as it
arrives, bidi driven line by line), metadata, health, each error class,
mTLS, a Unix socket, and a bench smoke run."""
import base64
import json
import os
import select
import subprocess
import time

from rpcall_util import (ORIGINAL_JSON, RPCALL, expect, one_line_error, rpcall, rt,
                         stream_lines, track_lines)

PLUGINS = ("rides", "interop", "kv")


def conn_args(host):
    return ["--plaintext"] if host.plaintext else ["--cacert", rt.CA]


def test_list(host):
    a = conn_args(host)
    r = expect(rpcall(*a, host.address, "list"), 0)
    names = r.out.split()
    for svc in ("Rides", "grpc.testing.TestService", "grpc.health.v1.Health",
                "grpc.reflection.v1.ServerReflection",
                "grpc.reflection.v1alpha.ServerReflection"):
        assert svc in names, (svc, r)
    assert names == sorted(names), r
    r = expect(rpcall(*a, host.address, "list", "Rides"), 0)
    assert r.out.split() == ["Rides.Start", "Rides.Track"], r
    r = expect(rpcall(*a, host.address, "list", "grpc.testing.TestService"), 0)
    for m in ("EmptyCall", "UnaryCall", "StreamingOutputCall", "StreamingInputCall",
              "FullDuplexCall"):
        assert "grpc.testing.TestService." + m in r.out.split(), (m, r)


def test_describe(host):
    a = conn_args(host)
    r = expect(rpcall(*a, host.address, "describe", "Rides"), 0)
    assert r.out == ("Rides is a service:\n"
                     "service Rides {\n"
                     "  rpc Start ( .StartRequest ) returns ( .StartResponse );\n"
                     "  rpc Track ( stream .TrackRequest ) returns ( .TrackResponse );\n"
                     "}\n"), r
    r = expect(rpcall(*a, host.address, "describe", "StartRequest"), 0)
    assert r.out == ("StartRequest is a message:\n"
                     "message StartRequest {\n"
                     "  int64 car_id = 1;\n"
                     "  string driver_id = 2;\n"
                     "  repeated string passenger_ids = 3;\n"
                     "  .RideType type = 4;\n"
                     "  .Location location = 5;\n"
                     "  .google.protobuf.Timestamp time = 6;\n"
                     "}\n"), r
    r = expect(rpcall(*a, host.address, "describe", "grpc.testing.TestService.FullDuplexCall"), 0,
               out_part="rpc FullDuplexCall ( stream .grpc.testing.StreamingOutputCallRequest ) "
                        "returns ( stream .grpc.testing.StreamingOutputCallResponse );")
    r = expect(rpcall(*a, host.address, "describe", "RideType"), 0, out_part="POOL = 1;")
    r = expect(rpcall(*a, host.address, "describe", "NoSuchSymbol"), 1, "NoSuchSymbol")


def test_rides_start(host):
    a = conn_args(host)
    r = expect(rpcall(*a, host.address, "Rides/Start", "-d", ORIGINAL_JSON), 0)
    rid = r.json()["id"]
    assert len(rid) == 32 and all(c in "0123456789abcdef" for c in rid), r
    # over IPv6 too (the certificate holds ::1)
    r = expect(rpcall(*a, "[::1]:%d" % host.port, "Rides/Start", "-d", ORIGINAL_JSON), 0)
    assert len(r.json()["id"]) == 32, r
    r = expect(rpcall(*a, host.address, "Rides/Start", "-d", '{"car_id": 7}'), 64 + 3)
    assert r.err.strip() == "ERROR: InvalidArgument: driver_id is empty", r


def test_rides_track_pipe(host):
    r = expect(stream_lines(conn_args(host) + [host.address, "Rides/Track", "-d", "@-"],
                            track_lines(7)), 0)
    assert r.json() == {"count": "7"}, r


def read_line(p, timeout):
    """One line of p's stdout within timeout seconds, else None."""
    end = time.time() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
        if not ready:
            break
        ch = os.read(fd, 1)
        if not ch:
            break
        buf += ch
        if ch == b"\n":
            return buf.decode()
    return None


def test_server_stream(host):
    # A response now, then one the server holds for 60 s: the first is
    # printed when it arrives, not at the end of the call. The first line
    # is read long before the second could be sent, whatever the load, so
    # nothing here depends on how fast the machine is.
    req = json.dumps({"responseParameters": [{"size": 3},
                                             {"size": 5, "intervalUs": 60000000}]})
    p = subprocess.Popen([RPCALL] + conn_args(host) + ["--format", "json-lines", host.address,
                         "grpc.testing.TestService/StreamingOutputCall", "-d", req],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = read_line(p, 30)
        still_running = p.poll() is None
    finally:
        p.kill()
        p.wait()
        p.stdout.close()
        p.stderr.close()
    assert first is not None, "the first response was not printed while the call went on"
    assert still_running, "rpcall ended before the second response"
    body = json.loads(first)["payload"]["body"]
    assert len(base64.b64decode(body)) == 3, first


def test_bidi_line_by_line(host):
    # Each request line gets its response before the next line is written.
    p = subprocess.Popen([RPCALL] + conn_args(host) + ["--format", "json-lines", host.address,
                         "grpc.testing.TestService/FullDuplexCall", "-d", "@-"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for size in (1, 2, 3, 4):
            p.stdin.write((json.dumps({"responseParameters": [{"size": size}]}) + "\n").encode())
            p.stdin.flush()
            line = read_line(p, 10)
            assert line is not None, "no response to request %d before the next" % size
            body = json.loads(line)["payload"].get("body", "")
            assert len(base64.b64decode(body)) == size, line
        p.stdin.close()
        assert p.wait(10) == 0, p.stderr.read()
        assert p.stdout.read() == b""
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        for f in (p.stdout, p.stderr):
            f.close()


def test_errors(host):
    a = conn_args(host) + [host.address]
    r = expect(rpcall(*a, "grpc.testing.TestService/UnaryCall", "-d",
                      '{"responseStatus": {"code": 5, "message": "nothing here"}}'), 64 + 5)
    assert r.err.strip() == "ERROR: NotFound: nothing here", r
    r = expect(rpcall(*a, "grpc.testing.TestService/UnimplementedCall", "-d", "{}"), 64 + 12,
               "ERROR: Unimplemented")
    # The deadline must outlast connecting and the reflection lookup on a
    # loaded machine (else rpcall reports the connect timeout, exit 1), and
    # end well before the 30 s the server waits.
    r = expect(rpcall(*a, "--max-time", "3", "grpc.testing.TestService/StreamingOutputCall",
                      "-d", '{"responseParameters": [{"size": 1, "intervalUs": 30000000}]}'),
               64 + 4, "ERROR: DeadlineExceeded")
    r = expect(rpcall(*a, "Rides/Stop", "-d", "{}"), 1, "no method 'Stop'")
    r = expect(rpcall(*a, "Rides/Start", "-d", '{"carId": "seven"}'), 1, "carId")
    # A response larger than --max-msg-size ends the call, it is not printed.
    r = expect(rpcall(*a, "--max-msg-size", "1000", "grpc.testing.TestService/UnaryCall", "-d",
                      '{"responseSize": 5000}'), 64 + 8, "ERROR: ResourceExhausted")
    assert "5005 bytes" in r.err or "larger than the limit of 1000" in r.err, r
    assert r.out == "", r
    # An error status with a message that needs percent-encoding
    msg = "caf\u00e9 100% \u2713"
    r = expect(rpcall(*a, "grpc.testing.TestService/UnaryCall", "-d",
                      json.dumps({"responseStatus": {"code": 9, "message": msg}})), 64 + 9)
    assert r.err.strip() == "ERROR: FailedPrecondition: " + msg, r


def test_metadata(host):
    raw = b"\x00\x01binary\xff"
    b64 = base64.b64encode(raw).decode()
    r = expect(rpcall(*conn_args(host), "-v", "-H", "x-grpc-test-echo-initial: hello",
                      "-H", "x-grpc-test-echo-trailing-bin: " + b64, host.address,
                      "grpc.testing.TestService/EmptyCall", "-d", "{}"), 0)
    head, _, trail = r.err.partition("Response trailers received:")
    assert "x-grpc-test-echo-initial: hello" in head, r
    assert "x-grpc-test-echo-trailing-bin: " + b64.rstrip("=") in trail, r
    assert "grpc-status: 0" in trail, r
    assert r.out.strip() == "{}", r


def test_health(host):
    a = conn_args(host) + [host.address]
    r = expect(rpcall(*a, "grpc.health.v1.Health/Check", "-d", "{}"), 0)
    assert r.json() == {"status": "SERVING"}, r
    r = expect(rpcall(*a, "grpc.health.v1.Health/Check", "-d", '{"service": "Rides"}'), 0)
    assert r.json() == {"status": "SERVING"}, r
    r = expect(rpcall(*a, "grpc.health.v1.Health/Check", "-d", '{"service": "Nope"}'), 64 + 5)


def test_emit_defaults(host):
    a = conn_args(host) + [host.address]
    # A client stream of no messages: count is 0, left out unless asked for.
    r = expect(rpcall(*a, "Rides/Track", "-d", " "), 0)
    assert r.json() == {}, r
    r = expect(rpcall(*a, "--emit-defaults", "Rides/Track", "-d", " "), 0)
    assert r.json() == {"count": "0"}, r


def test_mtls():
    with rt.Host(plugins=PLUGINS, client_ca=True) as host:
        r = expect(rpcall("--cacert", rt.CA, host.address, "Rides/Start", "-d", ORIGINAL_JSON), 1)
        line = one_line_error(r)
        assert "client certificate" in line and "--cert" in line, r
        r = expect(rpcall("--cacert", rt.CA, "--cert", rt.CLIENT_CERT, "--key", rt.CLIENT_KEY,
                          host.address, "Rides/Start", "-d", ORIGINAL_JSON), 0)
        assert len(r.json()["id"]) == 32, r


def test_describe_comments(host):
    """Plugins embed their descriptor sets with source info: describe shows
    the .proto comments (examples/kv-plugin/kv.proto)."""
    a = conn_args(host)
    r = expect(rpcall(*a, host.address, "describe", "kv.v1.KV"), 0)
    assert "kv.v1.KV is a service:\n// The store keeps the latest value of each key" in r.out, r
    assert ("  // Stores value under key and returns the version the write got.\n"
            "  rpc Put ( .kv.v1.PutRequest ) returns ( .kv.v1.PutReply );") in r.out, r
    r = expect(rpcall(*a, host.address, "describe", "kv.v1.Event"), 0)
    assert r.out.startswith("kv.v1.Event is a message:\n// One Put, as a watcher sees it.\n"
                            "message Event {"), r
    r = expect(rpcall(*a, host.address, "describe", "kv.v1.KV.Get"), 0,
               out_part="// NOT_FOUND for a key that was never put.\nrpc Get")


def test_unknown_service(host):
    """A service the server's reflection does not know: the call would be
    UNIMPLEMENTED, and rpcall exits as for that status (64 + 12)."""
    r = expect(rpcall(*conn_args(host), host.address, "no.such.Service/Call", "-d", "{}"), 76,
               "Unimplemented")
    assert "does not know service 'no.such.Service'" in r.err, r


def test_unix_socket():
    import tempfile
    d = tempfile.mkdtemp(prefix="rpcall-unix-")
    sock = os.path.join(d, "rpchost.sock")
    try:
        with rt.Host(plugins=PLUGINS, plaintext=True, args=["--listen", "unix:" + sock]) as host:
            deadline = time.time() + 10
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
            r = expect(rpcall("--plaintext", "unix:" + sock, "Rides/Start", "-d", ORIGINAL_JSON), 0)
            assert len(r.json()["id"]) == 32, r
            # unix: implies plaintext (rpchost serves Unix sockets without TLS).
            r = expect(rpcall("unix:" + sock, "Rides/Start", "-d", ORIGINAL_JSON), 0)
            assert len(r.json()["id"]) == 32, r
            assert host.proc.poll() is None
    finally:
        subprocess.run(["rm", "-rf", d])


def test_bench(host):
    r = expect(rpcall("bench", *conn_args(host), "-c", "16", "--connections", "2", "-n", "400",
                      "--format", "json", host.address, "Rides/Start", "-d", ORIGINAL_JSON), 0)
    rep = r.json()
    assert rep["count"] == 400 and rep["status"] == {"OK": 400}, r
    r = expect(rpcall("bench", *conn_args(host), "-c", "4", "-n", "100", "--format", "json",
                      host.address, "grpc.testing.TestService/StreamingOutputCall", "-d",
                      '{"responseParameters": [{"size": 10}, {"size": 10}, {"size": 10}]}'), 0)
    assert r.json()["messages_in"] == 300, r
    # --rps is a cap: at most rps per second of the run (plus the first call
    # of each of the 4 client threads). No lower bound beyond "calls ran": a
    # loaded machine under ASan may not reach the rate, and that is not a
    # fault of the cap. Without the cap 4 concurrent EmptyCalls make
    # hundreds of calls in 2 s even under ASan.
    r = expect(rpcall("bench", *conn_args(host), "-c", "4", "--duration", "2", "--rps", "20",
                      "--format", "json", host.address, "grpc.testing.TestService/EmptyCall"), 0)
    rep = r.json()
    n, secs = rep["count"], rep["total_s"]
    assert rep["status"] == {"OK": n}, rep
    assert 1 <= n <= 20 * secs + 4 + 1, "--rps 20 for %.2f s made %d calls" % (secs, n)


UNARY = "grpc.testing.TestService/UnaryCall"


def test_compression(host):
    """--compress sends compressed requests (the interop server checks
    expect_compressed), responses are inflated, -v says which encoding."""
    a = conn_args(host)
    body = base64.b64encode(bytes(20000)).decode()
    want = '{"expectCompressed": {"value": true}, "responseSize": 10, "payload": {"body": "%s"}}' % body
    expect(rpcall(*a, host.address, UNARY, "-d", want), 64 + 3, err_part="uncompressed")
    for algo in ("gzip", "deflate"):
        r = expect(rpcall(*a, "--compress", algo, "-v", host.address, UNARY, "-d", want), 0)
        assert "Request grpc-encoding: %s;" % algo in r.err, r
    ask = '{"responseCompressed": {"value": true}, "responseSize": 5000}'
    for accept, algo in ((None, "gzip"), ("deflate", "deflate"), ("identity", None)):
        extra = ["--accept-encoding", accept] if accept else []
        r = expect(rpcall(*a, *extra, "-v", host.address, UNARY, "-d", ask), 0)
        assert len(base64.b64decode(r.json()["payload"]["body"])) == 5000, r
        if algo:
            assert "grpc-encoding: %s\n" % algo in r.err, r
            assert "response grpc-encoding: %s (1 of 1 messages compressed)" % algo in r.err, r
        else:
            assert "response grpc-encoding: identity (0 of 1 messages compressed)" in r.err, r
    expect(rpcall(*a, "--compress", "snappy", host.address, UNARY), 2, err_part="gzip or deflate")
    expect(rpcall(*a, "--accept-encoding", "gzip,br", host.address, UNARY), 2,
           err_part="'br' is not one of")
    r = expect(rpcall("bench", *a, "--compress", "gzip", "-c", "4", "-n", "200", "--format", "json",
                      host.address, UNARY, "-d", want), 0)
    assert r.json()["status"] == {"OK": 200}, r
    r = expect(rpcall("bench", *a, "-c", "4", "-n", "50", "--format", "json", host.address, UNARY,
                      "-d", ask), 0)
    assert r.json()["status"] == {"OK": 50}, r


def test_bench_interrupt(host):
    # Ctrl-C ends a --duration run early with the report of what was done.
    import signal
    import sqlite3
    db = os.path.join(host.tmp, "rides.db")  # the rides plugin's default

    def stored():
        con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM rides").fetchone()[0]
        finally:
            con.close()
    before = stored()
    p = subprocess.Popen([RPCALL, "bench"] + conn_args(host) + ["-c", "4", "--duration", "60",
                         "--format", "json", host.address, "Rides/Start", "-d", ORIGINAL_JSON],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupted once calls were answered, not after a guessed time: with 4
    # calls in flight, 8 stored rides mean at least 4 answers reached rpcall.
    rt.wait_until(lambda: p.poll() is not None or stored() >= before + 8,
                  "rides stored by the bench", timeout=60)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, (out, err)
    rep = json.loads(out)
    assert rep["count"] > 0 and rep["status"] == {"OK": rep["count"]}, rep
    assert rep["total_s"] < 30, rep


def main():
    res = rt.Results()
    for name, plaintext in (("tls", False), ("h2c", True)):
        with rt.Host(plugins=PLUGINS, plaintext=plaintext) as host:
            res.run(name + ": list", test_list, host)
            res.run(name + ": describe", test_describe, host)
            res.run(name + ": describe shows .proto comments", test_describe_comments, host)
            res.run(name + ": unknown service: Unimplemented, exit 76", test_unknown_service,
                    host)
            res.run(name + ": Rides/Start", test_rides_start, host)
            res.run(name + ": Rides/Track through a pipe", test_rides_track_pipe, host)
            res.run(name + ": server stream printed as it arrives", test_server_stream, host)
            res.run(name + ": bidi stream line by line", test_bidi_line_by_line, host)
            res.run(name + ": error statuses and exit codes", test_errors, host)
            res.run(name + ": metadata and -v", test_metadata, host)
            res.run(name + ": health", test_health, host)
            res.run(name + ": --emit-defaults", test_emit_defaults, host)
            res.run(name + ": bench smoke", test_bench, host)
            res.run(name + ": --compress, --accept-encoding, -v", test_compression, host)
            res.run(name + ": bench stopped by Ctrl-C", test_bench_interrupt, host)
    res.run("mTLS", test_mtls)
    res.run("Unix socket", test_unix_socket)
    res.finish()


if __name__ == "__main__":
    main()
