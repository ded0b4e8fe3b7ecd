"""The gRPC protocol layer through Debian's grpcio, over TLS (server
certificate checked against the dev CA), h2c, mTLS and a Unix socket:
routing, limits, deadlines, cancellation, metadata, status, interceptors,
answers from other threads and timers."""
import os
import signal
import tempfile
import threading
import time

import grpc

import core_lib as cl
from core_lib import expect, pb
import rpchost_test

results = rpchost_test.Results()
MSG = "not here: 100% \u263a \U0001f608\r\n"


def fails(fn, code, details=None):
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, "status %s (%r), want %s" % (e.code(), e.details(), code))
        if details is not None:
            expect(details in (e.details() or ""), "message %r lacks %r" % (e.details(), details))
        return e
    raise AssertionError("call succeeded, want %s" % code)


def case_echo(ch, h):
    r = cl.echo(ch)(pb.Req(text="hello", size=1000), timeout=cl.TIMEOUT)
    expect(r.text == "hello" and len(r.payload) == 1000, "echo answer %r" % (r.text,))
    expect(r.method == cl.SVC + "Echo", "method %r" % r.method)
    expect(r.peer.startswith(("ipv4:127.0.0.1:", "ipv6:[::1]:")), "peer %r" % r.peer)
    r = cl.echo(ch)(pb.Req(text="no deadline"))
    expect(r.deadline_left_ms == -1, "no deadline, got %d" % r.deadline_left_ms)


def case_deadline_visible(ch, h):
    r = cl.echo(ch)(pb.Req(text="d"), timeout=10)
    # grpcio rounds the timeout it sends up a little
    expect(5000 < r.deadline_left_ms <= 10500, "deadline_left_ms %d" % r.deadline_left_ms)


def case_streams(ch, h):
    st = ch.unary_stream(cl.SVC + "Stream", request_serializer=pb.Req.SerializeToString,
                         response_deserializer=pb.Resp.FromString)
    got = [r.value for r in st(pb.Req(count=50, size=3000), timeout=cl.TIMEOUT)]
    expect(got == list(range(50)), "server stream %r" % got[:5])
    col = ch.stream_unary(cl.SVC + "Collect", request_serializer=pb.Req.SerializeToString,
                          response_deserializer=pb.Resp.FromString)
    r = col(iter([pb.Req(text="ab")] * 300), timeout=cl.TIMEOUT)
    expect(r.value == 300 and r.text == "600", "collect %d %s" % (r.value, r.text))
    r = col(iter([]), timeout=cl.TIMEOUT)
    expect(r.value == 0, "empty client stream %d" % r.value)
    bidi = ch.stream_stream(cl.SVC + "Bidi", request_serializer=pb.Req.SerializeToString,
                            response_deserializer=pb.Resp.FromString)
    got = [r.text for r in bidi(iter([pb.Req(text=str(i)) for i in range(100)]),
                                timeout=cl.TIMEOUT)]
    expect(got == [str(i) for i in range(100)], "bidi %r" % got[:5])
    # status after some responses
    e = fails(lambda: list(st(pb.Req(count=3, code=9, message="stop"), timeout=cl.TIMEOUT)),
              grpc.StatusCode.FAILED_PRECONDITION, "stop")
    expect(e is not None, "")


def case_receive_limit(ch, h):
    limit = 4 << 20
    # the serialized Req is the text plus 5 bytes of tag and length
    fails(lambda: cl.echo(ch)(pb.Req(text="x" * (limit - 4)), timeout=cl.TIMEOUT),
          grpc.StatusCode.RESOURCE_EXHAUSTED, "larger than max (4194305 vs. 4194304)")
    col = ch.stream_unary(cl.SVC + "Collect", request_serializer=pb.Req.SerializeToString,
                          response_deserializer=pb.Resp.FromString)
    r = col(iter([pb.Req(text="x" * (limit - 5))]), timeout=cl.TIMEOUT)
    expect(r.text == str(limit - 5), "a message exactly at the limit passes")
    # the send limit: a response over 4 MiB is refused with a clear status
    fails(lambda: cl.echo(ch)(pb.Req(text="y", size=limit), timeout=cl.TIMEOUT),
          grpc.StatusCode.RESOURCE_EXHAUSTED, "exceeds the send limit")


