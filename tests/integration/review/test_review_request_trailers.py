"""Client trailers are not request metadata.

gRPC requests carry their metadata in the request headers; a client that
ends its stream with a trailing HEADERS block must not add to (or change)
what the handler already may be reading from another thread: not the
metadata list, not the deadline. Before the fix, trailers went through the
request-header path: "x-late" appeared as request metadata after the call
started, and a trailing grpc-timeout changed the deadline the plugin sees
(deadline_ns) without arming the timer that enforces it."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))
import core_lib as cl  # noqa: E402
from core_lib import RawH2, expect, grpc_body, pb, status_of  # noqa: E402
import rpchost_test  # noqa: E402

results = rpchost_test.Results()


def trailers_ignored(h, tls):
    r = RawH2(h, tls)
    r.grpc_headers(1, cl.SVC + "Echo", extra=[("x-early", "1")])
    r.data(1, grpc_body(pb.Req(text="t", echo_metadata=True).SerializeToString()))
    r.headers(1, [("x-late", "2"), ("grpc-timeout", "10S")], end_stream=True)
    st = r.response(1)
    http, code, msg = status_of(st)
    expect(http == "200" and code == 0, "status %r %r %r" % (http, code, msg))
    resp = pb.Resp.FromString(st["data"][5:])
    allh = {}
    for x in st["headers"]:
        allh.update(x)
    expect(allh.get("x-early") == "1", "request metadata echoed: %r" % allh)
    expect("x-late" not in allh, "a client trailer became request metadata: %r" % allh)
    expect(resp.deadline_left_ms == -1,
           "a client trailer set the deadline the plugin sees: %d ms" % resp.deadline_left_ms)
    r.close()


for tls in (False, True):
    with rpchost_test.Host(plugins=["testsvc"], plaintext=not tls) as h:
        results.run("%s: client trailers are not request metadata" % ("tls" if tls else "h2c"),
                    trailers_ignored, h, tls)
results.finish()
