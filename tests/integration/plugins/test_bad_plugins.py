"""Bad plugins are refused with one log line naming the file and the
reason, at start-up and when added live, while the other plugins keep
answering (the interop service when it is built, and the Swap test
service)."""
import os
import re
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../hotops"))

import grpc  # noqa: E402

import hotlib  # noqa: E402
from hotlib import rt, install, version, wait_log, Load  # noqa: E402

HAVE_INTEROP = os.path.exists(os.path.join(rt.PLUGIN_BUILD_DIR, "interop.so"))

# file name in the plugin dir -> (test plugin or None for raw bytes, reason)
CASES = {
    "abi2.so": ("swap_abi2", r"built for rpchost ABI 2\.0, this host speaks ABI 1\.\d+ .*"
                             r"rebuild the plugin against rpchost ABI 1\.x"),
    "badinit.so": ("badinit", r"its init failed"),
    "junk.so": (None, r"not a shared object"),
    "nosym.so": ("nosym", r"exports no 'rpchost_plugin'"),
    "zz-dup.so": ("swapdup", r"method /rpchost\.test\.Swap/\w+ is already served by plugin swap"),
}


def put(h, dest, plugin):
    if plugin is None:
        path = os.path.join(h.plugin_dir, dest)
        with open(path, "w") as f:
            f.write("#!/bin/sh\necho this is not a plugin\n")
    else:
        install(h, plugin, dest)


def check_others_serve(h):
    ch = h.channel()
    assert version(ch) == "1"
    if HAVE_INTEROP:
        empty = rt.proto_module("grpc/testing/empty.proto")
        rt.unary(ch, "/grpc.testing.TestService/EmptyCall", empty.Empty(), empty.Empty,
                 timeout=5)
    ch.close()


def check_one_line_each(h):
    logs = h.logs()
    for dest, (_, reason) in CASES.items():
        lines = [l for l in logs.splitlines() if "refused" in l and "/" + dest + " " in l]
        assert len(lines) == 1, "%s: %d refusal lines:\n%s" % (dest, len(lines), logs)
        assert re.search(reason, lines[0]), "%s: %r does not say %r" % (dest, lines[0], reason)
    assert "BUG: constructor" not in logs


def case_at_startup():
    d = tempfile.mkdtemp(prefix="rpchost-bad-")
    try:
        shutil.copyfile(hotlib.test_plugin("swap_v1"), os.path.join(d, "swap.so"))
        if HAVE_INTEROP:
            shutil.copyfile(os.path.join(rt.PLUGIN_BUILD_DIR, "interop.so"),
                            os.path.join(d, "interop.so"))
        for dest, (plugin, _) in CASES.items():
            if plugin is None:
                with open(os.path.join(d, dest), "w") as f:
                    f.write("#!/bin/sh\necho this is not a plugin\n")
            else:
                shutil.copyfile(hotlib.test_plugin(plugin), os.path.join(d, dest))
        with rt.Host(plugins=[], plugin_dir=d) as h:
            wait_log(h, r"plugin swap 1 loaded")
            check_others_serve(h)
            check_one_line_each(h)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def case_added_live():
    with rt.Host(plugins=["interop"] if HAVE_INTEROP else []) as h:
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        with Load(h, n=8) as load:
            time.sleep(0.2)
            for dest, (plugin, _) in CASES.items():
                put(h, dest, plugin)
                wait_log(h, re.escape("/" + dest) + r" refused")
            load.wait_ok(50)
            load.stop()
        load.assert_clean(min_ok=50)
        assert set(load.versions) == {"1"}
        check_others_serve(h)
        check_one_line_each(h)


if __name__ == "__main__":
    res = rt.Results()
    res.run("refused_at_startup", case_at_startup)
    res.run("refused_when_added_live", case_added_live)
    res.finish()
