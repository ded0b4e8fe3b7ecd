"""Timing with a real gRPC client (Debian's python3-grpcio): how long from
a plugin renamed into rpchost's plugin directory (or from exec, for a
server that must restart) to the first OK call."""
import os
import shutil
import time

import grpc

POLL_S = 0.001
LIMIT_S = 10.0


def channel(port, ca):
    with open(ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    return grpc.secure_channel("localhost:%d" % port, creds)


def _body(req):
    with open(req.file, "rb") as f:
        return f.read()[5:]  # one framed message: grpcio frames it itself


def _poll(call, body, want_ok, limit, last=None):
    """Calls until the outcome is OK (want_ok) or UNIMPLEMENTED (not
    want_ok); returns the monotonic time it happened, or None. `last`, a
    list, receives the last outcome seen."""
    end = time.monotonic() + limit
    last = [] if last is None else last
    while time.monotonic() < end:
        try:
            call(body, timeout=2)
            last[:] = ["OK"]
            if want_ok:
                return time.monotonic()
        except grpc.RpcError as e:
            last[:] = ["%s: %s" % (e.code().name, e.details())]
            if not want_ok and e.code() == grpc.StatusCode.UNIMPLEMENTED:
                return time.monotonic()
        time.sleep(POLL_S)
    return None


def hot_add(server, so_path, req, ca, tmpdir):
    """Renames a copy of so_path into server.plugin_dir, returns seconds to
    the first OK call of req (None if none within LIMIT_S), then removes it
    again and waits until the method is gone."""
    name = os.path.basename(so_path)
    staged = os.path.join(os.path.dirname(server.plugin_dir), ".staged-" + name)
    shutil.copyfile(so_path, staged)  # same file system: rename(2) is atomic
    ch = channel(server.port, ca)
    try:
        call = ch.unary_unary(req.path)
        grpc.channel_ready_future(ch).result(timeout=LIMIT_S)
        last = []
        if _poll(call, _body(req), False, LIMIT_S, last) is None:
            raise RuntimeError("%s answers %s before %s is added, not UNIMPLEMENTED"
                               % (req.path, last, name))
        t0 = time.monotonic()
        os.rename(staged, os.path.join(server.plugin_dir, name))
        t1 = _poll(call, _body(req), True, LIMIT_S)
        os.unlink(os.path.join(server.plugin_dir, name))
        if _poll(call, _body(req), False, LIMIT_S, last) is None:
            raise RuntimeError("%s still answers %s %ss after %s was removed"
                               % (req.path, last, LIMIT_S, name))
        return None if t1 is None else t1 - t0
    finally:
        ch.close()


def restart_to_ok(start_server, req, ca):
    """Starts a server with start_server() (which returns once it listens);
    seconds from the exec to the first OK call on a new channel."""
    t0 = time.monotonic()
    s = start_server()
    try:
        ch = channel(s.port, ca)
        try:
            t1 = _poll(ch.unary_unary(req.path), _body(req), True, LIMIT_S)
        finally:
            ch.close()
    finally:
        s.stop()
    return None if t1 is None else t1 - t0


SWAP_VERSION = "/rpchost.test.Swap/Version"


def _swap_version(reply):
    """VersionReply.version (field 1, a short string) from the raw reply."""
    i = 0
    while i < len(reply):
        key = reply[i]
        if key == 0x0a:
            n = reply[i + 1]
            return reply[i + 2:i + 2 + n].decode()
        if key & 7 == 0:  # varint field: skip it
            i += 1
            while reply[i] & 0x80:
                i += 1
            i += 1
        elif key & 7 == 2:
            i += 2 + reply[i + 1]
        else:
            break
    return ""


def hot_replace(server, builds, rounds, ca, limit=LIMIT_S):
    """server serves swap.so (builds[0]). Each round renames the other
    build over swap.so and polls Version until the new build answers.
    Returns ([seconds per round], failed calls seen)."""
    ch = channel(server.port, ca)
    call = ch.unary_unary(SWAP_VERSION)
    times, failed = [], 0
    try:
        grpc.channel_ready_future(ch).result(timeout=limit)
        current = None
        end = time.monotonic() + limit
        while time.monotonic() < end and current is None:
            try:
                current = _swap_version(call(b"", timeout=2))
            except grpc.RpcError:
                time.sleep(POLL_S)
        if current is None:
            raise RuntimeError("swap.so never answered Version")
        versions = {}
        for i in range(rounds):
            src = builds[(i + 1) % len(builds)]
            staged = os.path.join(os.path.dirname(server.plugin_dir), ".staged-swap.so")
            shutil.copyfile(src, staged)
            want = versions.get(src)
            t0 = time.monotonic()
            os.rename(staged, os.path.join(server.plugin_dir, "swap.so"))
            t1 = None
            end = t0 + limit
            while time.monotonic() < end:
                try:
                    v = _swap_version(call(b"", timeout=2))
                except grpc.RpcError:
                    failed += 1
                    time.sleep(POLL_S)
                    continue
                if (want is None and v != current) or (want is not None and v == want):
                    t1 = time.monotonic()
                    versions[src] = current = v
                    break
                time.sleep(POLL_S)
            if t1 is None:
                raise RuntimeError("the replacement %s did not answer within %ss"
                                   % (os.path.basename(src), limit))
            times.append(t1 - t0)
    finally:
        ch.close()
    return times, failed
