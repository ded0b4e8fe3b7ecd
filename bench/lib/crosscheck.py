"""Cross-check of `rpcall bench` against h2load on the same server and
load point: both figures side by side in the report."""
import os
import subprocess


def available(rpcall):
    if not rpcall or not os.path.exists(rpcall):
        return False
    r = subprocess.run([rpcall, "bench", "--help"], capture_output=True, timeout=10)
    return r.returncode == 0


def run(bench):
    sc = "x. rpcall bench cross-check"
    if not available(bench.args.rpcall):
        bench.skip(sc, "no `rpcall bench` in %s yet" % (bench.args.rpcall or "build/bin/rpcall"))
        return
    bench.skip(sc, "rpcall bench exists but this harness does not drive it yet")
