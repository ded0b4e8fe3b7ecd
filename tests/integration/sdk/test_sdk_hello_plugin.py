"""The plugin SDK end to end, as a plugin author outside this repository
uses it:

1. `cmake --install <build> --prefix P` into a temp prefix;
2. copy examples/hello-plugin to a temp dir, configure it with plain CMake
   (-DCMAKE_PREFIX_PATH=P, nothing from this source tree) and build it;
3. check the .so: only `rpchost_plugin` exported, the .note.rpchost note
   carrying the plugin's identity;
4. run the build's rpchost with that plugin and call it through grpcio and
   through rpcall (reflection: list, describe, unary and streaming calls);
5. the same build steps for examples/kv-plugin (ABI 1.2: post,
   send_headers, retire, state across replace), and a Put / Get / Watch
   through it.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../lib"))
import rpchost_test as rt  # noqa: E402

CMAKE = os.environ.get("RPCHOST_CMAKE", "cmake")
EXAMPLE = os.path.join(rt.SOURCE_DIR, "examples/hello-plugin")
SERVICE = "hello.v1.Greeter"


def run(args, timeout, **kw):
    """Runs a build step; on failure the assertion shows its output."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)
    assert p.returncode == 0, "%s -> exit %d\n%s\n%s" % (" ".join(args), p.returncode,
                                                         p.stdout[-4000:], p.stderr[-4000:])
    return p.stdout


class Sdk:
    """The temp prefix, the example's copy and its build."""

    def __init__(self, tmp):
        self.prefix = os.path.join(tmp, "prefix")
        self.src = os.path.join(tmp, "hello-plugin")
        self.build = os.path.join(tmp, "hello-build")
        self.so = os.path.join(self.build, "plugins/hello.so")
        self.kv_src = os.path.join(tmp, "kv-plugin")
        self.kv_build = os.path.join(tmp, "kv-build")
        self.kv_so = os.path.join(self.kv_build, "plugins/kv.so")


def check_install(sdk):
    run([CMAKE, "--install", rt.BUILD_DIR, "--prefix", sdk.prefix], 180)
    for f in ["include/rpchost/plugin.h",
              "lib/cmake/rpchost/rpchost-config.cmake",
              "lib/cmake/rpchost/rpchost-config-version.cmake",
              "lib/cmake/rpchost/rpchostTargets.cmake",
              "lib/cmake/rpchost/RpchostPlugin.cmake",
              "lib/cmake/rpchost/rpchost_embed.cmake",
              "bin/rpchost", "bin/rpcall",
              "lib/rpchost/plugins/interop.so"]:
        assert os.path.isfile(os.path.join(sdk.prefix, f)), "not installed: " + f
    assert os.access(os.path.join(sdk.prefix, "bin/rpchost"), os.X_OK)
    # Test-only plugins stay out of an install.
    assert not os.path.exists(os.path.join(sdk.prefix, "lib/rpchost/plugins/swap_v1.so"))