def case_unimplemented(ch, h):
    fails(lambda: rpchost_test.unary(ch, cl.SVC + "Nope", pb.Req(), pb.Resp, timeout=cl.TIMEOUT),
          grpc.StatusCode.UNIMPLEMENTED, "unknown method Nope for service rpchost.testsvc.TestSvc")
    fails(lambda: rpchost_test.unary(ch, "/no.Such/Thing", pb.Req(), pb.Resp, timeout=cl.TIMEOUT),
          grpc.StatusCode.UNIMPLEMENTED, "unknown service no.Such")


def case_deadline(ch, h):
    before = cl.stats(ch)
    t = time.time()
    fails(lambda: cl.hang(ch)(pb.Req(), timeout=0.3), grpc.StatusCode.DEADLINE_EXCEEDED)
    expect(time.time() - t < 5, "deadline took %.1fs" % (time.time() - t))
    cl.wait_for(lambda: cl.stats(ch).cancels == before.cancels + 1, "on_cancel after the deadline")
    s = cl.stats(ch)
    expect(s.last_method == cl.SVC + "Hang", "on_end saw %r" % s.last_method)
    expect(s.last_status in (4, 1), "on_end status %d" % s.last_status)


def case_client_cancel(ch, h):
    before = cl.stats(ch).cancels
    fut = cl.hang(ch).future(pb.Req(), timeout=cl.TIMEOUT)
    time.sleep(0.2)
    fut.cancel()
    cl.wait_for(lambda: cl.stats(ch).cancels == before + 1, "on_cancel after the client's RST")
    s = cl.stats(ch)
    expect(s.last_status == 1, "on_end status %d, want CANCELLED" % s.last_status)


def case_metadata(ch, h):
    binval = bytes(range(256))
    md = (("x-text", "plain value"), ("x-blob-bin", binval), ("x-empty-bin", b""))
    call = cl.echo(ch).with_call(pb.Req(text="m", echo_metadata=True), metadata=md,
                                 timeout=cl.TIMEOUT)
    r, c = call
    init = dict(c.initial_metadata())
    trail = dict(c.trailing_metadata())
    for k, v in md:
        expect(init.get(k) == v, "initial %s = %r, want %r" % (k, init.get(k), v))
        expect(trail.get(k) == v, "trailing %s = %r, want %r" % (k, trail.get(k), v))


def case_trailers_only(ch, h):
    fut = cl.echo(ch).future(pb.Req(code=5, message=MSG), metadata=(("x-a", "1"),),
                             timeout=cl.TIMEOUT)
    e = fut.exception()
    expect(e is not None and e.code() == grpc.StatusCode.NOT_FOUND, "status %r" % (e,))
    expect(e.details() == MSG, "message %r, want %r" % (e.details(), MSG))
    # A status without a message
    fails(lambda: cl.echo(ch)(pb.Req(code=3), timeout=cl.TIMEOUT), grpc.StatusCode.INVALID_ARGUMENT)


def case_interceptor(ch, h):
    before = cl.stats(ch)
    fails(lambda: cl.echo(ch)(pb.Req(text="no"), metadata=(("x-reject", "7"),), timeout=cl.TIMEOUT),
          grpc.StatusCode.PERMISSION_DENIED, "rejected by testsvc.gate")
    s = cl.stats(ch)
    expect(s.handler_runs == before.handler_runs, "the handler ran for a rejected call")
    expect(s.last_status == 7, "on_end saw status %d" % s.last_status)
    r = cl.echo(ch)(pb.Req(text="p"), metadata=(("x-principal", "alice"),), timeout=cl.TIMEOUT)
    expect(r.principal == "alice", "principal %r" % r.principal)
    r = cl.echo(ch)(pb.Req(text="q" * 100, size=50), timeout=cl.TIMEOUT)
    s = cl.stats(ch)
    expect(s.last_status == 0 and s.last_msgs_in == 1 and s.last_msgs_out == 1,
           "stats %r" % s)
    expect(s.last_bytes_in == len(pb.Req(text="q" * 100, size=50).SerializeToString()) + 5,
           "bytes_in %d" % s.last_bytes_in)
    expect(s.last_bytes_out == len(r.SerializeToString()) + 5, "bytes_out %d" % s.last_bytes_out)


