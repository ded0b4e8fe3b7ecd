"""authlog.auth through a real host: every status for an interop method and
a Rides method (unary and streaming), malformed authorization values, mTLS
certificate mapping, exempt methods (health needs no token), and the
`exempt` key."""
import random
import shutil
import string
import tempfile

import grpc

import authlog_common as ac
from authlog_common import expect, expect_status, status_of
import rpchost_test

OK = grpc.StatusCode.OK
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
DENIED = grpc.StatusCode.PERMISSION_DENIED
MISSING = "missing bearer token"
JUNK_FITS = 7400  # authorization value bytes that fit the host's 8 KiB header limit
INVALID = "invalid token"


def check_statuses(host, tokens):
    ch = host.channel()
    try:
        cases = [
            ("interop UnaryCall", ac.unary_call, "alice", "bob", ac.SVC + "UnaryCall"),
            ("interop StreamingOutputCall", ac.output_call, "alice", "bob",
             ac.SVC + "StreamingOutputCall"),
            ("interop EmptyCall", ac.empty_call, "bob", "alice", ac.SVC + "EmptyCall"),
        ]
        if ac.HAVE_RIDES:
            cases += [("Rides/Start", ac.rides_start, "alice", "bob", "/Rides/Start"),
                      ("Rides/Track", ac.rides_track, "bob", "alice", "/Rides/Track")]
        else:
            print("  (rides.so not built: Rides cases not run)", flush=True)
        for label, fn, allowed, refused, path in cases:
            expect_status(status_of(fn, ch), UNAUTH, MISSING)
            expect_status(status_of(fn, ch, ac.md("not-a-known-token")), UNAUTH, INVALID)
            expect_status(status_of(fn, ch, ac.md(tokens[refused])), DENIED, contains=path)
            got = status_of(fn, ch, ac.md(tokens[refused]))
            expect(refused in got[1], "%s: message %r does not name %s" % (label, got[1], refused))
            expect_status(status_of(fn, ch, ac.md(tokens[allowed])), OK)
            expect_status(status_of(fn, ch, ac.md(tokens["dave"])), OK)  # /Service/*
        # the response really came from the service
        resp = ac.unary_call(ch, ac.md(tokens["alice"]), size=33)
        expect(len(resp.payload.body) == 33, "payload %d bytes" % len(resp.payload.body))
        if ac.HAVE_RIDES:
            rid = ac.rides_start(ch, ac.md(tokens["alice"])).id
            expect(len(rid) == 32, "ride id %r" % rid)
            expect(ac.rides_track(ch, ac.md(tokens["bob"]), n=5).count == 5, "Track count")
    finally:
        ch.close()


def check_malformed(host, tokens):
    ch = host.channel()
    try:
        for fn in (ac.unary_call, ac.rides_start) if ac.HAVE_RIDES else (ac.unary_call,):
            # no scheme, another scheme, empty token: missing. ("Bearer "
            # with its trailing blank never reaches a plugin: HTTP/2 forbids
            # blanks at the ends of a field value, and the stream is reset.)
            for value in (tokens["alice"], "Basic dXNlcjpwYXNz", "Bearer", "Bearertoken",
                          "bearer", "x"):
                expect_status(status_of(fn, ch, ac.auth_md(value)), UNAUTH, MISSING)
            # scheme in any case is fine
            expect_status(status_of(fn, ch, ac.auth_md("bEaReR " + tokens["dave"])), OK)
            # not token68, two tokens, a hash of the token instead of the token
            for value in ("Bearer a b", "Bearer \"%s\"" % tokens["dave"], "Bearer ===",
                          "Bearer " + tokens["dave"] + " " + tokens["dave"],
                          "Bearer " + ac.hashlib.sha256(tokens["dave"].encode()).hexdigest()):
                expect_status(status_of(fn, ch, ac.auth_md(value)), UNAUTH, INVALID)
            # junk as large as the host's metadata limit lets through (8 KiB
            # for all request headers): printable, as grpcio sends nothing else
            rng = random.Random(4)
            size = JUNK_FITS
            junk = "x" + "".join(rng.choice(string.printable[:94] + " ") for _ in range(size - 2)) + "x"
            expect_status(status_of(fn, ch, ac.auth_md(junk)), UNAUTH, MISSING)
            expect_status(status_of(fn, ch, ac.auth_md("Bearer " + junk[7:])), UNAUTH, INVALID)
            long_token = "".join(rng.choice(string.ascii_letters) for _ in range(size - 7))
            expect_status(status_of(fn, ch, ac.auth_md("Bearer " + long_token)), UNAUTH, INVALID)
            # a full 8 KiB of it: the host refuses the headers first, clearly
            got = status_of(fn, ch, ac.auth_md("Bearer " + "A" * 8192))
            expect_status(got, grpc.StatusCode.RESOURCE_EXHAUSTED, contains="metadata")
        # the connection is still fine after all that
        expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])), OK)
    finally:
        ch.close()


