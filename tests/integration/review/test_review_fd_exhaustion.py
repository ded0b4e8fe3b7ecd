"""Running out of file descriptors does not spin the worker.

With a low open-file limit, a client that opens more connections than the
host has descriptors leaves connections waiting in the listen backlog;
accept(2) then fails with EMFILE on every call. The listener is
level-triggered, so a worker that only logs and returns is woken again at
once: 100% CPU and a log line per wake-up. The host must back off (and say
so once), then accept again when descriptors are free."""
import os
import resource
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "core"))
import core_lib as cl  # noqa: E402
from core_lib import expect, pb  # noqa: E402
import rpchost_test  # noqa: E402

results = rpchost_test.Results()
NOFILE = 96


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_host_with_few_fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, hard))
    try:
        return rpchost_test.Host(plugins=["testsvc"], plaintext=True, workers=1)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


h = start_host_with_few_fds()
socks = []
try:
    def exhausted():
        for _ in range(NOFILE + 40):  # more than the host can hold
            s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            socks.append(s)
        time.sleep(0.5)
        before_cpu, before_log = cpu_seconds(h.serving_pid), h.logs().count("accept")
        time.sleep(3)
        used = cpu_seconds(h.serving_pid) - before_cpu
        lines = h.logs().count("accept") - before_log
        expect(used < 1.0, "host used %.2f s of CPU in 3 s while out of descriptors" % used)
        expect(lines <= 3, "%d log lines about accept in 3 s" % lines)
        expect(h.proc.poll() is None, "host still running")

    def recovers():
        for s in socks:
            s.close()
        del socks[:]
        deadline = time.time() + 20
        while True:
            try:
                ch = h.channel()
                r = cl.echo(ch)(pb.Req(text="back"), timeout=2)
                ch.close()
                expect(r.text == "back", "answer")
                return
            except Exception:  # noqa: BLE001 - retried until the deadline
                if time.time() > deadline:
                    raise
                time.sleep(0.2)

    results.run("out of descriptors: no busy loop, no log flood", exhausted)
    results.run("descriptors free again: the host accepts and serves", recovers)
finally:
    for s in socks:
        s.close()
    code = h.stop()
    h.log.close()
    if code != 0:
        print("rpchost exited with %s:\n%s" % (code, h.logs()[-3000:]))
        results.failed += 1
    shutil.rmtree(h.tmp, ignore_errors=True)
results.finish()
