"""A real PostgreSQL 15 for tests: Debian's initdb into a temporary
directory and its postgres server on a free loopback port, both run as
the `postgres` user (the server refuses root), stopped by PID.

    with Postgres() as pg:
        uri = pg.uri            # postgresql://postgres@127.0.0.1:PORT/rides
        pg.scalar("SELECT count(*) FROM rides")
        pg.stop(); pg.start()   # a restart on the same data directory

Run as a command it wraps another one (the C unit tests):
    python3 pgtest.py -- ./rides_backend_test
runs it with RIDES_TEST_PG=<uri> in its environment and returns its code.
"""
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


def _bin_dir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL server not installed (scripts/install-deps installs it)")
    return os.path.dirname(found[-1])


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Postgres:
    def __init__(self, dbname="rides", start=True):
        self.bin = _bin_dir()
        self.dbname = dbname
        self.user = pwd.getpwnam("postgres")
        self.tmp = tempfile.mkdtemp(prefix="rpchost-pg-")
        os.chmod(self.tmp, 0o755)
        self.data = os.path.join(self.tmp, "data")
        self.sock = os.path.join(self.tmp, "sock")
        os.mkdir(self.sock)
        os.chown(self.tmp, self.user.pw_uid, self.user.pw_gid)
        os.chown(self.sock, self.user.pw_uid, self.user.pw_gid)
        self.port = _free_port()
        self.log_path = os.path.join(self.tmp, "postgres.log")
        self.proc = None
        self._run([os.path.join(self.bin, "initdb"), "-D", self.data, "-U", "postgres",
                   "-A", "trust", "-E", "UTF8", "--no-sync"])
        if start:
            self.start()
            self.psql("CREATE DATABASE %s" % dbname, db="postgres")

    @property
    def uri(self):
        return "postgresql://postgres@127.0.0.1:%d/%s" % (self.port, self.dbname)

    def _as_postgres(self):
        uid, gid = self.user.pw_uid, self.user.pw_gid

        def demote():
            os.setgid(gid)
            os.setuid(uid)
        return demote if os.getuid() == 0 else None

    def _run(self, cmd):
        r = subprocess.run(cmd, preexec_fn=self._as_postgres(), cwd=self.tmp,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("%s failed:\n%s" % (cmd[0], r.stdout.decode(errors="replace")))

    def start(self, timeout=30):
        """Starts the server (again) and waits until it accepts queries."""
        log = open(self.log_path, "ab")
        # fsync stays on: the tests check that acknowledged rows survive.
        self.proc = subprocess.Popen(
            [os.path.join(self.bin, "postgres"), "-D", self.data, "-k", self.sock,
             "-p", str(self.port), "-h", "127.0.0.1", "-c", "max_connections=100",
             "-c", "shared_buffers=32MB"],
            preexec_fn=self._as_postgres(), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("postgres exited with %s:\n%s" % (self.proc.returncode,
                                                                     self.logs()))
            r = subprocess.run(["psql", "-h", self.sock, "-p", str(self.port), "-U", "postgres",
                                "-d", "postgres", "-Atqc", "SELECT 1"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            if r.returncode == 0:
                return
            if time.time() > deadline:
                raise RuntimeError("postgres not ready after %ss:\n%s" % (timeout, self.logs()))
            time.sleep(0.05)

    def stop(self, timeout=30):
        """Fast shutdown (SIGINT: sessions end, in-flight transactions roll
        back); SIGKILL if it does not exit in time."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def psql(self, sql, db=None):
        """Runs SQL through psql over the Unix socket; returns rows as lists
        of strings."""
        r = subprocess.run(["psql", "-h", self.sock, "-p", str(self.port), "-U", "postgres",
                            "-d", db or self.dbname, "-AtqX", "-F", "\t", "-v",
                            "ON_ERROR_STOP=1", "-c", sql],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            raise RuntimeError("psql %r: %s" % (sql, r.stderr.decode(errors="replace")))
        out = r.stdout.decode()
        return [line.split("\t") for line in out.splitlines()]

    def scalar(self, sql):
        return self.psql(sql)[0][0]

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def main(argv):
    if "--" not in argv:
        print("usage: pgtest.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    cmd = argv[argv.index("--") + 1:]
    with Postgres() as pg:
        env = dict(os.environ, RIDES_TEST_PG=pg.uri)
        return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
