"""Crash containment through real clients: a plugin that faults (SIGSEGV,
SIGBUS, SIGFPE, SIGILL, abort, stack overflow, a fault on its own thread,
a fault in init on a hot add or replace) never takes the started process
down; each crash is one log line naming plugin, signal and method; the
third crash within a minute quarantines the plugin (UNAVAILABLE, health
NOT_SERVING, admin QUARANTINED) until its file is replaced or the admin
reloads it; interop clients barely notice."""
import os
import re

import grpc

import crashlib as cl
from crashlib import rt

FAULTS = [  # (how, signal in the log line, served by a worker's call?)
    ("segv", "SIGSEGV", True),
    ("bus", "SIGBUS", True),
    ("fpe", "SIGFPE", True),
    ("ill", "SIGILL", True),
    ("abort", "SIGABRT", True),
    ("stack", "SIGSEGV", True),
    ("thread", "SIGSEGV", False),
]
NO_QUARANTINE = "[rpchost]\ncrash_quarantine = off\n"


def case_each_fault_is_contained_and_attributed():
    with rt.Host(plugins=["interop"], config=NO_QUARANTINE) as h:
        cl.install(h, "crashy_v1")
        ch = h.channel()
        cl.wait_ok(ch, "1")
        first_child = cl.serving_pid(h.proc.pid)
        for n, (how, sig, in_call) in enumerate(FAULTS, 1):
            code, details = cl.crash(ch, how)
            assert code == grpc.StatusCode.UNAVAILABLE, (how, code, details)
            line = cl.wait_crash_lines(h, n)[n - 1]
            assert "plugin crashy 1 (" in line and "crashy.so" in line, line
            assert re.search(r"build id [0-9a-f]{40}", line), line
            assert sig in line, (sig, line)
            if in_call:
                assert "serving /rpchost.test.Crashy/Crash for ipv" in line, line
                assert "in a worker thread" in line, line
            else:
                assert "in a thread the plugin started" in line, line
            # the faulting code, as an offset addr2line resolves
            m = re.search(r"addr2line -e (\S+) (0x[0-9a-f]+)", line)
            assert m, line
            assert h.proc.poll() is None, "the started process exited"
            cl.wait_ok(ch, "1")
        assert cl.serving_pid(h.proc.pid) != first_child


