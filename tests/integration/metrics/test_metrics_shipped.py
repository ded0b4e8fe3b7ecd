"""The shipped plugins' series: authlog's decisions by result and dropped
log lines, rides' group-commit batch histogram and writer queue depth,
exact after known calls."""
import os
import shutil
import tempfile

import grpc

import authlog_common as ac
import metrics_lib as ml
from metrics_lib import expect, value

results = ml.rpchost_test.Results()


def authlog_and_rides():
    tmp = tempfile.mkdtemp(prefix="rpchost-mx-shipped-")
    try:
        tokens_file, tokens = ac.make_tokens(tmp, cert=False)
        cfg = ac.config(tokens_file) + "\n[plugin.rides]\ndb = %s\n" % os.path.join(tmp, "rides.db")
        with ml.MetricsHost(plugins=["authlog", "interop", "rides"], plaintext=True,
                            config=cfg) as h:
            ch = h.channel()
            try:
                for _ in range(3):
                    ac.unary_call(ch, ac.md(tokens["alice"]))
                for _ in range(2):
                    ac.rides_start(ch, ac.md(tokens["alice"]))
                ac.expect_status(ac.status_of(ac.unary_call, ch), grpc.StatusCode.UNAUTHENTICATED)
                ac.expect_status(ac.status_of(ac.unary_call, ch, ac.md("x" * 43)),
                                 grpc.StatusCode.UNAUTHENTICATED)
                ac.expect_status(ac.status_of(ac.unary_call, ch, ac.md(tokens["bob"])),
                                 grpc.StatusCode.PERMISSION_DENIED)
            finally:
                ch.close()
            s = h.scrape()
            for result, want in (("allow", 5), ("exempt", 0), ("missing_token", 1),
                                 ("invalid_token", 1), ("denied", 1)):
                got = value(s, "authlog_decisions_total", result=result)
                expect(got == want, "authlog %s: %s, want %d" % (result, got, want))
            expect(value(s, "authlog_log_lines_dropped_total") == 0, "dropped")
            # two Starts: two jobs in one or two commits, answered after them
            expect(value(s, "rides_commit_batch_jobs_sum") == 2, "jobs committed %s"
                   % value(s, "rides_commit_batch_jobs_sum"))
            n = value(s, "rides_commit_batch_jobs_count")
            expect(n in (1, 2), "commits %s" % n)
            expect(value(s, "rides_commit_batch_jobs_bucket", le="2") == n, "le=2")
            expect(value(s, "rides_writer_queued_jobs") == 0, "queue drained")
            # the host's view of the same calls
            un = ml.method_labels("UnaryCall", "unary")
            expect(value(s, "grpc_server_handled_total", grpc_code="Unauthenticated", **un) == 2,
                   "host Unauthenticated")
            expect(value(s, "grpc_server_handled_total", grpc_code="PermissionDenied", **un) == 1,
                   "host PermissionDenied")
            st = dict(grpc_type="unary", grpc_service="Rides", grpc_method="Start")
            expect(value(s, "grpc_server_handled_total", grpc_code="OK", **st) == 2, "Rides Start")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if not ac.HAVE_RIDES:
    raise SystemExit(77)
results.run("authlog decisions and rides commits", authlog_and_rides)
results.finish()
