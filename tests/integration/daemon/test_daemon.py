"""The host as a daemon: trust checks on the plugin directory and files,
the refusal to serve as root, --user (checked in /proc/PID/status) with
serving, SIGHUP and hot add after the switch, and the sd_notify protocol
spoken on a real NOTIFY_SOCKET datagram socket (READY, RELOADING, READY,
WATCHDOG, STOPPING in order)."""
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "../hotops"))

import hotlib  # noqa: E402
from hotlib import rt, install, version, wait_log  # noqa: E402

TEST_USER = "rpchost-test"


def start_fail(args, env_extra=None, timeout=15):
    """Runs rpchost expecting it to refuse to start; returns (code, stderr)."""
    env = dict(os.environ)
    env.update(env_extra or {})
    p = subprocess.run([rt.RPCHOST_BIN] + args, capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stderr


def plugin_dir(mode, parent_mode=0o755):
    top = tempfile.mkdtemp(prefix="rpchost-trust-")
    os.chmod(top, parent_mode)
    d = os.path.join(top, "plugins")
    os.mkdir(d)
    shutil.copyfile(hotlib.test_plugin("swap_v1"), os.path.join(d, "swap.so"))
    os.chmod(os.path.join(d, "swap.so"), 0o644)
    os.chmod(d, mode)
    return top, d


def test_refuses_unsafe_directories():
    for mode, parent, bad, bit in [(0o777, 0o755, "plugins", "group and others (mode 0777)"),
                                   (0o775, 0o755, "plugins", "its group (mode 0775)"),
                                   (0o755, 0o757, "", "others (mode 0757)")]:
        top, d = plugin_dir(mode, parent)
        try:
            code, err = start_fail(["--plugins", d, "--plaintext", "--listen", "127.0.0.1:%d" % rt.free_port()])
            want = "rpchost: plugin directory refused: %s is writable by %s" % (
                os.path.join(top, bad).rstrip("/"), bit)
            assert code == 2, (code, err)
            assert err.startswith(want), "%r does not start with %r" % (err, want)
            assert len(err.strip().splitlines()) == 1, err
        finally:
            shutil.rmtree(top)


def test_unsafe_switch_allows_and_warns():
    top, d = plugin_dir(0o777)
    try:
        with rt.Host(plugins=(), plaintext=True, plugin_dir=d, args=["--unsafe-plugin-dir"]) as h:
            ch = h.channel()
            assert version(ch) == "1"
            ch.close()
            wait_log(h, r"plugin trust checks are off \(--unsafe-plugin-dir\)")
    finally:
        shutil.rmtree(top)


def test_hot_add_of_writable_file_refused():
    with rt.Host(plugins=(), plaintext=True) as h:
        src = hotlib.test_plugin("swap_v1")
        tmp = os.path.join(h.tmp, ".incoming")
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o666)
        os.rename(tmp, os.path.join(h.plugin_dir, "swap.so"))
        wait_log(h, r"swap\.so .*refused.*swap\.so is writable by group and others \(mode 0666\)")
        # The same file made safe loads on the next event.
        os.chmod(os.path.join(h.plugin_dir, "swap.so"), 0o644)
        install(h, "swap_v1", "swap.so")
        ch = h.channel()
        deadline = time.time() + 10
        while True:
            try:
                assert version(ch) == "1"
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)
        ch.close()


def test_refuses_root_without_user():
    if os.geteuid() != 0:
        print("  (not root: nothing to refuse)")
        return
    d = tempfile.mkdtemp(prefix="rpchost-root-")
    try:
        env = {"RPCHOST_ALLOW_ROOT": ""}
        code, err = start_fail(["--plugins", d, "--plaintext",
                                "--listen", "127.0.0.1:%d" % rt.free_port()], env)
        assert code == 2, (code, err)
        assert err.strip() == ("rpchost: refusing to serve as root: set --user NAME (user = NAME "
                               "in [rpchost]), or --allow-root to insist"), err
        code, err = start_fail(["--plugins", d, "--plaintext", "--user", "no-such-user-xyz",
                                "--listen", "127.0.0.1:%d" % rt.free_port()], env)
        assert code == 2 and "user 'no-such-user-xyz': no such user" in err, (code, err)
    finally:
        shutil.rmtree(d)


