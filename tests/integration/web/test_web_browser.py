"""A real browser against rpchost: Debian's chromium, headless, driven by
puppeteer-core, loads a page (bundled with esbuild from browser/page.js)
that calls Rides.Start through Connect (JSON and binary) and gRPC-Web with
the @connectrpc client libraries, and the interop large_unary and
server_streaming cases through gRPC-Web. The page comes from another
origin (https://127.0.0.1:PORT against https://localhost:PORT, served by
request interception), so every call
is cross-origin: CORS preflights and headers are exercised by the browser
itself. TLS: the browser trusts the server key by its SPKI hash.

The npm packages are installed with `npm ci` (versions locked by
browser/package-lock.json) into <build>/web-browser-deps, once. Without
chromium, node or npm, or when npm cannot fetch the packages, the test
reports itself skipped (exit 77)."""
import fcntl
import filecmp
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

from web_common import rpchost_test  # noqa: I100 (sets the import path)
from web_common import TOKEN, expect, host, wait_for

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.join(HERE, "browser")
DEPS = os.path.join(rpchost_test.BUILD_DIR, "web-browser-deps")
# The page's origin: https://127.0.0.1:PORT while the calls go to
# https://localhost:PORT, so they are cross-origin (CORS) yet stay in the
# loopback address space (Chromium's Local Network Access). The page
# itself never leaves the browser (request interception).
ORIGIN = "https://127.0.0.1:%d"
results = rpchost_test.Results()


def skip(why):
    print("skip: %s" % why, flush=True)
    sys.exit(SKIP)


def ensure_deps():
    tools = {t: shutil.which(t) for t in ("node", "npm", "chromium")}
    missing = [t for t, p in tools.items() if not p]
    if missing:
        skip("%s needed for the browser test" % ", ".join(missing))
    os.makedirs(DEPS, exist_ok=True)
    with open(os.path.join(DEPS, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time
        stamp = os.path.join(DEPS, "package-lock.json")
        ready = (os.path.isdir(os.path.join(DEPS, "node_modules", "puppeteer-core"))
                 and os.path.exists(stamp)
                 and filecmp.cmp(stamp, os.path.join(SRC, "package-lock.json"), shallow=False))
        if not ready:
            for f in ("package.json", "package-lock.json"):
                shutil.copyfile(os.path.join(SRC, f), os.path.join(DEPS, f))
            r = subprocess.run([tools["npm"], "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                               cwd=DEPS, capture_output=True, text=True, timeout=300)
            if r.returncode != 0:
                skip("npm ci failed (network?): %s" % r.stderr.strip()[-300:])
    return tools


def bundle(tools, out_dir):
    out = os.path.join(out_dir, "page.bundle.js")
    esbuild = os.path.join(DEPS, "node_modules", ".bin", "esbuild")
    r = subprocess.run([esbuild, os.path.join(SRC, "page.js"), "--bundle", "--format=iife",
                        "--target=es2020", "--outfile=" + out],
                       cwd=DEPS, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, NODE_PATH=os.path.join(DEPS, "node_modules")))
    expect(r.returncode == 0, "esbuild: %s" % r.stderr[-500:])
    return out


def spki_hash():
    """base64(SHA-256(SubjectPublicKeyInfo)) of the server key."""
    pub = subprocess.run(["openssl", "pkey", "-in", rpchost_test.SERVER_KEY, "-pubout",
                          "-outform", "DER"], capture_output=True, check=True, timeout=30).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(pub).digest()).decode()


def browser_calls(tools, h, bundle_path, tmp):
    user_dir = tempfile.mkdtemp(prefix="chromium-", dir=tmp)
    cmd = [tools["node"], os.path.join(SRC, "run.js"), tools["chromium"], ORIGIN % h.port,
           "https://localhost:%d" % h.port, spki_hash(), bundle_path, TOKEN, user_dir]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, NODE_PATH=os.path.join(DEPS, "node_modules")))
    expect(r.returncode == 0, "browser run failed: %s" % (r.stderr[-1500:] or r.stdout[-500:]))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    print("browser: %s" % out, flush=True)
    return out


def main():
    tools = ensure_deps()
    tmp = tempfile.mkdtemp(prefix="rpchost-browser-")
    bundle_path = bundle(tools, tmp)
    port = rpchost_test.free_port()
    with host("cors_origins = " + ORIGIN % port, port=port) as h:
        out = {}

        def run():
            out.update(browser_calls(tools, h, bundle_path, tmp))
        results.run("chromium loads the page and calls rpchost", run)
        for proto in ("connect-json", "connect-proto", "grpc-web"):
            def check(proto=proto):
                expect(re.fullmatch(r"[0-9a-f]{32}", out.get(proto + " start", "")),
                       "%s Start: %r" % (proto, out.get(proto + " start")))
                expect(out.get(proto + " empty driver") == "3:driver_id is empty",
                       "%s empty driver_id: %r" % (proto, out.get(proto + " empty driver")))
                expect(out.get(proto + " no token", "").startswith("16:"),
                       "%s without a token: %r" % (proto, out.get(proto + " no token")))
            results.run("Rides.Start through %s" % proto, check)
        results.run("interop large_unary through gRPC-Web",
                    lambda: expect(out.get("interop large_unary") == 314159, "%r" % out))
        results.run("interop server_streaming through gRPC-Web",
                    lambda: expect(out.get("interop server_streaming") == "31415,9,2653,58979",
                                   "%r" % out))
        results.run("access log: browser calls by protocol",
                    lambda: wait_for(lambda: "protocol=connect" in h.logs() and
                                     "protocol=grpc-web" in h.logs(),
                                     "access log lines of the browser's calls"))
    shutil.rmtree(tmp, ignore_errors=True)
    results.finish()


if __name__ == "__main__":
    main()
