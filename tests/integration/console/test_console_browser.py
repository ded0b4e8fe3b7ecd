"""The operator console in a real browser: Debian's chromium, headless,
driven by puppeteer-core (browser/drive.js) against /console/ served by
rpchost itself. It is refused admin data without a token and with a token
that lacks the admin permission, signs in with an admin token (Enter in
input[name=token]), sees the shipped plugins, watches EmptyCall's count
rise in the traffic view while a grpcio client calls it, makes a unary call
from the services browser, sees the recent errors and health, reloads a
plugin (confirmed in a dialog), and fits a phone's width. Every request
the page makes must go to the origin that served it. Screenshots of each
view are kept in <build>/console-screenshots.

puppeteer-core comes from the web protocols' browser test's locked npm
packages (installed once into <build>/web-browser-deps). Without chromium,
node or npm, or when npm cannot fetch the packages: skipped (exit 77)."""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "web"))
import test_web_browser as wb  # noqa: E402 (the npm install and SPKI helpers)
from web_common import rpchost_test as rt  # noqa: E402

import interop_cases as ic  # noqa: E402

ADMIN_TOKEN = "console-admin-token"
USER_TOKEN = "console-user-token"
SHOTS = os.path.join(rt.BUILD_DIR, "console-screenshots")
results = rt.Results()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def host(tmp):
    tokens = os.path.join(tmp, "tokens")
    with open(tokens, "w") as f:
        f.write("%s ops * admin\n" % hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest())
        f.write("%s alice *\n" % hashlib.sha256(USER_TOKEN.encode()).hexdigest())
    config = "\n".join([
        "[rpchost]",
        "interceptors = authlog.auth",
        "admin_principals = ops",
        "",
        "[plugin.authlog]",
        "tokens_file = " + tokens,
        "",
    ])
    return rt.Host(plugins=("authlog", "interop"), config=config,
                   args=["--metrics-listen", "127.0.0.1:%d" % rt.free_port()])


def main():
    tools = wb.ensure_deps()
    tmp = tempfile.mkdtemp(prefix="rpchost-console-")
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS)
    with host(tmp) as h:
        ch = h.channel()
        md = (("authorization", "Bearer " + ADMIN_TOKEN),)
        # one failed call for the errors view
        try:
            ic.unary_call(ch)(ic.messages.SimpleRequest(
                response_status=ic.messages.EchoStatus(code=5, message="no such ride")),
                timeout=ic.TIMEOUT, metadata=md)
        except Exception:
            pass
        stop = threading.Event()

        def caller():
            empty = ic.empty_call(ch)
            end = time.monotonic() + 150
            while not stop.is_set() and time.monotonic() < end:
                empty(ic.empty_pb2.Empty(), timeout=ic.TIMEOUT, metadata=md)
                time.sleep(0.01)
        t = threading.Thread(target=caller)
        t.start()
        out = {}
        try:
            cmd = [tools["node"], os.path.join(HERE, "browser", "drive.js"), tools["chromium"],
                   "https://localhost:%d" % h.port, wb.spki_hash(), ADMIN_TOKEN, USER_TOKEN,
                   SHOTS, tempfile.mkdtemp(prefix="chromium-", dir=tmp)]
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=240,
                               env=dict(os.environ, NODE_PATH=os.path.join(wb.DEPS, "node_modules")))
            lines = r.stdout.strip().splitlines()
            out = json.loads(lines[-1]) if lines else {}
            print("browser: %s" % json.dumps(out)[:3000], flush=True)
            if r.returncode != 0:
                print(r.stderr[-3000:], flush=True)
        finally:
            stop.set()
            t.join()

        results.run("the browser went through every view",
                    lambda: expect(not out.get("failed") and r.returncode == 0,
                                   "failed at %s: %s" % (out.get("steps", ["?"])[-1:],
                                                         out.get("failed"))))
        results.run("no request left the page's origin",
                    lambda: expect(out.get("foreign") == [], "foreign: %r" % out.get("foreign")))
        results.run("no script error on the page",
                    lambda: expect(not out.get("pageErrors"), "%r" % out.get("pageErrors")))
        results.run("refused without a token", lambda: expect(
            str(out.get("noToken", "")).startswith("unauthenticated "), "%r" % out.get("noToken")))
        results.run("refused with a non-admin token", lambda: expect(
            str(out.get("userToken", "")).startswith("permission_denied "),
            "%r" % out.get("userToken")))
        results.run("no admin data shown before signing in",
                    lambda: expect(out.get("adminVisibleAfterRefusal") == 0, "%r" % out))
        results.run("signed in: the shipped plugins listed", lambda: expect(
            {"interop", "authlog", "admin", "health", "reflection"} <= set(out.get("plugins", [])),
            "%r" % out.get("plugins")))
        results.run("the token is kept for the tab only",
                    lambda: expect(out.get("tokenStorage") == [True, 0], "%r" % out.get("tokenStorage")))
        results.run("EmptyCall's traffic rose", lambda: expect(
            len(out.get("traffic", [])) == 2 and out["traffic"][1] >= out["traffic"][0] + 20,
            "%r" % out.get("traffic")))
        results.run("unary call from the services browser", lambda: expect(
            out.get("call", [None])[0] == "ok" and "AAAAAAAAAA" in out["call"][1],
            "%r" % out.get("call")))
        results.run("recent errors listed", lambda: expect(
            "/grpc.testing.TestService/UnaryCall NotFound" in out.get("errors", []),
            "%r" % out.get("errors")))
        results.run("health", lambda: expect(out.get("health") == "SERVING", "%r" % out.get("health")))
        results.run("reload confirmed and done", lambda: (
            expect(out.get("reload", "").startswith("Reloaded interop"), "%r" % out.get("reload")),
            rt.wait_until(lambda: "plugin interop" in h.logs() and "replaced" in h.logs(),
                          "the host's log of the replace")))
        results.run("fits a phone's width", lambda: expect(out.get("phoneFits"), "%r" % out))
        for view in ("signin-refused", "plugins", "traffic", "services", "errors", "health",
                     "plugins-phone"):
            results.run("screenshot of %s" % view, lambda v=view: expect(
                os.path.getsize(os.path.join(SHOTS, v + ".png")) > 1000, v))
    shutil.rmtree(tmp, ignore_errors=True)
    results.finish()


if __name__ == "__main__":
    main()
