"""The interop cases through Node's @grpc/grpc-js, a second client
independent of grpcio's C core, over TLS (dev CA) and h2c.

@grpc/grpc-js and @grpc/proto-loader are installed with `npm ci` (versions
locked by node/package-lock.json) into <build>/node-deps, once; nothing is
installed into the source tree. Without node/npm, or when npm cannot fetch
the packages, the test reports itself skipped (exit 77)."""
import fcntl
import filecmp
import os
import shutil
import subprocess
import sys

import interop_cases  # noqa: F401  (sets up the lib path)
import rpchost_test

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
NODE_SRC = os.path.join(HERE, "node")
DEPS = os.path.join(rpchost_test.BUILD_DIR, "node-deps")


def skip(why):
    print("skip: %s" % why, flush=True)
    sys.exit(SKIP)


def ensure_deps():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        skip("node and npm are needed for the @grpc/grpc-js client")
    os.makedirs(DEPS, exist_ok=True)
    with open(os.path.join(DEPS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        stamp = os.path.join(DEPS, "package-lock.json")
        ready = (os.path.isdir(os.path.join(DEPS, "node_modules", "@grpc", "grpc-js"))
                 and os.path.exists(stamp)
                 and filecmp.cmp(stamp, os.path.join(NODE_SRC, "package-lock.json"), shallow=False))
        if not ready:
            for f in ("package.json", "package-lock.json"):
                shutil.copyfile(os.path.join(NODE_SRC, f), os.path.join(DEPS, f))
            r = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                               cwd=DEPS, capture_output=True, text=True, timeout=240)
            if r.returncode != 0:
                skip("npm ci of @grpc/grpc-js failed (network?): %s" % r.stderr.strip()[-300:])
    return node


def run_client(node, host, label):
    cmd = [node, os.path.join(NODE_SRC, "interop_client.js"), "--address", host.address,
           "--label", label]
    cmd += ["--plaintext"] if host.plaintext else ["--ca", rpchost_test.CA]
    env = dict(os.environ, NODE_PATH=os.path.join(DEPS, "node_modules"))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    print(r.stdout, end="", flush=True)
    if r.stderr.strip():
        print(r.stderr, file=sys.stderr, flush=True)
    return r.returncode


node = ensure_deps()
status = 0
for plaintext in (False, True):
    with rpchost_test.Host(plugins=["interop"], plaintext=plaintext) as h:
        if run_client(node, h, "node h2c" if plaintext else "node tls") != 0:
            status = 1
sys.exit(status)