def check_build_example(sdk):
    shutil.copytree(EXAMPLE, sdk.src, ignore=shutil.ignore_patterns("build"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("CMAKE_PREFIX_PATH", "rpchost_DIR", "CMAKE_GENERATOR")}
    run([CMAKE, "-S", sdk.src, "-B", sdk.build, "-G", "Unix Makefiles",
         "-DCMAKE_PREFIX_PATH=" + sdk.prefix, "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
         "-DCMAKE_C_FLAGS=-Werror"], 180, env=env)
    run([CMAKE, "--build", sdk.build, "-j2"], 300, env=env)
    assert os.path.isfile(sdk.so), "no %s after the build" % sdk.so
    # The package came from the prefix, and nothing of the source tree was read.
    with open(os.path.join(sdk.build, "CMakeCache.txt")) as f:
        cache = f.read()
    want = "rpchost_DIR:PATH=" + os.path.join(sdk.prefix, "lib/cmake/rpchost")
    assert want in cache, "rpchost package not found in the prefix: " + \
        "".join(l for l in cache.splitlines(True) if l.startswith("rpchost_DIR"))
    with open(os.path.join(sdk.build, "CMakeFiles/Makefile.cmake")) as f:
        inputs = f.read()
    assert os.path.join(sdk.prefix, "lib/cmake/rpchost/RpchostPlugin.cmake") in inputs
    assert rt.SOURCE_DIR not in inputs, "the example's build read the source tree"


def check_build_kv(sdk):
    shutil.copytree(os.path.join(rt.SOURCE_DIR, "examples/kv-plugin"), sdk.kv_src,
                    ignore=shutil.ignore_patterns("build"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("CMAKE_PREFIX_PATH", "rpchost_DIR", "CMAKE_GENERATOR")}
    run([CMAKE, "-S", sdk.kv_src, "-B", sdk.kv_build, "-G", "Unix Makefiles",
         "-DCMAKE_PREFIX_PATH=" + sdk.prefix, "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
         "-DCMAKE_C_FLAGS=-Werror"], 180, env=env)
    run([CMAKE, "--build", sdk.kv_build, "-j2"], 300, env=env)
    assert os.path.isfile(sdk.kv_so), "no %s after the build" % sdk.kv_so
    out = run(["nm", "-D", "--defined-only", sdk.kv_so], 30)
    assert [l.split()[-1] for l in out.splitlines() if l.strip()] == ["rpchost_plugin"], out


def kv_calls(host):
    kv_pb = rt.proto_module("kv.proto", extra_paths=[os.path.join(rt.SOURCE_DIR,
                                                                  "examples/kv-plugin")])
    ch = host.channel()
    put = rt.stub(ch, "unary_unary", "/kv.v1.KV/Put", kv_pb.PutReply)
    get = rt.stub(ch, "unary_unary", "/kv.v1.KV/Get", kv_pb.GetReply)
    watch = rt.stub(ch, "unary_stream", "/kv.v1.KV/Watch", kv_pb.Event)
    w = watch(kv_pb.WatchRequest(prefix=b"sdk/"), timeout=10)
    w.initial_metadata()  # registered (send_headers)
    v = put(kv_pb.PutRequest(key=b"sdk/a", value=b"1"), timeout=10).version
    assert get(kv_pb.GetRequest(key=b"sdk/a"), timeout=10).value == b"1"
    ev = next(w)
    assert (ev.key, ev.value, ev.version) == (b"sdk/a", b"1", v), ev
    w.cancel()
    ch.close()
    assert "plugin kv 1.0.0 loaded" in host.logs(), host.logs()


def check_elf(sdk):
    out = run(["nm", "-D", "--defined-only", sdk.so], 30)
    names = [l.split()[-1] for l in out.splitlines() if l.strip()]
    assert names == ["rpchost_plugin"], "exported: %r" % names
    notes = run(["readelf", "-n", sdk.so], 30)
    m = re.search(r"notes found in: \.note\.rpchost:?\s*\n.*\n\s*rpchost\s+0x([0-9a-f]+)\s+"
                  r".*0x52480001.*\n\s*description data: ([0-9a-f ]+)", notes)
    assert m, "no rpchost note in:\n" + notes
    desc = bytes.fromhex(m.group(2))
    assert len(desc) == int(m.group(1), 16)
    # rh_abi_block: magic "RPCH", ABI 1.x, descriptor size, name, version.
    assert desc[:4] == b"RPCH", desc[:4]
    assert int.from_bytes(desc[4:6], "little") == 1
    assert desc[16:22] == b"hello\0", desc[16:32]
    assert desc[80:86] == b"1.0.0\0", desc[80:96]


def grpc_calls(host, pb):
    ch = host.channel()
    say = rt.stub(ch, "unary_unary", "/%s/SayHello" % SERVICE, pb.HelloReply)
    says = rt.stub(ch, "unary_stream", "/%s/SayHellos" % SERVICE, pb.HelloReply)

    r = say(pb.HelloRequest(name="grpcio"), timeout=10)
    assert r.message == "Hi, grpcio!" and r.index == 0, r

    replies = list(says(pb.HelloRequest(name="stream", count=3), timeout=10))
    assert [(r.message, r.index) for r in replies] == [("Hi, stream!", i) for i in (1, 2, 3)], replies

    for call, req, code, text in [
            (say, pb.HelloRequest(name=""), grpc.StatusCode.INVALID_ARGUMENT, "name is empty"),
            (says, pb.HelloRequest(name="x", count=101), grpc.StatusCode.INVALID_ARGUMENT,
             "count 101 is over 100")]:
        try:
            res = call(req, timeout=10)
            list(res) if not isinstance(res, pb.HelloReply) else None
        except grpc.RpcError as e:
            assert e.code() == code and text in e.details(), (e.code(), e.details())
        else:
            raise AssertionError("%r did not fail" % req)

    nope = rt.stub(ch, "unary_unary", "/%s/Nope" % SERVICE, pb.HelloReply)
    try:
        nope(pb.HelloRequest(name="x"), timeout=10)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e.code()
    else:
        raise AssertionError("unknown method answered")
    ch.close()


def rpcall(host, *args):
    p = subprocess.run([rt.RPCALL_BIN, "--plaintext", "127.0.0.1:%d" % host.port] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def rpcall_calls(host):
    code, out, err = rpcall(host, "list")
    assert code == 0 and SERVICE in out.split(), (code, out, err)
    code, out, err = rpcall(host, "list", SERVICE)
    assert code == 0 and "SayHello" in out and "SayHellos" in out, (code, out, err)
    code, out, err = rpcall(host, "describe", SERVICE)
    assert code == 0 and "stream" in out, (code, out, err)

    code, out, err = rpcall(host, SERVICE + "/SayHello", "-d", '{"name": "rpcall"}')
    assert code == 0, (code, out, err)
    assert json.loads(out) == {"message": "Hi, rpcall!"}, out

    code, out, err = rpcall(host, SERVICE + "/SayHellos", "--format", "json-lines",
                            "-d", '{"name": "rpcall", "count": 2}')
    assert code == 0, (code, out, err)
    got = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert got == [{"message": "Hi, rpcall!", "index": 1},
                   {"message": "Hi, rpcall!", "index": 2}], got

    code, out, err = rpcall(host, SERVICE + "/SayHello", "-d", '{"name": ""}')
    assert code == 64 + 3 and "name is empty" in err, (code, out, err)


def main():
    res = rt.Results()
    tmp = tempfile.mkdtemp(prefix="rpchost-sdk-")
    sdk = Sdk(tmp)
    try:
        res.run("install into a temp prefix", check_install, sdk)
        res.run("build examples/hello-plugin with find_package(rpchost)", check_build_example, sdk)
        if not os.path.isfile(sdk.so):
            return res.finish()
        res.run("hello.so exports only rpchost_plugin and carries .note.rpchost", check_elf, sdk)
        res.run("build examples/kv-plugin with find_package(rpchost)", check_build_kv, sdk)
        plugin_dir = os.path.join(tmp, "plugins")
        os.makedirs(plugin_dir)
        shutil.copyfile(sdk.so, os.path.join(plugin_dir, "hello.so"))
        if os.path.isfile(sdk.kv_so):
            shutil.copyfile(sdk.kv_so, os.path.join(plugin_dir, "kv.so"))
        pb = rt.proto_module("hello.proto", extra_paths=[sdk.src])
        with rt.Host(plugins=(), plaintext=True, plugin_dir=plugin_dir,
                     config="[plugin.hello]\ngreeting = Hi\n") as host:
            res.run("host loads hello 1.0.0",
                    lambda: host.wait_log(r"plugin hello 1\.0\.0 loaded"))
            res.run("grpcio: unary, server stream, errors", grpc_calls, host, pb)
            res.run("rpcall via reflection: list, describe, calls", rpcall_calls, host)
            if os.path.isfile(sdk.kv_so):
                res.run("kv (built out of tree): Watch, Put, Get", kv_calls, host)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


def rt_assert(cond, what):
    assert cond, what


if __name__ == "__main__":
    main()