def ensure_user():
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                        TEST_USER], check=True)
        return pwd.getpwnam(TEST_USER)


def proc_ids(pid):
    ids = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("Uid", "Gid", "Groups", "CapEff"):
                ids[k] = v.split()
    return ids


def test_user_switch_serves_reloads_and_hot_adds():
    if os.geteuid() != 0:
        print("  (not root: --user cannot be tested)")
        return
    pw = ensure_user()
    # Root-owned and readable by the unprivileged user: trusted and usable.
    top, d = plugin_dir(0o755)
    try:
        user_switch(pw, d)
    finally:
        shutil.rmtree(top)


def user_switch(pw, d):
    with rt.Host(plugins=(), args=["--user", TEST_USER], plugin_dir=d,
                 env={"RPCHOST_ALLOW_ROOT": ""}) as h:
        wait_log(h, r"running as %s \(uid %d\)" % (TEST_USER, pw.pw_uid))
        ids = proc_ids(h.serving_pid)  # the serving process drops; the supervisor keeps its identity
        assert ids["Uid"] == [str(pw.pw_uid)] * 4, ids
        assert ids["Gid"] == [str(pw.pw_gid)] * 4, ids
        assert ids["CapEff"] == ["0000000000000000"], ids
        ch = h.channel()
        assert version(ch) == "1"
        h.signal(signal.SIGHUP)
        wait_log(h, r"SIGHUP: rescanning")
        install(h, "swap_v2", "swap.so")
        deadline = time.time() + 10
        while version(ch) != "2":
            assert time.time() < deadline, h.logs()
            time.sleep(0.05)
        ch.close()


def free_low_port():
    """A port below 1024 free on 127.0.0.1 a moment ago (we are root here)."""
    for port in range(900, 1000):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port in 900-999")


def test_ambient_capability_binds_low_port():
    """The unit's alternative to --user: started unprivileged with only
    CAP_NET_BIND_SERVICE (AmbientCapabilities=), it binds a port below 1024
    and serves."""
    if os.geteuid() != 0:
        print("  (not root: cannot set up the capability)")
        return
    ensure_user()
    top, d = plugin_dir(0o755)
    port = free_low_port()
    log = os.path.join(top, "rpchost.log")
    cmd = ["setpriv", "--reuid", TEST_USER, "--regid", TEST_USER, "--init-groups",
           "--inh-caps", "+net_bind_service", "--ambient-caps", "+net_bind_service", "--",
           rt.RPCHOST_BIN, "--plugins", d, "--plaintext", "--listen", "127.0.0.1:%d" % port]
    env = dict(os.environ)
    env.pop("RPCHOST_ALLOW_ROOT", None)
    with open(log, "wb") as f:
        p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=top)
    try:
        deadline = time.time() + 15
        while True:
            assert p.poll() is None, open(log).read()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.time() < deadline, open(log).read()
                time.sleep(0.05)
        import grpc
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        assert version(ch, timeout=15) == "1", open(log).read()
        ch.close()
        ids = proc_ids(p.pid)
        assert ids["Uid"][0] != "0", ids
        assert ids["CapEff"] == ["0000000000000400"], ids  # CAP_NET_BIND_SERVICE only
    finally:
        p.terminate()
        p.wait(30)
        shutil.rmtree(top)