def check_exempt_default(host, tokens):
    ch = host.channel()
    try:
        expect_status(status_of(ac.health_check, ch), OK)
        expect_status(status_of(ac.health_check, ch, ac.md("junk")), OK)
        expect_status(status_of(ac.health_check, ch, ac.md(tokens["bob"])), OK)
        # reflection is exempt too (any answer but UNAUTHENTICATED will do:
        # the call reached the service)
        refl = rpchost_test.proto_module("grpc/reflection/v1/reflection.proto")
        fn = rpchost_test.stub(ch, "stream_stream",
                               "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
                               refl.ServerReflectionResponse)
        try:
            list(fn(iter([refl.ServerReflectionRequest(list_services="")]), timeout=ac.TIMEOUT))
        except grpc.RpcError as e:
            expect(e.code() not in (UNAUTH, DENIED), "reflection refused: %s" % e)
    finally:
        ch.close()


def check_mtls(host, tokens):
    ch = host.channel(client_cert=True)
    try:
        # the certificate maps to certguy: the interop service, not Rides
        expect_status(status_of(ac.unary_call, ch), OK)
        expect_status(status_of(ac.empty_call, ch), OK)
        if ac.HAVE_RIDES:
            expect_status(status_of(ac.rides_start, ch), DENIED, contains="/Rides/Start")
            got = status_of(ac.rides_start, ch)
            expect(ac.CERT_PRINCIPAL in got[1], "message %r" % got[1])
            # a token decides alone, even next to a mapped certificate
            expect_status(status_of(ac.rides_start, ch, ac.md(tokens["alice"])), OK)
        expect_status(status_of(ac.unary_call, ch, ac.md("nope")), UNAUTH, INVALID)
        # exempt methods still work, attributed to the certificate
        expect_status(status_of(ac.health_check, ch), OK)
    finally:
        ch.close()


def check_unmapped_certificate(tmp_tokens_host):
    host, tokens = tmp_tokens_host
    ch = host.channel(client_cert=True)
    try:
        expect_status(status_of(ac.unary_call, ch), UNAUTH, MISSING)
        expect_status(status_of(ac.unary_call, ch, ac.md(tokens["alice"])), OK)
    finally:
        ch.close()


def check_exempt_configured(tokens_file, tokens):
    cfg = ac.config(tokens_file, extra="exempt = %sEmptyCall" % ac.SVC)
    with rpchost_test.Host(plugins=ac.plugins(), config=cfg) as h:
        ch = h.channel()
        try:
            expect_status(status_of(ac.empty_call, ch), OK)
            expect_status(status_of(ac.unary_call, ch), UNAUTH, MISSING)
            # health is no longer exempt: the list replaces the default
            expect_status(status_of(ac.health_check, ch), UNAUTH, MISSING)
            expect_status(status_of(ac.health_check, ch, ac.md(tokens["dave"])), DENIED,
                          contains="/grpc.health.v1.Health/Check")
        finally:
            ch.close()
    cfg = ac.config(tokens_file, extra="exempt = none")
    with rpchost_test.Host(plugins=ac.plugins(), config=cfg) as h:
        ch = h.channel()
        try:
            expect_status(status_of(ac.health_check, ch), UNAUTH, MISSING)
        finally:
            ch.close()


def check_bad_config(tokens_file):
    """A bad [plugin.authlog] value: the plugin is refused with one line
    naming the key; the host and its other plugins keep serving."""
    cfg = ac.config(tokens_file, log_format="xml", interceptors="authlog.auth")
    with rpchost_test.Host(plugins=ac.plugins(), config=cfg) as h:
        ch = h.channel()
        try:
            # no authlog: the interop service answers without a token
            ac.wait_until(lambda: "log_format = xml" in h.logs(), 5)
            expect("log_format = xml: use text or json" in h.logs(),
                   "no clear line about log_format:\n" + h.logs())
            expect_status(status_of(ac.unary_call, ch), OK)
        finally:
            ch.close()


results = rpchost_test.Results()
tmp = tempfile.mkdtemp(prefix="authlog-auth-")
try:
    tokens_file, tokens = ac.make_tokens(tmp)
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file)) as host:
        results.run("statuses for interop and Rides methods", check_statuses, host, tokens)
        results.run("malformed authorization values", check_malformed, host, tokens)
        results.run("health and reflection need no token", check_exempt_default, host, tokens)
    # --client-ca: the host requires a client certificate on every connection
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file),
                           client_ca=True) as host:
        results.run("mTLS certificate mapped to a principal", check_mtls, host, tokens)
    tokens_file2 = tokens_file + "-nocert"
    with open(tokens_file2, "w") as f:
        f.write("".join(line for line in open(tokens_file) if not line.startswith("san:")))
    with rpchost_test.Host(plugins=ac.plugins(), config=ac.config(tokens_file2),
                           client_ca=True) as host:
        results.run("unmapped client certificate needs a token", check_unmapped_certificate,
                    (host, tokens))
    results.run("exempt = ... replaces the default list", check_exempt_configured,
                tokens_file, tokens)
    results.run("bad config value refused with a clear line", check_bad_config, tokens_file)
finally:
    shutil.rmtree(tmp, ignore_errors=True)
results.finish()
