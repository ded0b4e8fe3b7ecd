"""A database the rides plugin cannot open or write: init fails with one
clear log line (the host serves on without Rides: UNIMPLEMENTED), or a
call fails with UNAVAILABLE and a clear message. Never a crash."""
import os
import shutil
import sqlite3
import stat
import subprocess
import tempfile

import grpc

from rides_common import (HEX32, db_scalar, expect_error, original_request, original_events, pb,
                          rides_config, rt, start_stub, track_stub)

REAL_BIN = rt.RPCHOST_BIN
UNIMPL = grpc.StatusCode.UNIMPLEMENTED


def log_lines_with(logs, needle):
    return [ln for ln in logs.splitlines() if needle in ln]


def host_with(config, wrapper=None):
    """A host with rides and this config, optionally started through a
    wrapper script (to drop a capability or mount a small tmpfs)."""
    rt.RPCHOST_BIN = wrapper or REAL_BIN
    try:
        return rt.Host(plugins=["rides"], config=config)
    finally:
        rt.RPCHOST_BIN = REAL_BIN


def write_wrapper(dirname, body):
    path = os.path.join(dirname, "rpchost-wrapper")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body + "\n")
    os.chmod(path, 0o755)
    return path


def expect_refused(config, needle, wrapper=None):
    """The host starts, logs one line with needle, and has no Rides."""
    with host_with(config, wrapper) as h:
        expect_error(lambda: start_stub(h.channel())(original_request(), timeout=3), UNIMPL)
        logs = h.logs()
    lines = log_lines_with(logs, needle)
    assert len(lines) == 1, "want one line with %r, log:\n%s" % (needle, logs)
    return lines[0]


def test_missing_directory(tmp):
    db = os.path.join(tmp, "no", "such", "dir", "rides.db")
    line = expect_refused(rides_config(db=db), "cannot open database %s" % db)
    assert "unable to open database file; check that the directory exists" in line, line
    assert not os.path.exists(os.path.dirname(db))


def test_read_only_file(tmp):
    db = os.path.join(tmp, "ro.db")
    # A real rides database with one ride, then made read-only.
    with host_with(rides_config(db=db)) as h:
        rid = start_stub(h.channel())(original_request(), timeout=3).id
    os.chmod(db, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    wrapper = None
    if os.geteuid() == 0:
        # Root ignores file modes; drop the capabilities that let it.
        wrapper = write_wrapper(tmp, 'exec setpriv --bounding-set -dac_override,-dac_read_search'
                                     ' -- "%s" "$@"' % REAL_BIN)
    line = expect_refused(rides_config(db=db),
                          "cannot write database %s: the file is read-only" % db, wrapper)
    assert "make the file and its directory writable" in line, line
    os.chmod(db, 0o644)
    assert db_scalar(db, "SELECT count(*) FROM rides WHERE id = ?", (rid,)) == 1


def test_not_a_database(tmp):
    db = os.path.join(tmp, "notes.txt")
    with open(db, "w") as f:
        f.write("shopping list: milk, eggs\n" * 200)
    line = expect_refused(rides_config(db=db), "file is not a database")
    assert db in line, line
    with open(db) as f:
        assert f.read() == "shopping list: milk, eggs\n" * 200, "the file was changed"


def test_bad_synchronous(tmp):
    expect_refused(rides_config(db=os.path.join(tmp, "s.db"), synchronous="SOMETIMES"),
                   "synchronous = SOMETIMES in [plugin.rides] is not OFF, NORMAL or FULL")


def test_newer_schema(tmp):
    db = os.path.join(tmp, "future.db")
    con = sqlite3.connect(db)
    con.execute("PRAGMA user_version = 7")
    con.commit()
    con.close()
    expect_refused(rides_config(db=db),
                   "database %s has schema version 7, this plugin knows up to 2" % db)


def can_mount_tmpfs():
    try:
        subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k t /mnt"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=10)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def test_disk_full(tmp):
    """The database on a 1 MiB tmpfs (in the host's own mount namespace):
    calls past the full disk fail UNAVAILABLE; the host keeps serving."""
    mnt = os.path.join(tmp, "small")
    os.makedirs(mnt)
    wrapper = write_wrapper(
        tmp, 'exec unshare -m sh -c \'mount -t tmpfs -o size=1m rides-full "$0" && exec "$@"\''
             ' "%s" "%s" "$@"' % (mnt, REAL_BIN))
    with host_with(rides_config(db=os.path.join(mnt, "rides.db")), wrapper) as h:
        stub = start_stub(h.channel())
        ok = 0
        err = None
        for _ in range(200):
            req = original_request()
            req.driver_id = "D" * 60000
            try:
                assert HEX32.match(stub(req, timeout=10).id)
                ok += 1
            except grpc.RpcError as e:
                err = e
                break
        assert ok > 0, "nothing fitted on the 1 MiB disk"
        assert err is not None, "200 rides of 60 kB fitted on a 1 MiB disk"
        assert err.code() == grpc.StatusCode.UNAVAILABLE, err
        assert err.details() == ("cannot store the ride: the database is unavailable"
                                 " (database or disk is full); retry later"), err.details()
        # A Track that does not fit fails the same way, all or nothing.
        evs = original_events(20000)
        e = expect_error(lambda: track_stub(h.channel())(iter(evs), timeout=30),
                         grpc.StatusCode.UNAVAILABLE)
        assert e.details().startswith("cannot store the track: the database is unavailable"), \
            e.details()
        # Still serving: validation answers, and so does a fresh channel.
        bad = original_request()
        bad.driver_id = ""
        expect_error(lambda: start_stub(h.channel())(bad, timeout=3),
                     grpc.StatusCode.INVALID_ARGUMENT, "driver_id is empty")
        logs = h.logs()
    assert log_lines_with(logs, "database or disk is full; free disk space"), logs


def main():
    res = rt.Results()
    tmp = tempfile.mkdtemp(prefix="rides-storage-")
    try:
        res.run("missing directory: init refused, one log line", test_missing_directory, tmp)
        res.run("read-only database file: init refused, one log line", test_read_only_file, tmp)
        res.run("not a database: init refused, file untouched", test_not_a_database, tmp)
        res.run("bad synchronous value: init refused", test_bad_synchronous, tmp)
        res.run("newer schema version: init refused", test_newer_schema, tmp)
        if can_mount_tmpfs():
            res.run("disk full: UNAVAILABLE, host keeps serving", test_disk_full, tmp)
        else:
            print("skip disk full: cannot mount a tmpfs in a private mount namespace here",
                  flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