def case_quarantine_under_load_and_replace_lifts():
    sock = os.path.join("/tmp", "rpchost-crash-%d.sock" % os.getpid())
    with rt.Host(plugins=["interop"], args=["--admin-socket", sock]) as h:
        cl.install(h, "crashy_v1")
        ch = h.channel()
        cl.wait_ok(ch, "1")
        pid = h.proc.pid
        with cl.InteropLoad(h, n=4) as load:
            load.wait_calls(200)
            for n in (1, 2, 3):
                code, _ = cl.crash(ch, "segv")
                assert code == grpc.StatusCode.UNAVAILABLE, code
                cl.wait_crash_lines(h, n)
                if n < 3:
                    cl.wait_ok(ch, "1")
            cl.wait_until("quarantine logged",
                          lambda: "plugin crashy 1" in h.logs() and
                          re.search(r"plugin crashy 1 \(\S+\) quarantined: crashed the serving "
                                    r"process 3 times within 60 s", h.logs()))
            # calls get UNAVAILABLE at once, naming the plugin and why
            code, details = cl.wait_until(
                "Crashy quarantined",
                lambda: (lambda r: r if r[0] == grpc.StatusCode.UNAVAILABLE and
                         "quarantined" in r[1] else None)(cl.crash(ch, "ok", timeout=5)))
            assert "plugin crashy 1 is quarantined" in details, details
            assert "3 times within 60 s" in details, details
            load.wait_calls(load.total() + 2500)
            load.stop()
        assert h.proc.poll() is None and h.proc.pid == pid
        total = load.ok + len(load.failures)
        assert len(load.failures) <= total // 100, load.report()
        new_total = load.new_conn_ok + len(load.new_conn_failures)
        assert load.new_conn_ok > 0, load.report()
        assert len(load.new_conn_failures) <= max(3, new_total // 100), load.report()
        print("   ", load.report())
        NS = cl.health_pb2.HealthCheckResponse.NOT_SERVING
        SERVING = cl.health_pb2.HealthCheckResponse.SERVING
        assert cl.health(ch, cl.SERVICE) == NS
        assert cl.health(ch, "grpc.testing.TestService") == SERVING
        admin = cl.admin_channel(sock)
        plugins = cl.list_plugins(admin)
        q = [p for p in plugins if p.name == "crashy"]
        assert len(q) == 1, plugins
        q = q[0]
        assert q.state == cl.admin_pb2.PLUGIN_STATE_QUARANTINED, q
        assert q.crash_count == 3, q
        assert "SIGSEGV" in q.last_crash and "/rpchost.test.Crashy/Crash" in q.last_crash, q
        assert "3 times within 60 s" in q.quarantine_reason, q
        assert list(q.services) == [cl.SERVICE], q
        assert q.last_crash_unix_ms > 0 and re.fullmatch(r"[0-9a-f]{40}", q.build_id), q
        interop = [p for p in plugins if p.name == "interop"][0]
        assert interop.crash_count == 0 and interop.state == cl.admin_pb2.PLUGIN_STATE_SERVING
        # a new build in its place lifts the quarantine
        cl.install(h, "crashy_v2")
        cl.wait_ok(ch, "2")
        assert cl.health(ch, cl.SERVICE) == SERVING
        q = [p for p in cl.list_plugins(admin) if p.name == "crashy"]
        assert len(q) == 1 and q[0].state == cl.admin_pb2.PLUGIN_STATE_SERVING, q
        assert q[0].crash_count == 0 and q[0].version == "2", q
        admin.close()


def case_admin_reload_lifts_quarantine():
    sock = os.path.join("/tmp", "rpchost-crash-r%d.sock" % os.getpid())
    with rt.Host(plugins=[], args=["--admin-socket", sock],
                 config="[rpchost]\ncrash_quarantine = 1/60s\n") as h:
        cl.install(h, "crashy_v1")
        ch = h.channel()
        cl.wait_ok(ch, "1")
        assert cl.crash(ch, "abort")[0] == grpc.StatusCode.UNAVAILABLE
        code, details = cl.wait_until(
            "Crashy quarantined",
            lambda: (lambda r: r if "quarantined" in r[1] else None)(cl.crash(ch, "ok", 5)))
        assert code == grpc.StatusCode.UNAVAILABLE and "1 times within 60 s" in details, details
        admin = cl.admin_channel(sock)
        rt.unary(admin, "/rpchost.admin.v1.Admin/ReloadPlugin",
                 cl.admin_pb2.ReloadPluginRequest(name="crashy"), cl.admin_pb2.PluginResponse,
                 timeout=10)
        cl.wait_ok(ch, "1")
        assert "quarantine of its build lifted (reloaded by the admin service)" in h.logs()
        admin.close()


def case_init_crash_on_add_and_on_replace():
    with rt.Host(plugins=["interop"]) as h:
        ch = h.channel()
        pid = h.proc.pid
        # hot add of a build whose init faults: refused, nothing else moves
        cl.install(h, "crashy_initcrash")
        cl.wait_until("init crash refused",
                      lambda: "3-initcrash (" in h.logs() and "crashed in its init" in h.logs())
        cl.wait_until("Crashy unimplemented",
                      lambda: cl.crash(ch, "ok", 2)[0] == grpc.StatusCode.UNIMPLEMENTED)
        line = cl.crash_lines(h)[0]
        assert "crashed in its init: SIGSEGV" in line and "in the control thread" in line, line
        assert "addr2line" in line, line
        # a good build, then a replacement whose init faults: the good one stays
        cl.install(h, "crashy_v1")
        cl.wait_ok(ch, "1")
        cl.install(h, "crashy_initcrash")
        cl.wait_crash_lines(h, 2)
        # (the first crash may come from the first serving process's own
        # start-up scan, before anything was kept: count restarts, not
        # restored builds)
        cl.wait_until("restart", lambda: len(re.findall(r"ready [\d.]+ ms after the previous "
                                                        r"one died", h.logs())) >= 2, host=h)
        assert cl.wait_ok(ch) == "1"
        assert len(cl.crash_lines(h)) == 2, cl.crash_lines(h)  # refused, not retried
        r = rt.unary(ch, cl.UNARY, cl.msgs.SimpleRequest(response_size=4), cl.msgs.SimpleResponse,
                     timeout=10)
        assert len(r.payload.body) == 4
        cl.install(h, "crashy_v2")
        cl.wait_ok(ch, "2")
        assert h.proc.poll() is None and h.proc.pid == pid


def case_quarantined_interceptor_fails_closed():
    with rt.Host(plugins=["interop"], config="[rpchost]\ncrash_quarantine = 1/60s\n") as h:
        cl.install(h, "crashgate", "crashgate.so")
        cl.wait_until("gate loaded", lambda: "plugin crashgate 1 loaded" in h.logs())
        ch = h.channel()
        req = cl.msgs.SimpleRequest(response_size=4)

        def interop(md=()):
            try:
                rt.unary(ch, cl.UNARY, req, cl.msgs.SimpleResponse, timeout=5, metadata=md)
                return grpc.StatusCode.OK, ""
            except grpc.RpcError as e:
                return e.code(), e.details()
        assert interop()[0] == grpc.StatusCode.OK
        assert interop((("x-crash", "1"),))[0] == grpc.StatusCode.UNAVAILABLE
        line = cl.wait_crash_lines(h, 1)[0]
        assert "plugin crashgate 1" in line and "serving /grpc.testing.TestService/UnaryCall" in line
        # an auth-like check that cannot run must not let calls through
        code, details = cl.wait_until(
            "calls refused", lambda: (lambda r: r if "quarantined" in r[1] else None)(interop()))
        assert code == grpc.StatusCode.UNAVAILABLE, code
        assert "plugin crashgate 1 is quarantined" in details, details
        # the operator removes it: calls pass again
        os.unlink(os.path.join(h.plugin_dir, "crashgate.so"))
        cl.wait_until("calls pass", lambda: interop()[0] == grpc.StatusCode.OK)


def case_sighup_reload_survives_restart():
    """A configuration reloaded by SIGHUP is what a restarted serving
    process starts with; the PID the operator signals stays the same."""
    swap_pb2 = rt.proto_module("swap.proto",
                               extra_paths=[os.path.join(rt.SOURCE_DIR, "tests/plugins/hotswap")])

    def greeting(ch):
        return rt.unary(ch, "/rpchost.test.Swap/Version", swap_pb2.VersionRequest(),
                        swap_pb2.VersionReply, timeout=5).greeting
    with rt.Host(plugins=[], config="[plugin.swap]\ngreeting = before\n") as h:
        cl.install(h, "swap_v1", "swap.so")
        cl.install(h, "crashy_v1")
        ch = h.channel()
        cl.wait_ok(ch, "1")
        cl.wait_until("swap serves", lambda: greeting(ch) == "before")
        with open(h.config_path, "w") as f:
            f.write("[plugin.swap]\ngreeting = after\n")
        h.signal(__import__("signal").SIGHUP)
        cl.wait_until("reloaded", lambda: greeting(ch) == "after")
        assert cl.crash(ch, "segv")[0] == grpc.StatusCode.UNAVAILABLE
        cl.wait_crash_lines(h, 1)
        cl.wait_ok(ch, "1")
        assert greeting(ch) == "after"
        assert h.proc.poll() is None


if __name__ == "__main__":
    res = rt.Results()
    res.run("each_fault_is_contained_and_attributed", case_each_fault_is_contained_and_attributed)
    res.run("quarantine_under_load_and_replace_lifts", case_quarantine_under_load_and_replace_lifts)
    res.run("admin_reload_lifts_quarantine", case_admin_reload_lifts_quarantine)
    res.run("init_crash_on_add_and_on_replace", case_init_crash_on_add_and_on_replace)
    res.run("quarantined_interceptor_fails_closed", case_quarantined_interceptor_fails_closed)
    res.run("sighup_reload_survives_restart", case_sighup_reload_survives_restart)
    res.finish()
