"""Servers under test (rpchost, the gRPC C++ peer, nghttpd), pinned to a
CPU, and what /proc says about them: CPU time and resident memory."""
import os
import signal
import socket
import subprocess
import time

# Tests and benchmarks run as root here; the host refuses root unless told.
os.environ.setdefault("RPCHOST_ALLOW_ROOT", "1")

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pinned(cpu):
    """Command prefix: run on `cpu`, and, when allowed (root), at a higher
    scheduling weight (BENCH_NICE, default -10) so that whatever else runs
    on a shared machine disturbs the measurement less. Not a real-time
    class: other processes still get their share."""
    pre = []
    nice = os.environ.get("BENCH_NICE", "-10")
    if nice and nice != "0" and (os.geteuid() == 0 or int(nice) > 0):
        pre = ["nice", "-n", nice]
    return pre + ["taskset", "-c", str(cpu)]


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """utime + stime of the whole process (all threads), in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14, 15 of stat(5)


def rss_kib(pid, field="VmRSS"):
    """A resident-memory figure (KiB) from /proc/PID/status: VmRSS, or
    RssAnon (heap, stacks: what the process allocated itself)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


def pss_kib(pid):
    """Proportional set size: shared library pages divided among the
    processes that map them."""
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    raise RuntimeError("no Pss for pid %d" % pid)


def thread_count(pid):
    return len(os.listdir("/proc/%d/task" % pid))


class Server:
    """A server process pinned with taskset to `cpu`, listening on
    127.0.0.1:port. `label` names it in the report and in errors."""

    started = 0  # numbers the log files
    all = []     # every server started, for the exit check at the end

    def __init__(self, label, cmd, port, cpu, workdir, env=None):
        self.label, self.port, self.pinned_cpu, self.workdir = label, port, cpu, workdir
        self.cmd = pinned(cpu) + [str(c) for c in cmd]
        # rpchost serves from a forked child of the started process
        self.is_rpchost = (any(os.path.basename(c) == "rpchost" for c in self.cmd)
                           and "--no-supervisor" not in self.cmd)
        self.env = env
        self.proc = None
        Server.started += 1
        self.log_path = os.path.join(workdir, "%s-%d.log" % (label.replace(" ", "_"), Server.started))
        self.started_at = None
        self.expect_clean_exit = False  # rpchost: SIGTERM must end it with status 0
        self.returncode = None
        Server.all.append(self)

    def start(self, timeout=30):
        self.log = open(self.log_path, "ab")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s at start; log %s:\n%s"
                                   % (self.label, self.proc.returncode, self.log_path, self.logs()[-2000:]))
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError("%s not listening on 127.0.0.1:%d after %ss; log %s"
                           % (self.label, self.port, timeout, self.log_path))

    @property
    def pid(self):
        """The process that serves. nice and taskset exec the server (same
        pid); rpchost's started process supervises a forked serving
        process (it is listening, so it exists once start() returned),
        which is the one to measure: the supervisor runs no request code.
        An rpchost without a supervisor (older builds, --no-supervisor)
        has no child."""
        pid = self.proc.pid
        if not self.is_rpchost:
            return pid
        try:
            with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
                kids = f.read().split()
        except OSError:
            return pid
        return int(kids[0]) if kids else pid

    @property
    def url_base(self):
        return "https://127.0.0.1:%d" % self.port

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu(self):
        return cpu_seconds(self.pid)

    def rss_kib(self, field="VmRSS"):
        return rss_kib(self.pid, field)

    def pss_kib(self):
        return pss_kib(self.pid)

    def logs(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=15):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log.closed:
            return self.returncode
        self.log.close()
        self.returncode = self.proc.returncode
        return self.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
