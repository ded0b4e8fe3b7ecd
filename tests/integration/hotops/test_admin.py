"""The admin service through a real client: list, reload, unload, load;
PERMISSION_DENIED without admin rights; allowed on the Unix admin socket."""
import os
import time

import grpc

import hotlib
from hotlib import rt, install, version, wait_log

admin_pb2 = rt.proto_module("rpchost/admin/v1/admin.proto")
SVC = "/rpchost.admin.v1.Admin/"
ADMIN_MD = (("x-test-principal", "root"),)
CONFIG = "[rpchost]\nadmin_principals = ops, root\n"


def call(ch, method, req, resp_cls, md=ADMIN_MD):
    return rt.unary(ch, SVC + method, req, resp_cls, timeout=10, metadata=md)


def list_plugins(ch, md=ADMIN_MD):
    return call(ch, "ListPlugins", admin_pb2.ListPluginsRequest(),
                admin_pb2.ListPluginsResponse, md).plugins


def by_name(plugins, name, state=admin_pb2.PLUGIN_STATE_SERVING):
    hits = [p for p in plugins if p.name == name and p.state == state]
    assert len(hits) == 1, "%s: %s" % (name, plugins)
    return hits[0]


def expect_code(code, fn, *args):
    try:
        fn(*args)
    except grpc.RpcError as e:
        assert e.code() == code, "%s: %s" % (e.code(), e.details())
        return e
    raise AssertionError("expected %s" % code)


def case_list_reload_unload_load():
    with rt.Host(plugins=[], config=CONFIG) as h:
        install(h, "testauth", "testauth.so")
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        wait_log(h, r"plugin testauth \S+ loaded")
        ch = h.channel()
        for _ in range(3):
            version(ch)
        plugins = list_plugins(ch)
        swap = by_name(plugins, "swap")
        assert swap.file.endswith("/swap.so"), swap
        assert swap.version == "1"
        assert list(swap.services) == ["rpchost.test.Swap"], swap.services
        assert swap.calls_served >= 3, swap
        assert swap.loaded_at.endswith("Z") and swap.loaded_at_unix_ms > 0
        assert not swap.builtin and not swap.cannot_unload
        auth = by_name(plugins, "testauth")
        assert list(auth.interceptors) == ["testauth.principal"], auth
        admin = by_name(plugins, "admin")
        assert admin.builtin and "rpchost.admin.v1.Admin" in admin.services

        # Reload by name: the file was replaced on disk meanwhile? No:
        # reload loads the same file again as a new instance.
        r = call(ch, "ReloadPlugin", admin_pb2.ReloadPluginRequest(name="swap"),
                 admin_pb2.PluginResponse)
        assert r.plugin.name == "swap" and r.plugin.state == admin_pb2.PLUGIN_STATE_SERVING
        assert r.plugin.loaded_at_unix_ms >= swap.loaded_at_unix_ms
        wait_log(h, r"plugin swap 1 replaced 1")
        assert version(ch) == "1"

        r = call(ch, "UnloadPlugin", admin_pb2.UnloadPluginRequest(file="swap.so"),
                 admin_pb2.PluginResponse)
        assert r.plugin.name == "swap", r
        assert r.plugin.state in (admin_pb2.PLUGIN_STATE_DRAINING,), r.plugin
        expect_code(grpc.StatusCode.UNIMPLEMENTED, version, ch)
        # The file is still there; a SIGHUP rescan does not bring it back.
        h.signal(__import__("signal").SIGHUP)
        wait_log(h, r"SIGHUP: rescanning")
        time.sleep(0.3)
        expect_code(grpc.StatusCode.UNIMPLEMENTED, version, ch)

        r = call(ch, "LoadPlugin", admin_pb2.LoadPluginRequest(file="swap.so"),
                 admin_pb2.PluginResponse)
        assert r.plugin.name == "swap" and r.plugin.version == "1", r
        assert version(ch) == "1"

        # Refusals come back with their reason.
        install(h, "swap_badinit", "bad.so")
        wait_log(h, r"bad\.so refused")
        e = expect_code(grpc.StatusCode.FAILED_PRECONDITION, call, ch, "LoadPlugin",
                        admin_pb2.LoadPluginRequest(file="bad.so"), admin_pb2.PluginResponse)
        assert "init failed" in e.details() or "already loaded" in e.details(), e.details()
        expect_code(grpc.StatusCode.NOT_FOUND, call, ch, "LoadPlugin",
                    admin_pb2.LoadPluginRequest(file="missing.so"), admin_pb2.PluginResponse)
        expect_code(grpc.StatusCode.INVALID_ARGUMENT, call, ch, "LoadPlugin",
                    admin_pb2.LoadPluginRequest(file="../etc/x.so"), admin_pb2.PluginResponse)
        expect_code(grpc.StatusCode.NOT_FOUND, call, ch, "UnloadPlugin",
                    admin_pb2.UnloadPluginRequest(name="admin"), admin_pb2.PluginResponse)
        assert version(ch) == "1"