def test_socket_activation():
    """systemd's own activator (systemd-socket-activate) binds the port and
    starts rpchost on the first connection with LISTEN_FDS: rpchost serves
    on that socket and binds nothing of its listen settings."""
    top, d = plugin_dir(0o755)
    port, unused = rt.free_port(), rt.free_port()
    log = os.path.join(top, "rpchost.log")
    cmd = ["systemd-socket-activate", "-l", "127.0.0.1:%d" % port,
           "-E", "RPCHOST_ALLOW_ROOT=1", "--",
           rt.RPCHOST_BIN, "--plugins", d, "--plaintext", "--workers", "2",
           "--listen", "127.0.0.1:%d" % unused]
    with open(log, "wb") as f:
        act = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=top)
    try:
        import grpc
        ch = grpc.insecure_channel("127.0.0.1:%d" % port)
        deadline = time.time() + 20
        while True:
            try:
                assert version(ch, timeout=5) == "1"
                break
            except grpc.RpcError:
                assert time.time() < deadline and act.poll() is None, open(log).read()
                time.sleep(0.1)
        for _ in range(20):  # both workers take connections from the one socket
            c2 = grpc.insecure_channel("127.0.0.1:%d" % port)
            assert version(c2) == "1"
            c2.close()
        ch.close()
        text = open(log).read()
        assert "serving on 127.0.0.1:%d (socket activation)" % port in text, text
        with socket.socket() as s2:  # the listen setting was not bound
            assert s2.connect_ex(("127.0.0.1", unused)) != 0
    finally:
        act.terminate()  # the activator exec'd rpchost: SIGTERM drains and stops it
        act.wait(30)
        shutil.rmtree(top)


def recv_all(sock, want, timeout=15):
    """Reads datagrams until every state in `want` was seen in order;
    returns the list of messages."""
    got = []
    deadline = time.time() + timeout
    i = 0
    while i < len(want):
        left = deadline - time.time()
        assert left > 0, "waited for %r, got %r" % (want[i:], got)
        sock.settimeout(left)
        msg = sock.recv(4096).decode()
        got.append(msg)
        if want[i] in msg.split("\n"):
            i += 1
    return got


def test_sd_notify_protocol():
    d = tempfile.mkdtemp(prefix="rpchost-notify-")
    path = os.path.join(d, "notify.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    try:
        env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
        with rt.Host(plugins=("swap_v1",), plaintext=True, env=env, wait=False) as h:
            got = recv_all(s, ["READY=1"])
            assert any(m.startswith("READY=1\nSTATUS=serving on ") for m in got), got
            got = recv_all(s, ["WATCHDOG=1", "WATCHDOG=1"], timeout=5)
            status = [m for m in got if m.startswith("STATUS=serving on ") and ": " in m]
            assert status and status[0].endswith(": 1 plugins (0 draining), 0 calls in flight"), got
            h.signal(signal.SIGHUP)
            got = recv_all(s, ["RELOADING=1", "READY=1"])
            rel = [m for m in got if m.startswith("RELOADING=1")][0]
            assert rel.split("\n")[1].startswith("MONOTONIC_USEC="), rel
            h.signal(signal.SIGTERM)
            recv_all(s, ["STOPPING=1"])
            assert h.proc.wait(30) == 0
    finally:
        s.close()
        shutil.rmtree(d)


if __name__ == "__main__":
    r = rt.Results()
    r.run("refuses unsafe plugin directories", test_refuses_unsafe_directories)
    r.run("--unsafe-plugin-dir allows and warns", test_unsafe_switch_allows_and_warns)
    r.run("hot add of a writable file refused", test_hot_add_of_writable_file_refused)
    r.run("refuses root without --user", test_refuses_root_without_user)
    r.run("--user: switches, serves, reloads, hot-adds", test_user_switch_serves_reloads_and_hot_adds)
    r.run("unprivileged with CAP_NET_BIND_SERVICE binds a low port",
          test_ambient_capability_binds_low_port)
    r.run("socket activation: serves on the passed socket", test_socket_activation)
    r.run("sd_notify READY/RELOADING/READY/WATCHDOG/STOPPING", test_sd_notify_protocol)
    r.finish()