def case_other_thread_and_timer(ch, h):
    r = cl.echo(ch)(pb.Req(text="t", from_thread=True, size=10), timeout=cl.TIMEOUT)
    expect(r.text == "t" and len(r.payload) == 10, "answer from a plugin thread")
    t = time.time()
    r = cl.echo(ch)(pb.Req(text="l", delay_ms=200), timeout=cl.TIMEOUT)
    expect(r.text == "l" and time.time() - t >= 0.19, "call_later answer")
    # A thread that answers after the client gave up: harmless
    fails(lambda: cl.echo(ch)(pb.Req(text="late", delay_ms=500), timeout=0.1),
          grpc.StatusCode.DEADLINE_EXCEEDED)
    time.sleep(0.6)
    cl.echo(ch)(pb.Req(text="still"), timeout=cl.TIMEOUT)


def run_all(label, h, ch):
    for name, fn in [("echo", case_echo), ("deadline visible", case_deadline_visible),
                     ("streams", case_streams), ("receive limit", case_receive_limit),
                     ("unimplemented", case_unimplemented), ("deadline + on_cancel", case_deadline),
                     ("client cancel", case_client_cancel), ("metadata incl -bin", case_metadata),
                     ("trailers-only error", case_trailers_only), ("interceptor", case_interceptor),
                     ("other thread and timer", case_other_thread_and_timer)]:
        results.run("%s %s" % (label, name), fn, ch, h)


with rpchost_test.Host(plugins=["testsvc"]) as h:
    ch = h.channel()
    run_all("tls", h, ch)

    def ipv6_peer():
        ch6 = h.channel(target="[::1]:%d" % h.port)
        r = cl.echo(ch6)(pb.Req(text="6"), timeout=cl.TIMEOUT)
        expect(r.peer.startswith("ipv6:[::1]:"), "peer %r" % r.peer)
        ch6.close()
    results.run("tls ipv6 peer", ipv6_peer)

    def no_mtls_identity():
        r = cl.echo(ch)(pb.Req(text="x"), timeout=cl.TIMEOUT)
        expect(r.subject == "" and not r.sans, "no client certificate, no subject")
    results.run("tls without client-ca: no peer identity", no_mtls_identity)

    def reload_tls():
        start = h.log_size()
        h.signal(signal.SIGHUP)
        h.wait_log(r"tls: reloaded certificate", start=start)
        ch2 = h.channel()
        cl.echo(ch2)(pb.Req(text="after reload"), timeout=cl.TIMEOUT)
        cl.echo(ch)(pb.Req(text="old connection"), timeout=cl.TIMEOUT)
        ch2.close()
    results.run("tls SIGHUP reload keeps serving", reload_tls)
    ch.close()

with rpchost_test.Host(plugins=["testsvc"], plaintext=True) as h:
    ch = h.channel()
    run_all("h2c", h, ch)
    ch.close()

with rpchost_test.Host(plugins=["testsvc"], client_ca=True) as h:
    def mtls_identity():
        ch = h.channel(client_cert=True)
        r = cl.echo(ch)(pb.Req(text="m"), timeout=cl.TIMEOUT)
        expect("CN=dev-client" in r.subject, "subject %r" % r.subject)
        expect("URI:spiffe://rpchost.dev/dev-client" in r.sans and "DNS:dev-client" in r.sans,
               "sans %r" % list(r.sans))
        ch.close()
    results.run("mtls client certificate seen by the plugin", mtls_identity)

    def mtls_refused():
        ch = h.channel(client_cert=False)
        fails(lambda: cl.echo(ch)(pb.Req(), timeout=5), grpc.StatusCode.UNAVAILABLE)
        ch.close()
        ch = h.channel(client_cert=True)
        cl.echo(ch)(pb.Req(text="ok"), timeout=cl.TIMEOUT)
        ch.close()
    results.run("mtls client without a certificate refused", mtls_refused)

