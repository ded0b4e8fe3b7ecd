"""A plugin may answer and release a call after the host's workers stopped.

review_hold keeps a reference on each Keep call and answers it only from its
fini (as a plugin with a background queue answers what is left when it is
stopped). On SIGTERM the drain timeout cancels the held calls, the workers
stop, then fini runs and calls send/finish/call_unref: the host must take
that (the calls were cancelled: RH_E_CANCELLED) and exit 0 with nothing
reported by the sanitizers."""
import os
import shutil
import sys
import time

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test  # noqa: E402

results = rpchost_test.Results()
HOLD_DIR = os.path.join(rpchost_test.SOURCE_DIR, "tests/plugins/review_hold")
pb = rpchost_test.proto_module("review_hold.proto", extra_paths=[HOLD_DIR])
CONFIG = "[rpchost]\ndrain_timeout_ms = 300\n"


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def held_calls_then_stop(n, plugins=("review_hold",)):
    h = rpchost_test.Host(plugins=list(plugins), plaintext=True, config=CONFIG)
    errors = []
    try:
        ch = h.channel()
        keep = ch.unary_unary("/rpchost.review.Hold/Keep",
                              request_serializer=pb.Req.SerializeToString,
                              response_deserializer=pb.Resp.FromString)
        futures = [keep.future(pb.Req(text=str(i)), timeout=30) for i in range(n)]
        h.wait_log(r"holding call %d\b" % n, timeout=30)  # every call reached the handler
        code = h.stop()
        for f in futures:
            try:
                f.result(timeout=10)
                errors.append("a held call got an answer")
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED):
                    errors.append("held call ended with %s" % e.code())
        ch.close()
        logs = h.logs()
    finally:
        h.stop()
        h.log.close()
        shutil.rmtree(h.tmp, ignore_errors=True)
    expect(code == 0, "rpchost exited with %s:\n%s" % (code, logs[-4000:]))
    expect("AddressSanitizer" not in logs and "runtime error" not in logs,
           "sanitizer report:\n%s" % logs[-4000:])
    expect(logs.count("fini answered a held call: send -125 finish -125") == n,
           "fini saw RH_E_CANCELLED for each held call:\n%s" % logs[-2000:])
    expect(not errors, "; ".join(errors))


results.run("fini answers 1 held call after the workers stopped: exit 0", held_calls_then_stop, 1)
results.run("fini answers 20 held calls after the workers stopped: exit 0",
            held_calls_then_stop, 20)
# testsvc loads after review_hold, so it is finalised (and freed) first:
# the held calls' snapshot, released from review_hold's fini, still names it.
results.run("fini answers held calls, another plugin finalised before: exit 0",
            held_calls_then_stop, 3, ("review_hold", "testsvc"))
results.finish()
