"""Shared helpers for integration tests: start a real rpchost on a free
loopback port with a private plugin directory, build Python protobuf
modules from .proto files with protoc, and make grpcio channels.

Run tests with Debian's /usr/bin/python3 (python3-grpcio). ctest passes
RPCHOST_BIN, RPCALL_BIN, RPCHOST_PLUGIN_DIR, RPCHOST_BUILD_DIR and
RPCHOST_SOURCE_DIR in the environment.
"""
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# Tests and benchmarks run as root here; the host refuses root unless told.
os.environ.setdefault("RPCHOST_ALLOW_ROOT", "1")

import grpc

SOURCE_DIR = os.environ.get("RPCHOST_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
BUILD_DIR = os.environ.get("RPCHOST_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RPCHOST_BIN = os.environ.get("RPCHOST_BIN", os.path.join(BUILD_DIR, "bin/rpchost"))
RPCALL_BIN = os.environ.get("RPCALL_BIN", os.path.join(BUILD_DIR, "bin/rpcall"))
PLUGIN_BUILD_DIR = os.environ.get("RPCHOST_PLUGIN_DIR", os.path.join(BUILD_DIR, "plugins"))
TEST_PLUGIN_DIR = os.environ.get("RPCHOST_TEST_PLUGIN_DIR", os.path.join(BUILD_DIR, "test-plugins"))
CERT_DIR = os.path.join(SOURCE_DIR, "certs/out")
CA = os.path.join(CERT_DIR, "ca.pem")
SERVER_CERT = os.path.join(CERT_DIR, "server.pem")
SERVER_KEY = os.path.join(CERT_DIR, "server-key.pem")
CLIENT_CERT = os.path.join(CERT_DIR, "client.pem")
CLIENT_KEY = os.path.join(CERT_DIR, "client-key.pem")
PROTO_PATHS = ["/usr/share/grpc-proto", "/usr/include",
               os.path.join(SOURCE_DIR, "proto")]


def ensure_certs():
    if not os.path.exists(SERVER_KEY):
        subprocess.run([os.path.join(SOURCE_DIR, "certs/gen-key")], check=True,
                       stderr=subprocess.DEVNULL)


def free_port():
    """A port that was free on 127.0.0.1 and ::1 a moment ago."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def serving_pid(pid, timeout=10):
    """The child the supervising rpchost (pid) serves with; waits for it."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            kids = []
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise RuntimeError("rpchost %d has no serving process" % pid)


_proto_cache = {}


def proto_module(proto, extra_paths=()):
    """Compiles `proto` (import path, e.g. 'grpc/testing/test.proto') and
    its imports with protoc --python_out and returns the *_pb2 module."""
    key = (proto, tuple(extra_paths))
    if key in _proto_cache:
        return _proto_cache[key]
    out = os.path.join(tempfile.gettempdir(), "rpchost-pb2-%d" % os.getuid())
    os.makedirs(out, exist_ok=True)
    paths = list(extra_paths) + PROTO_PATHS
    # protoc needs the import closure; generate every file it touches.
    todo, seen = [proto], set()
    while todo:
        p = todo.pop()
        if p in seen or p.startswith("google/protobuf/"):
            continue
        seen.add(p)
        src = next((os.path.join(d, p) for d in paths if os.path.exists(os.path.join(d, p))), None)
        if src is None:
            raise FileNotFoundError(p)
        with open(src) as f:
            for line in f:
                line = line.strip()
                if line.startswith("import "):
                    todo.append(line.split('"')[1])
    args = ["protoc"] + ["-I" + d for d in paths if os.path.isdir(d)] + ["--python_out=" + out] + sorted(seen)
    subprocess.run(args, check=True)
    if out not in sys.path:
        sys.path.insert(0, out)
    # A proto package whose top level is an installed package ("grpc/testing"
    # vs grpcio's `grpc`): let that package also search the generated dir.
    top = proto.split("/")[0]
    pkg = sys.modules.get(top)
    gen = os.path.join(out, top)
    if pkg is not None and hasattr(pkg, "__path__") and gen not in list(pkg.__path__):
        pkg.__path__.append(gen)
    name = proto[:-len(".proto")].replace("/", ".") + "_pb2"
    mod = importlib.import_module(name)
    _proto_cache[key] = mod
    return mod


class Host:
    """A running rpchost. Use as a context manager:

        with Host(plugins=["interop"]) as h:
            ch = h.channel()
    """

    def __init__(self, plugins=("interop",), plaintext=False, args=(), config=None,
                 env=None, workers=2, client_ca=False, wait=True, plugin_dir=None, port=None):
        ensure_certs()
        self.tmp = tempfile.mkdtemp(prefix="rpchost-test-")
        self.plugin_dir = plugin_dir or os.path.join(self.tmp, "plugins")
        os.makedirs(self.plugin_dir, exist_ok=True)
        for p in plugins:
            self.add_plugin(p)
        self.port = port or free_port()
        self.plaintext = plaintext
        self.log_path = os.path.join(self.tmp, "rpchost.log")
        cmd = [RPCHOST_BIN, "--plugins", self.plugin_dir,
               "--listen", "127.0.0.1:%d" % self.port, "--listen", "[::1]:%d" % self.port,
               "--workers", str(workers)]
        if plaintext:
            cmd.append("--plaintext")
        else:
            cmd += ["--cert", SERVER_CERT, "--key", SERVER_KEY]
        if client_ca:
            cmd += ["--client-ca", CA]
        if config is not None:
            self.config_path = os.path.join(self.tmp, "rpchost.ini")
            with open(self.config_path, "w") as f:
                f.write(config)
            cmd += ["--config", self.config_path]
        cmd += list(args)
        self.cmd = cmd
        # Whether info lines (and so "serving on") are written.
        quiet = re.search(r"^\s*log_level\s*=\s*(warn|error)", config or "", re.M)
        self._logs_info = not quiet and not any(
            a in ("warn", "error") and i > 0 and cmd[i - 1] == "--log-level"
            for i, a in enumerate(cmd))
        full_env = dict(os.environ)
        for k in ("HOST", "PORT", "CERT_FILE", "KEY_FILE"):
            full_env.pop(k, None)
        full_env.update(env or {})
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.tmp, env=full_env)
        # free_port() is only "free a moment ago": with tests in parallel
        # another process (or a client's ephemeral port) may take it before
        # the host binds. The host then exits saying so; start it again on
        # another port rather than fail the test.
        for _ in range(5):
            if not wait or not self._lost_port_race():
                break
            self.port = free_port()
            cmd = [re.sub(r":\d+$", ":%d" % self.port, a) if i > 0 and cmd[i - 1] == "--listen"
                   else a for i, a in enumerate(cmd)]
            self.cmd = cmd
            self.log = open(self.log_path, "wb")
            self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                         cwd=self.tmp, env=full_env)
        if wait:
            self.wait_ready()

    def _lost_port_race(self):
        """Waits until the host serves or exits; True if it exited because
        its port was taken."""
        try:
            self.wait_ready()
            return False
        except RuntimeError:
            if self.proc.poll() is None or "another process holds the port" not in self.logs():
                raise
            self.log.close()
            return True

    def add_plugin(self, name, src=None, dest_name=None):
        """Copies build/plugins/<name>.so (or build/test-plugins/<name>.so,
        or src) into the plugin dir via a temporary file and an atomic
        rename."""
        if src is None:
            src = os.path.join(PLUGIN_BUILD_DIR, name + ".so")
            if not os.path.exists(src):
                src = os.path.join(TEST_PLUGIN_DIR, name + ".so")
        dest = os.path.join(self.plugin_dir, (dest_name or name) + ".so")
        tmp = os.path.join(self.tmp, ".incoming-" + os.path.basename(dest))
        shutil.copyfile(src, tmp)
        os.rename(tmp, dest)
        return dest

    def wait_ready(self, timeout=30):
        """Waits until the host serves: its "serving on" line is written
        after the plugins were loaded and the workers started. The port
        alone is not enough: it accepts (into the backlog) from the moment
        it is bound, before any plugin is loaded, so a test that reads the
        start-up log lines after a mere connect races the host."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rpchost exited with %s:\n%s" % (self.proc.returncode, self.logs()))
            if not self._logs_info or "serving on " in self.logs():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return
                except OSError:
                    pass
            time.sleep(0.02)
        raise RuntimeError("rpchost not ready after %ss:\n%s" % (timeout, self.logs()))

    def wait_log(self, pattern, timeout=15, start=0, count=1):
        """Waits until the log (from byte offset `start`) has `count`
        matches of the regular expression `pattern`; returns the last
        match. Fails with the log's tail at the deadline."""
        deadline = time.time() + timeout
        rx = re.compile(pattern)
        while True:
            found = list(rx.finditer(self.logs()[start:]))
            if len(found) >= count:
                return found[count - 1]
            if time.time() > deadline:
                raise AssertionError("%d of %d log lines matching %r within %ss; log:\n%s"
                                     % (len(found), count, pattern, timeout, self.logs()[-4000:]))
            if self.proc.poll() is not None:
                raise AssertionError("rpchost exited with %s before a log line matching %r:\n%s"
                                     % (self.proc.returncode, pattern, self.logs()[-4000:]))
            time.sleep(0.02)

    def log_size(self):
        """The log's length now: pass it as wait_log's start to wait for a
        line written after this point."""
        return len(self.logs())

    @property
    def serving_pid(self):
        """The serving process (the started process supervises it and
        restarts it after a crash; its own figures are tiny). Measure
        memory, descriptors and CPU of the host here."""
        return serving_pid(self.proc.pid)

    @property
    def address(self):
        return "localhost:%d" % self.port

    def channel(self, target=None, options=(), client_cert=False):
        target = target or self.address
        opts = list(options) + [("grpc.max_receive_message_length", 64 << 20),
                                ("grpc.max_send_message_length", 64 << 20)]
        if self.plaintext:
            return grpc.insecure_channel(target, options=opts)
        with open(CA, "rb") as f:
            ca = f.read()
        key = cert = None
        if client_cert:
            with open(CLIENT_KEY, "rb") as f:
                key = f.read()
            with open(CLIENT_CERT, "rb") as f:
                cert = f.read()
        creds = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                             certificate_chain=cert)
        return grpc.secure_channel(target, creds, options=opts)

    def logs(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=None, timeout=40):
        """Stops the host (SIGTERM unless told); returns its exit code."""
        # (In this class body `signal` is the method above, not the module:
        # the default is resolved here, in function scope.)
        sig = signal.SIGTERM if sig is None else sig
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError("rpchost did not stop within %ss:\n%s" % (timeout, self.logs()))
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            code = self.stop()
        finally:
            self.log.close()
        if exc[0] is None and code not in (0, -signal.SIGKILL):
            raise AssertionError("rpchost exited with %s:\n%s" % (code, self.logs()))
        shutil.rmtree(self.tmp, ignore_errors=True)