with rpchost_test.Host(plugins=["testsvc"], client_ca=True, args=["--client-cert-optional"]) as h:
    def mtls_optional():
        """Certificate optional: a client without one is served with no peer
        identity; one with a certificate is identified by it."""
        ch = h.channel(client_cert=False)
        r = cl.echo(ch)(pb.Req(text="anon"), timeout=cl.TIMEOUT)
        expect(r.subject == "" and len(r.sans) == 0, "anonymous peer has identity %r" % r.subject)
        ch.close()
        ch = h.channel(client_cert=True)
        r = cl.echo(ch)(pb.Req(text="m"), timeout=cl.TIMEOUT)
        expect("CN=dev-client" in r.subject, "subject %r" % r.subject)
        ch.close()
    results.run("mtls optional: with and without a client certificate", mtls_optional)

def reload_new_certificate():
    """SIGHUP loads the certificate files again: new connections get the new
    certificate, connections already open keep working."""
    import shutil
    import subprocess
    tmp = tempfile.mkdtemp(prefix="rpchost-reload-")
    try:
        cert, key = os.path.join(tmp, "server.pem"), os.path.join(tmp, "server-key.pem")
        shutil.copy(rpchost_test.SERVER_CERT, cert)
        shutil.copy(rpchost_test.SERVER_KEY, key)
        other = os.path.join(tmp, "other")
        subprocess.run([os.path.join(rpchost_test.SOURCE_DIR, "certs/gen-key"), other],
                       check=True, stderr=subprocess.DEVNULL)
        with rpchost_test.Host(plugins=["testsvc"], args=["--cert", cert, "--key", key]) as h:
            def chan(ca):
                with open(ca, "rb") as f:
                    creds = grpc.ssl_channel_credentials(root_certificates=f.read())
                return grpc.secure_channel("localhost:%d" % h.port, creds)
            old = chan(rpchost_test.CA)
            cl.echo(old)(pb.Req(text="before"), timeout=cl.TIMEOUT)
            # replace the files atomically, then SIGHUP
            for name in ("server.pem", "server-key.pem"):
                shutil.copy(os.path.join(other, name), os.path.join(tmp, name + ".new"))
                os.rename(os.path.join(tmp, name + ".new"), os.path.join(tmp, name))
            h.signal(signal.SIGHUP)
            cl.wait_for(lambda: "reloaded certificate" in h.logs(), "the reload log line")
            new = chan(os.path.join(other, "ca.pem"))
            cl.echo(new)(pb.Req(text="new ca"), timeout=cl.TIMEOUT)
            stale = chan(rpchost_test.CA)
            fails(lambda: cl.echo(stale)(pb.Req(), timeout=5), grpc.StatusCode.UNAVAILABLE)
            cl.echo(old)(pb.Req(text="old connection"), timeout=cl.TIMEOUT)
            for c in (old, new, stale):
                c.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


results.run("tls SIGHUP serves the new certificate to new connections", reload_new_certificate)

sock_dir = tempfile.mkdtemp(prefix="rpchost-sock-")
sock = os.path.join(sock_dir, "h2c.sock")
with rpchost_test.Host(plugins=["testsvc"], args=["--listen", "unix:" + sock]) as h:
    def unix_socket():
        uch = grpc.insecure_channel("unix:" + sock)
        r = cl.echo(uch)(pb.Req(text="u"), timeout=cl.TIMEOUT)
        expect(r.peer == "unix:" + sock, "peer %r" % r.peer)
        uch.close()
        # TLS on the TCP port at the same time
        ch = h.channel()
        cl.echo(ch)(pb.Req(text="tcp"), timeout=cl.TIMEOUT)
        ch.close()
    results.run("unix socket h2c beside TLS", unix_socket)
results.run("unix socket removed at stop", lambda: expect(not os.path.exists(sock), "socket left"))
os.rmdir(sock_dir) if os.path.isdir(sock_dir) else None
results.finish()