def case_denied():
    with rt.Host(plugins=[], config=CONFIG) as h:
        install(h, "testauth", "testauth.so")
        install(h, "swap_v1", "swap.so")
        wait_log(h, r"plugin swap 1 loaded")
        ch = h.channel()
        for md in (None, (("x-test-principal", "guest"),), (("x-test-principal", "roo"),)):
            e = expect_code(grpc.StatusCode.PERMISSION_DENIED, list_plugins, ch, md)
            assert "admin" in e.details()
            expect_code(grpc.StatusCode.PERMISSION_DENIED, call, ch, "UnloadPlugin",
                        admin_pb2.UnloadPluginRequest(name="swap"), admin_pb2.PluginResponse, md)
        assert version(ch) == "1"
        by_name(list_plugins(ch, (("x-test-principal", "ops"),)), "swap")


def case_unix_socket_real():
    import tempfile
    sock_dir = tempfile.mkdtemp(prefix="rpchost-admin-")
    sock = os.path.join(sock_dir, "admin.sock")
    try:
        with rt.Host(plugins=[], args=["--admin-socket", sock]) as h:
            install(h, "swap_v1", "swap.so")
            wait_log(h, r"plugin swap 1 loaded")
            deadline = time.time() + 10
            while not os.path.exists(sock) and time.time() < deadline:
                time.sleep(0.05)
            # Unix-socket listeners speak h2c: the socket's file permissions
            # are the access control.
            uch = grpc.insecure_channel("unix:" + sock)
            by_name(list_plugins(uch, md=None), "swap")
            # The same call over TCP without a principal is refused.
            expect_code(grpc.StatusCode.PERMISSION_DENIED, list_plugins, h.channel(), None)
            uch.close()
    finally:
        import shutil
        shutil.rmtree(sock_dir, ignore_errors=True)


def case_cannot_unload_reported():
    with rt.Host(plugins=[], config=CONFIG) as h:
        install(h, "testauth", "testauth.so")
        install(h, "nodelete", "nodelete.so")
        wait_log(h, r"plugin nodelete \(.*\) will not be unloadable: marked NODELETE")
        ch = h.channel()
        p = by_name(list_plugins(ch), "nodelete")
        assert p.cannot_unload and "NODELETE" in p.cannot_unload_reason, p
        os.unlink(os.path.join(h.plugin_dir, "nodelete.so"))
        wait_log(h, r"plugin nodelete \S+ \(.*\) could not be unloaded: stays mapped")
        p = by_name(list_plugins(ch), "nodelete", admin_pb2.PLUGIN_STATE_STUCK)
        assert p.cannot_unload and "stays mapped" in p.cannot_unload_reason, p


def case_authlog_tokens():
    """The production path: authlog.auth turns bearer tokens into principals
    and requires its admin permission; admin_principals names who may
    administer. ops (admin permission, listed) may; root (admin permission,
    not listed) and guest (no admin permission) get PERMISSION_DENIED."""
    import hashlib
    authlog = os.path.join(rt.PLUGIN_BUILD_DIR, "authlog.so")
    if not os.path.exists(authlog):
        raise AssertionError("authlog.so is not built")
    tokens = {"ops": "tok-ops-0123456789", "root": "tok-root-0123456789",
              "guest": "tok-guest-0123456789"}
    perms = {"ops": "* admin", "root": "* admin", "guest": "*"}
    import tempfile
    import shutil
    d = tempfile.mkdtemp(prefix="rpchost-admin-authlog-")
    try:
        tok_path = os.path.join(d, "tokens")
        with open(tok_path, "w") as f:
            for who, tok in tokens.items():
                f.write("sha256:%s %s %s\n" % (hashlib.sha256(tok.encode()).hexdigest(), who,
                                                perms[who]))
        cfg = ("[rpchost]\nadmin_principals = ops\ninterceptors = authlog.auth\n"
               "[plugin.authlog]\ntokens_file = %s\n" % tok_path)
        with rt.Host(plugins=["authlog"], config=cfg) as h:
            install(h, "swap_v1", "swap.so")
            wait_log(h, r"plugin swap 1 loaded")
            ch = h.channel()

            def md(who):
                return (("authorization", "Bearer " + tokens[who]),)
            by_name(list_plugins(ch, md("ops")), "authlog")
            for who in ("root", "guest"):
                expect_code(grpc.StatusCode.PERMISSION_DENIED, list_plugins, ch, md(who))
            expect_code(grpc.StatusCode.UNAUTHENTICATED, list_plugins, ch, None)
            r = call(ch, "UnloadPlugin", admin_pb2.UnloadPluginRequest(name="swap"),
                     admin_pb2.PluginResponse, md("ops"))
            assert r.plugin.name == "swap"
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    res = rt.Results()
    res.run("list_reload_unload_load", case_list_reload_unload_load)
    res.run("denied", case_denied)
    res.run("unix_socket", case_unix_socket_real)
    res.run("cannot_unload_reported", case_cannot_unload_reported)
    res.run("authlog_tokens", case_authlog_tokens)
    res.finish()