def wait_until(pred, what, timeout=15, step=0.02):
    """Waits until pred() is true; fails naming `what` at the deadline."""
    deadline = time.time() + timeout
    while not pred():
        if time.time() > deadline:
            raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))
        time.sleep(step)


def unary(channel, path, request, response_cls, **kw):
    """Calls a unary method by path with a protobuf request."""
    fn = channel.unary_unary(path, request_serializer=lambda m: m.SerializeToString(),
                             response_deserializer=response_cls.FromString)
    return fn(request, **kw)


def stub(channel, kind, path, response_cls):
    """A callable for any call kind: 'unary_unary', 'unary_stream',
    'stream_unary', 'stream_stream'."""
    return getattr(channel, kind)(path, request_serializer=lambda m: m.SerializeToString(),
                                  response_deserializer=response_cls.FromString)


class Results:
    """Minimal test runner output: ends with 'N passed, N failed' so CI
    counts the cases; exits non-zero on any failure."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        t = time.time()
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - report every failure
            self.failed += 1
            import traceback
            print("FAIL %s (%.2fs): %s" % (name, time.time() - t, e), flush=True)
            traceback.print_exc()
        else:
            self.passed += 1
            print("ok   %s (%.2fs)" % (name, time.time() - t), flush=True)

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed), flush=True)
        sys.exit(1 if self.failed else 0)
