"""Shared parts of the authlog integration tests: a tokens file made with
the real scripts/rpchost-token, a host with authlog + interop (+ rides when
it is built), method callables and log readers."""
import hashlib
import json
import os
import re
import subprocess
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

messages = rpchost_test.proto_module("grpc/testing/messages.proto")
empty_pb2 = rpchost_test.proto_module("grpc/testing/empty.proto")
health_pb2 = rpchost_test.proto_module("grpc/health/v1/health.proto")

RIDES_DIR = os.path.join(rpchost_test.SOURCE_DIR, "plugins", "rides")
HAVE_RIDES = os.path.exists(os.path.join(rpchost_test.PLUGIN_BUILD_DIR, "rides.so"))
rides_pb2 = rpchost_test.proto_module("rides.proto", [RIDES_DIR]) if HAVE_RIDES else None

TOKEN_TOOL = os.path.join(rpchost_test.SOURCE_DIR, "scripts", "rpchost-token")
SVC = "/grpc.testing.TestService/"
TIMEOUT = 20  # every call is bounded in time

# Who may call what in the tests' tokens file.
PRINCIPALS = {
    "alice": ["/Rides/Start", SVC + "UnaryCall", SVC + "StreamingOutputCall"],
    "bob": ["/Rides/Track", SVC + "EmptyCall"],
    "dave": ["/Rides/*", SVC + "*"],
}
# The dev client certificate of certs/gen-key, mapped by SAN.
CERT_SAN = "URI:spiffe://rpchost.dev/dev-client"
CERT_PRINCIPAL = "certguy"
CERT_METHODS = [SVC + "*"]


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def add_token(path, principal, methods):
    """Runs scripts/rpchost-token add; returns the token it printed."""
    out = subprocess.run([TOKEN_TOOL, "add", principal] + list(methods) + ["--file", path],
                         check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    token = out.stdout.decode().strip()
    expect(re.fullmatch(r"[A-Za-z0-9_-]{43}", token), "tool printed %r" % token)
    with open(path) as f:
        text = f.read()
    expect(token not in text, "the token itself is in the tokens file")
    expect(hashlib.sha256(token.encode()).hexdigest() in text, "the token's hash is not in the file")
    return token


def remove_token(path, principal):
    subprocess.run([TOKEN_TOOL, "remove", principal, "--file", path], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)


def make_tokens(tmpdir, cert=True):
    """A tokens file with PRINCIPALS (and the certificate mapping); returns
    (path, {principal: token})."""
    path = os.path.join(tmpdir, "tokens")
    with open(path, "w") as f:
        f.write("# authlog integration test tokens\n")
        if cert:
            f.write("san:%s %s %s\n" % (CERT_SAN, CERT_PRINCIPAL, " ".join(CERT_METHODS)))
    tokens = {p: add_token(path, p, m) for p, m in PRINCIPALS.items()}
    return path, tokens


def config(tokens_file, log_file=None, log_format="json", interceptors="authlog.auth, authlog.log",
           extra="", rides=True):
    lines = ["[rpchost]", "interceptors = " + interceptors, "", "[plugin.authlog]",
             "tokens_file = " + tokens_file, "log_format = " + log_format]
    if log_file:
        lines.append("log_file = " + log_file)
    lines.append(extra)
    return "\n".join(lines) + "\n"


def plugins(*more):
    names = ["authlog", "interop"] + list(more)
    if HAVE_RIDES:
        names.append("rides")
    return names


def md(token):
    return [("authorization", "Bearer " + token)] if token is not None else None


def auth_md(value):
    return [("authorization", value)]


# --- calls -----------------------------------------------------------------

def unary_call(ch, metadata=None, size=10):
    fn = rpchost_test.stub(ch, "unary_unary", SVC + "UnaryCall", messages.SimpleResponse)
    return fn(messages.SimpleRequest(response_size=size, payload=messages.Payload(body=b"q" * 5)),
              metadata=metadata, timeout=TIMEOUT)


def empty_call(ch, metadata=None):
    fn = rpchost_test.stub(ch, "unary_unary", SVC + "EmptyCall", empty_pb2.Empty)
    return fn(empty_pb2.Empty(), metadata=metadata, timeout=TIMEOUT)


def output_call(ch, metadata=None):
    fn = rpchost_test.stub(ch, "unary_stream", SVC + "StreamingOutputCall",
                           messages.StreamingOutputCallResponse)
    req = messages.StreamingOutputCallRequest(
        response_parameters=[messages.ResponseParameters(size=s) for s in (3, 4)])
    return list(fn(req, metadata=metadata, timeout=TIMEOUT))


def rides_start(ch, metadata=None):
    fn = rpchost_test.stub(ch, "unary_unary", "/Rides/Start", rides_pb2.StartResponse)
    req = rides_pb2.StartRequest(car_id=7, driver_id="Bond", passenger_ids=["M", "Q"])
    return fn(req, metadata=metadata, timeout=TIMEOUT)


def rides_track(ch, metadata=None, n=3):
    fn = rpchost_test.stub(ch, "stream_unary", "/Rides/Track", rides_pb2.TrackResponse)
    reqs = [rides_pb2.TrackRequest(car_id=7) for _ in range(n)]
    return fn(iter(reqs), metadata=metadata, timeout=TIMEOUT)


def health_check(ch, metadata=None):
    fn = rpchost_test.stub(ch, "unary_unary", "/grpc.health.v1.Health/Check",
                           health_pb2.HealthCheckResponse)
    return fn(health_pb2.HealthCheckRequest(service=""), metadata=metadata, timeout=TIMEOUT)


def status_of(fn, *args, **kw):
    """(code, details) of a call; (OK, None) when it succeeded."""
    try:
        fn(*args, **kw)
    except grpc.RpcError as e:
        return e.code(), e.details()
    return grpc.StatusCode.OK, None


def expect_status(got, code, details=None, contains=None):
    expect(got[0] == code, "status %s (%r), want %s" % (got[0], got[1], code))
    if details is not None:
        expect(got[1] == details, "message %r, want %r" % (got[1], details))
    if contains is not None:
        expect(got[1] and contains in got[1], "message %r does not name %r" % (got[1], contains))


# --- logs --------------------------------------------------------------------

def read_json_lines(*paths):
    out = []
    for p in paths:
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for n, line in enumerate(f, 1):
                expect(line.endswith("\n"), "%s line %d is not terminated" % (p, n))
                out.append(json.loads(line))
    return out


def count_lines(*paths):
    n = 0
    for p in paths:
        if os.path.exists(p):
            with open(p, "rb") as f:
                n += f.read().count(b"\n")
    return n


TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z) (?P<method>/\S+) took "
    r"(?P<seconds>\d+\.\d{6})sec status=(?P<status>[A-Z_]+) peer=(?P<peer>\S+) "
    r"principal=(?P<principal>\S+) in=(?P<bytes_in>\d+) out=(?P<bytes_out>\d+)"
    r"(?: in_uncompressed=(?P<bytes_in_uncompressed>\d+)"
    r" out_uncompressed=(?P<bytes_out_uncompressed>\d+))?"
    r"(?: message=\"(?P<message>[^\"]*)\")?$")


def wait_until(cond, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()
