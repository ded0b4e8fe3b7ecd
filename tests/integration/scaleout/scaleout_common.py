"""Several rpchost hosts on one PostgreSQL behind nginx: the pieces the
scale-out tests share. nginx runs deploy/nginx/rpchost.conf with only its
ports and paths rewritten, from a private prefix, stopped by PID."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "rides"))
import grpc  # noqa: E402
import pgtest  # noqa: E402
import rides_common as rc  # noqa: E402
import rpchost_test as rt  # noqa: E402

NGINX_CONF = os.path.join(rt.SOURCE_DIR, "deploy", "nginx", "rpchost.conf")
health_pb = rt.proto_module("grpc/health/v1/health.proto")


def find_nginx():
    for p in ("/usr/sbin/nginx", shutil.which("nginx") or ""):
        if p and os.path.exists(p):
            return p
    raise RuntimeError("nginx not installed (scripts/install-deps installs it)")


class Nginx:
    """nginx with deploy/nginx/rpchost.conf in front of the given ports."""

    def __init__(self, upstream_ports):
        self.tmp = tempfile.mkdtemp(prefix="rpchost-nginx-")
        os.chmod(self.tmp, 0o755)
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.mkdir(os.path.join(self.tmp, d))
            os.chmod(os.path.join(self.tmp, d), 0o777)  # the workers' user writes there
        self.port = rt.free_port()
        with open(NGINX_CONF) as f:
            conf = f.read()
        assert len(upstream_ports) == 2
        conf = conf.replace("127.0.0.1:50051", "127.0.0.1:%d" % upstream_ports[0])
        conf = conf.replace("127.0.0.1:50052", "127.0.0.1:%d" % upstream_ports[1])
        conf = conf.replace("127.0.0.1:8443", "127.0.0.1:%d" % self.port)
        conf = conf.replace("/etc/rpchost/certs", rt.CERT_DIR)
        conf = conf.replace("/var/lib/rpchost-nginx", self.tmp)
        conf = conf.replace("worker_processes auto;", "worker_processes 1;")
        for key in ("127.0.0.1:50051", "/etc/rpchost", "/var/lib/rpchost-nginx"):
            assert key not in conf
        self.conf_path = os.path.join(self.tmp, "nginx.conf")
        with open(self.conf_path, "w") as f:
            f.write(conf)
        rt.ensure_certs()
        self.proc = subprocess.Popen([find_nginx(), "-p", self.tmp, "-c", self.conf_path,
                                      "-g", "daemon off;"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout=15):
        import socket
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with %s:\n%s" % (self.proc.returncode,
                                                                   self.errors()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx not ready:\n%s" % self.errors())

    def errors(self):
        try:
            with open(os.path.join(self.tmp, "error.log")) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def channel(self):
        with open(rt.CA, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel("localhost:%d" % self.port, creds)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish requests
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def rides_pg_config(uri, extra=""):
    # Generous timeouts: a busy test machine can take seconds to set up a
    # connection (the outage tests rely on refused connections, which fail
    # at once, not on these).
    return ("[rpchost]\nlog_level = info\n\n[plugin.rides]\ndb = %s\npool_size = 4\n"
            "connect_timeout_ms = 5000\nquery_timeout_ms = 10000\n%s" % (uri, extra))


def pg_host(uri, extra_args=(), extra_config="", wait_serving=True, plugins=("rides",)):
    h = rt.Host(plugins=plugins, config=rides_pg_config(uri, extra_config), workers=2,
                args=list(extra_args))
    if wait_serving:
        wait_health(h.channel(), "Rides", health_pb.HealthCheckResponse.SERVING)
    return h


def health_of(channel, service):
    stub = rt.stub(channel, "unary_unary", "/grpc.health.v1.Health/Check",
                   health_pb.HealthCheckResponse)
    try:
        return stub(health_pb.HealthCheckRequest(service=service), timeout=2).status
    except grpc.RpcError as e:
        return e.code()


def wait_health(channel, service, want, timeout=15):
    deadline = time.time() + timeout
    while True:
        got = health_of(channel, service)
        if got == want:
            return
        assert time.time() < deadline, "health of %s is %s, want %s" % (service, got, want)
        time.sleep(0.05)


def wait_until(cond, what, timeout=60):
    """Waits for cond() (polled every 50 ms); the default deadline is long
    because load-driven conditions slow down on a busy machine."""
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


class Load:
    """n client threads, each with its own channel (through `target`),
    making Start calls (and a Track every track_every calls) until told to
    stop or until each made max_calls. Records every acknowledged ride id
    and every failure with its code and how long it took."""

    def __init__(self, make_channel, n=16, max_calls=400, track_every=0, timeout=5):
        self.make_channel = make_channel
        self.n = n
        self.max_calls = max_calls
        self.track_every = track_every
        self.timeout = timeout
        self.lock = threading.Lock()
        self.acked = []          # ride ids answered OK
        self.tracks_ok = 0
        self.failures = []       # (code, details, seconds, when)
        self.calls = 0
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _run(self):
        ch = self.make_channel()
        start = rc.start_stub(ch)
        track = rc.track_stub(ch)
        try:
            for i in range(self.max_calls):
                if self.stop_flag.is_set():
                    break
                t0 = time.time()
                try:
                    if self.track_every and i % self.track_every == self.track_every - 1:
                        r = track(iter(rc.original_events(20)), timeout=self.timeout)
                        assert r.count == 20
                        with self.lock:
                            self.tracks_ok += 1
                            self.calls += 1
                    else:
                        r = start(rc.original_request(), timeout=self.timeout)
                        with self.lock:
                            self.acked.append(r.id)
                            self.calls += 1
                except grpc.RpcError as e:
                    with self.lock:
                        self.calls += 1
                        self.failures.append((e.code(), e.details(), time.time() - t0,
                                              time.time()))
        finally:
            ch.close()

    def done_calls(self):
        with self.lock:
            return self.calls

    def stop(self):
        self.stop_flag.set()
        return self.join()

    def join(self, timeout=120):
        deadline = time.time() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.time()))
            assert not t.is_alive(), "a load thread did not finish"
        return self


def missing_in_pg(pg, ids):
    """The ids of `ids` that are not in the rides table."""
    if not ids:
        return []
    have = set()
    ids = list(ids)
    for k in range(0, len(ids), 2000):
        chunk = ids[k:k + 2000]
        rows = pg.psql("SELECT id FROM rides WHERE id IN (%s)" %
                       ",".join("'%s'" % i for i in chunk))
        have.update(r[0] for r in rows)
    return [i for i in ids if i not in have]


def stop_checked(*hosts):
    """SIGTERM each host; asserts it exited 0 (under ASan, a leak or an
    error in the plugin's fini makes the exit code non-zero)."""
    for h in hosts:
        code = h.stop()
        assert code == 0, "rpchost exited with %s:\n%s" % (code, h.logs()[-3000:])
