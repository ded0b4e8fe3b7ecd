"""Rolling plugin updates with scripts/rpchost-rollout and the Admin
UploadPlugin / RestorePlugin methods: two hosts on one real PostgreSQL
behind nginx take a new rides.so one at a time under load from 16
clients, with 0 failed calls; a refused build stops the rollout, the
refusing host keeps (and puts back on disk) its build, and the hosts
already updated are rolled back."""
import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scaleout_common as sc  # noqa: E402
from scaleout_common import grpc, rt  # noqa: E402

ROLLOUT = os.path.join(rt.SOURCE_DIR, "scripts", "rpchost-rollout")
V1 = os.path.join(rt.PLUGIN_BUILD_DIR, "rides.so")
V2 = os.path.join(rt.TEST_PLUGIN_DIR, "rides_v2.so")
admin_pb = rt.proto_module("rpchost/admin/v1/admin.proto")
SVC = "/rpchost.admin.v1.Admin/"


def admin_host(uri):
    tmp_sock = os.path.join(sc.tempfile.mkdtemp(prefix="rpchost-adm-"), "admin.sock")
    h = sc.pg_host(uri, extra_args=["--admin-socket", tmp_sock])
    h.admin_sock = tmp_sock
    return h


def rides_version(h):
    ch = grpc.insecure_channel("unix:" + h.admin_sock)
    try:
        resp = rt.unary(ch, SVC + "ListPlugins", admin_pb.ListPluginsRequest(),
                        admin_pb.ListPluginsResponse, timeout=5)
    finally:
        ch.close()
    return [p.version for p in resp.plugins if p.name == "rides" and p.state == 1]


def run_rollout(build, hosts, timeout=60):
    r = subprocess.run([sys.executable, ROLLOUT, "--cacert", rt.CA, "--timeout", "20", "--file", "rides.so", build]
                       + hosts, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    return r.returncode, r.stdout.decode()


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def upload(h, req):
    ch = grpc.insecure_channel("unix:" + h.admin_sock)
    try:
        return rt.unary(ch, SVC + "UploadPlugin", req, admin_pb.PluginResponse, timeout=10)
    finally:
        ch.close()


def test_rollout():
    with sc.pgtest.Postgres() as pg:
        a, b = admin_host(pg.uri), admin_host(pg.uri)
        try:
            assert rides_version(a) == ["1.0.0"] and rides_version(b) == ["1.0.0"]
            with sc.Nginx([a.port, b.port]) as nx:
                # --- under load through nginx: 0 failed calls.
                load = sc.Load(nx.channel, n=16, max_calls=100000, track_every=6, timeout=20)
                load.start()
                sc.wait_until(lambda: len(load.acked) >= 200, "load running")
                code, out = run_rollout(V2, ["unix:" + a.admin_sock, "unix:" + b.admin_sock])
                assert code == 0, out
                assert "rides 1.0.0 -> 2.0.0-test" in out, out
                n0 = len(load.acked)
                sc.wait_until(lambda: len(load.acked) >= n0 + 200, "load after the rollout")
                load.stop()
                assert load.failures == [], load.failures[:5]
                assert rides_version(a) == ["2.0.0-test"] and rides_version(b) == ["2.0.0-test"]
                assert sc.missing_in_pg(pg, load.acked) == []
                for h in (a, b):
                    assert sha(os.path.join(h.plugin_dir, "rides.so")) == sha(V2)
                    assert sha(os.path.join(h.plugin_dir, ".rides.so.previous")) == sha(V1)
                print("rollout under load: %d calls (%d tracks), 0 failed"
                      % (load.calls, load.tracks_ok))

            # --- a refused build: not a shared object. The host keeps its
            # build on disk and serving; nothing else is touched.
            bad = os.path.join(a.tmp, "broken.so")
            with open(bad, "wb") as f:
                f.write(b"\x7fELF but not really" * 100)
            code, out = run_rollout(bad, ["unix:" + a.admin_sock, "unix:" + b.admin_sock])
            assert code == 1, out
            assert "STOPPED at unix:%s: refused the build: FAILED_PRECONDITION" % a.admin_sock \
                in out, out
            assert "the previous build is back in place and keeps serving" in out, out
            assert rides_version(a) == ["2.0.0-test"]
            assert sha(os.path.join(a.plugin_dir, "rides.so")) == sha(V2)

            # --- the second host refuses (no admin rights over TLS): the
            # first, already updated, is rolled back to its previous build.
            code, out = run_rollout(V1, ["unix:" + a.admin_sock, "localhost:%d" % b.port])
            assert code == 1, out
            assert "rides 2.0.0-test -> 1.0.0" in out, out
            assert "refused the build: PERMISSION_DENIED" in out, out
            assert "unix:%s: rolled back to rides 2.0.0-test" % a.admin_sock in out, out
            assert rides_version(a) == ["2.0.0-test"] and rides_version(b) == ["2.0.0-test"]
            assert sha(os.path.join(a.plugin_dir, "rides.so")) == sha(V2)

            # --- the Admin method's own checks.
            with open(V1, "rb") as f:
                content = f.read()
            for req, code_, text in [
                (admin_pb.UploadPluginRequest(file="rides.so", content=content,
                                              sha256="0" * 64),
                 grpc.StatusCode.INVALID_ARGUMENT, "sha256 mismatch"),
                (admin_pb.UploadPluginRequest(file="../rides.so", content=content,
                                              sha256=sha(V1)),
                 grpc.StatusCode.INVALID_ARGUMENT, "file must be a plugin file name"),
                (admin_pb.UploadPluginRequest(file="rides.so", content=b"", sha256=sha(V1)),
                 grpc.StatusCode.INVALID_ARGUMENT, "content is empty"),
            ]:
                try:
                    upload(a, req)
                    raise AssertionError("upload accepted: %s" % text)
                except grpc.RpcError as e:
                    assert e.code() == code_ and text in e.details(), (e.code(), e.details())
            ch = a.channel()  # TLS, no admin principal
            try:
                rt.unary(ch, SVC + "UploadPlugin",
                         admin_pb.UploadPluginRequest(file="rides.so", content=content,
                                                      sha256=sha(V1)),
                         admin_pb.PluginResponse, timeout=10)
                raise AssertionError("upload without admin rights accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
            ch.close()
            assert rides_version(a) == ["2.0.0-test"]
            assert not [n for n in os.listdir(a.plugin_dir) if n.endswith(".upload")]
            sc.stop_checked(a, b)
        finally:
            for h in (a, b):
                h.stop()
                h.log.close()


if __name__ == "__main__":
    r = rt.Results()
    r.run("rolling update across two hosts behind nginx under load; refusal and rollback",
          test_rollout)
    r.finish()
