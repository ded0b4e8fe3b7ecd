"""bench/run's driver: every scenario of issue 7 against rpchost and the
gRPC C++ peer, alternately (A B A B A B), servers pinned to one CPU and
the load to another, and a Markdown report of medians and ratios.

Run it through bench/run (which installs, builds and passes the paths).
"""
import argparse
import datetime
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import load  # noqa: E402
import wire  # noqa: E402
from procs import Server, free_port, pinned  # noqa: E402
from report import Row, write_report  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


class Params:
    """How long and how hard. Every load loop is bounded by these counts
    and by a timeout derived from them."""

    def __init__(self, smoke):
        self.smoke = smoke
        self.reps = 1 if smoke else 3
        self.measure_s = 0.3 if smoke else 4.0     # target length of a measured run
        self.probe_msgs = 200 if smoke else 10000   # warm-up run, in messages
        self.max_calls = 500 if smoke else 3000000
        self.min_calls = 20 if smoke else 200
        self.track_sizes = (100, 1000) if smoke else (100, 100000)
        self.stream_count = 100 if smoke else 1000
        self.handshake_batch = 10 if smoke else 100
        self.handshake_rounds = 1 if smoke else 40
        self.idle_conns = 20 if smoke else 1000
        self.hot_adds = 2 if smoke else 20
        self.timeout = 60 if smoke else 120


class Bench:
    def __init__(self, args):
        self.args = args
        self.P = Params(args.smoke)
        self.scpu, self.lcpu = args.server_cpu, args.load_cpu
        self.work = tempfile.mkdtemp(prefix="rpchost-bench-", dir=args.work)
        self.shm = tempfile.mkdtemp(prefix="rpchost-bench-", dir="/dev/shm") \
            if os.path.isdir("/dev/shm") else self.work
        self.rows = []        # report rows, scenario by scenario
        self.notes = {}       # scenario -> list of lines
        self.errors = []
        self.skips = []
        self.raw = {}
        self.protos = wire.Protos(args.rides_proto)
        self.reqs = wire.build_requests(self.protos, os.path.join(self.work, "req"),
                                        self.P.track_sizes, self.P.stream_count)
        self.have = {p: os.path.exists(os.path.join(args.plugins, p + ".so"))
                     for p in ("rides", "interop", "authlog")}
        if "start" not in self.reqs:  # no rides.proto: nothing to send to Rides
            self.have["rides"] = False
        self.peer_ok = bool(args.peer) and os.path.exists(args.peer)

    # ---- servers --------------------------------------------------------

    def rpchost(self, label, plugins, config, workers=1):
        return self.rpchost_with(label, {p + ".so": os.path.join(self.args.plugins, p + ".so") for p in plugins},
                                 config, workers)

    def rpchost_with(self, label, files, config, workers=1):
        """rpchost with a fresh plugin directory holding files {name: source}."""
        pdir = tempfile.mkdtemp(prefix="plugins-", dir=self.work)
        for name, src in files.items():
            shutil.copyfile(src, os.path.join(pdir, name))
        cfg = pdir + ".ini"
        with open(cfg, "w") as f:
            f.write(config)
        port = free_port()
        cmd = [self.args.rpchost, "--plugins", pdir, "--listen", "127.0.0.1:%d" % port,
               "--cert", self.args.cert, "--key", self.args.key, "--workers", str(workers),
               "--config", cfg]
        env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "CERT_FILE", "KEY_FILE")}
        s = Server(label, cmd, port, self.scpu, self.work, env=env)
        s.plugin_dir = pdir
        s.expect_clean_exit = True
        return s.start()

    def rpchost_config(self, db=None, synchronous=None):
        cfg = "[rpchost]\nlog_level = warn\n"
        if db and self.have["rides"]:
            cfg += "\n[plugin.rides]\ndb = %s\n" % db
            if synchronous:
                cfg += "synchronous = %s\n" % synchronous
        return cfg

    def peer(self):
        port = free_port()
        cmd = [self.args.peer, "--listen", "127.0.0.1:%d" % port, "--cert", self.args.cert,
               "--key", self.args.key, "--api", self.args.peer_api]
        return Server("gRPC C++", cmd, port, self.scpu, self.work).start()

    def nghttpd(self, req_name, answer):
        docroot = os.path.join(self.work, "docroot")
        path = os.path.join(docroot, self.reqs[req_name].path.lstrip("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(answer)
        port = free_port()
        cmd = ["nghttpd", "-a", "127.0.0.1", "-d", docroot, port, self.args.key, self.args.cert]
        s = Server("nghttpd", cmd, port, self.scpu, self.work)
        s.static_file = path
        return s.start()

    # ---- measuring ------------------------------------------------------

    def measure(self, server, req, conns, streams, want_latency=False):
        """A warm-up run that also estimates the rate, then a measured run
        sized to last about measure_s. Returns h2load's figures plus
        calls, msgs/s and the server's CPU µs per call."""
        P = self.P
        conc = conns * streams
        answer = getattr(server, "answer_bytes", None)
        probe = max(conc * 2, P.probe_msgs // req.messages, 1)
        w = load.h2load(server, req, conns, streams, probe, self.lcpu, P.timeout, answer_bytes=answer)
        calls = int(w["rps"] * P.measure_s)
        calls = max(conc * 2, P.min_calls if req.messages == 1 else 1, min(calls, P.max_calls))
        lat = os.path.join(self.work, "latency.log") if want_latency else None
        restart = getattr(server, "restart_per_run", False)
        if restart:  # the plugin's statistics at fini then cover exactly this run
            server.stop()
            server.start()
            log0 = len(server.logs())
        r = load.h2load(server, req, conns, streams, calls, self.lcpu,
                        P.timeout + P.measure_s * 10, log_file=lat, answer_bytes=answer)
        if restart:
            server.stop()
            r.update(rides_stats(server.logs()[log0:]))
            server.start()
        r["calls"] = calls
        r["msgs_per_s"] = r["rps"] * req.messages
        r["cpu_us_per_call"] = r["server_cpu"] / calls * 1e6
        r["cpu_ns_per_msg"] = r["server_cpu"] / (calls * req.messages) * 1e9
        if lat:
            lats = load.latencies_us(lat)
            r["p50_us"] = load.percentile(lats, 50)
            r["p99_us"] = load.percentile(lats, 99)
            os.unlink(lat)
        return r

    def verify(self, server, req):
        if getattr(server, "static_file", None):
            rq = wire.Request(req.name, req.path, req.file, 1, server.answer_bytes, None)
            rq.file_answer = server.static_file
            load.verify(server, rq, self.lcpu, grpc=False)
        else:
            load.verify(server, req, self.lcpu)

    def alternate(self, scenario, servers, req, points, latency_at=None):
        """For each (conns, streams) point, reps x (each server in turn).
        Returns {point: {label: [result, ...]}}."""
        out = {}
        for s in servers:
            self.verify(s, req)
        for conns, streams in points:
            key = (conns, streams)
            out[key] = {s.label: [] for s in servers}
            for rep in range(self.P.reps):
                for s in servers:
                    lat_at = latency_at if isinstance(latency_at, tuple) else (latency_at,)
                    try:
                        r = self.measure(s, req, conns, streams,
                                         want_latency=(conns * streams in lat_at))
                    except load.LoadError as e:
                        self.error(scenario, str(e))
                        continue
                    out[key][s.label].append(r)
                    log("%s %s %dx%d rep %d: %s: %.0f calls/s, %.0f msgs/s, %.2f µs CPU/call%s"
                        % (scenario, req.name, conns, streams, rep + 1, s.label, r["rps"],
                           r["msgs_per_s"], r["cpu_us_per_call"],
                           ", p50 %d µs p99 %d µs" % (r["p50_us"], r["p99_us"]) if "p50_us" in r else ""))
        for s in servers:  # still answering correctly after the load
            self.verify(s, req)
        self.raw.setdefault(scenario, {})[req.name] = {
            "%dx%d" % k: v for k, v in out.items()}
        return out

    def log(self, msg):
        log(msg)

    def error(self, scenario, msg):
        log("ERROR %s: %s" % (scenario, msg))
        self.errors.append("%s: %s" % (scenario, msg))

    def skip(self, scenario, why):
        log("skip %s: %s" % (scenario, why))
        self.skips.append("%s: %s" % (scenario, why))

    def note(self, scenario, line):
        self.notes.setdefault(scenario, []).append(line)

    def servers_or_skip(self, scenario, plugins):
        missing = [p for p in plugins if not self.have[p]]
        if missing:
            self.skip(scenario, "no %s in %s" % (", ".join(p + ".so" for p in missing), self.args.plugins))
            return False
        return True

    def peer_or_none(self, scenario):
        if self.peer_ok:
            return self.peer()
        self.skip(scenario + " (gRPC C++ side)", "no peer binary (%s); build it with bench/run "
                  "without --smoke" % (self.args.peer or "bench/peer"))
        return None

    def rows_for(self, scenario, res, metric_fns, labels=("rpchost", "gRPC C++"), targets=None, tag=None):
        """Adds one row per (point, metric) to the report."""
        targets = targets or {}
        for (conns, streams), by in res.items():
            for mname, unit, fn, better in metric_fns:
                vals = [[fn(r) for r in by.get(lab, []) if fn(r) is not None] for lab in labels]
                t = targets.get((mname, conns * streams), targets.get(mname))
                self.rows.append(Row(scenario, "%s, %d stream%s (%d conn x %d)"
                                     % (mname, conns * streams, "s" if conns * streams > 1 else "",
                                        conns, streams),
                                     unit, vals, labels, better, t, tag=tag))

    def mark_load_bound(self, rows, res, floor_label):
        """A calls/s target holds "wherever the load generator is not the
        limit": where the static-file floor server reaches no more calls/s
        than rpchost (within 20 %), the client side is the limit, and the
        row says so instead of passing or failing on calls/s."""
        import statistics
        for row in rows:
            if not row.metric.startswith("calls/s") or not row.target:
                continue
            for (conns, streams), by in res.items():
                if "%d stream" % (conns * streams) not in row.metric or "(%d conn x %d)" % (conns, streams) \
                        not in row.metric:
                    continue
                floor = [r["rps"] for r in by.get(floor_label, [])]
                a = row.medians()[0]
                if floor and a and a >= 0.8 * statistics.median(floor):
                    row.load_bound = "%s reaches %s calls/s here" % (floor_label,
                                                                    "{:,.0f}".format(statistics.median(floor)))

    # ---- scenarios ------------------------------------------------------

    def s1_unary(self):
        sc = "1. Unary"
        points = [(1, 1), (4, 4), (4, 64)] if not self.P.smoke else [(4, 4)]
        metrics = [("calls/s", "calls/s", lambda r: r["rps"], "higher"),
                   ("server CPU per call", "µs", lambda r: r["cpu_us_per_call"], "lower")]
        lat_metrics = [("p50 latency", "µs", lambda r: r.get("p50_us"), "lower"),
                       ("p99 latency", "µs", lambda r: r.get("p99_us"), "lower")]
        # Interop UnaryCall, with nghttpd serving the same answer as the floor.
        if self.servers_or_skip(sc + " UnaryCall", ["interop"]):
            a = self.rpchost("rpchost", ["interop"], self.rpchost_config())
            servers = [a]
            b = self.peer_or_none(sc)
            if b:
                servers.append(b)
            f = None
            if shutil.which("nghttpd"):
                f = self.nghttpd("unary", self.reqs["unary_answer"])
                f.answer_bytes = len(self.reqs["unary_answer"])
                servers.append(f)
            else:
                self.skip("7. Floor", "nghttpd absent (Debian nghttp2-server)")
            try:
                res = self.alternate(sc, servers, self.reqs["unary"], points, latency_at=16)
            finally:
                for s in servers:
                    s.stop()
            self.s1_res = res
            t = {("calls/s", 256): (">=", 3.0), ("calls/s", 16): (">=", 3.0),
                 "server CPU per call": ("<=", 1 / 3.0)}
            n0 = len(self.rows)
            self.rows_for(sc + ": interop UnaryCall (16-byte payloads)", res, metrics, targets=t,
                          tag="1. UnaryCall")
            if f:
                self.mark_load_bound(self.rows[n0:], res, "nghttpd")
            lat16 = {k: v for k, v in res.items() if k[0] * k[1] == 16}
            self.rows_for(sc + ": interop UnaryCall (16-byte payloads)", lat16, lat_metrics,
                          targets={"p99 latency": ("<=", 0.7)}, tag="1. UnaryCall")
            if f:
                self.rows_for("7. Floor: interop UnaryCall vs nghttpd static answer", res,
                              metrics, labels=("rpchost", "nghttpd"),
                              targets={"server CPU per call": ("<=", 1.3)}, tag="7. Floor")
        # Rides Start, storage in a temporary database with synchronous=OFF.
        if self.servers_or_skip(sc + " Start", ["rides"]):
            db = os.path.join(self.shm, "rides-s1start.db")
            a = self.rpchost("rpchost", ["rides"], self.rpchost_config(db, "OFF"))
            servers = [a]
            b = self.peer_or_none(sc)
            if b:
                servers.append(b)
            try:
                res = self.alternate(sc, servers, self.reqs["start"], points, latency_at=16)
            finally:
                for s in servers:
                    s.stop()
                rm_db(db)
            t = {("calls/s", 256): (">=", 3.0), ("calls/s", 16): (">=", 3.0),
                 "server CPU per call": ("<=", 1 / 3.0)}
            title = sc + ": Rides Start (rpchost: SQLite, synchronous=OFF, tmpfs; peer: no storage)"
            self.rows_for(title, res, metrics, targets=t, tag="1. Start")
            lat16 = {k: v for k, v in res.items() if k[0] * k[1] == 16}
            self.rows_for(title, lat16, lat_metrics, targets={"p99 latency": ("<=", 0.7)}, tag="1. Start")

    def s2_durable(self):
        """Durable Start and Track (issue 19): the rides plugin with its
        default storage (synchronous FULL, database on disk) beside the gRPC
        C++ peer (stores nothing) and beside rpchost serving the same calls
        without storage (test plugin rides_nostore), at 16 and 1,000
        concurrent streams. The durable rpchost is restarted before each
        measured run so that the plugin's statistics line (logged at fini)
        gives that run's group-commit histogram."""
        sc = "2. Durable"
        if not self.servers_or_skip(sc, ["rides"]):
            return
        nostore = os.path.join(self.args.test_plugins, "rides_nostore.so")
        points = [(4, 4), (100, 10)] if not self.P.smoke else [(4, 4)]
        metrics = [("calls/s", "calls/s", lambda r: r["rps"], "higher"),
                   ("server CPU per call", "µs", lambda r: r["cpu_us_per_call"], "lower"),
                   ("p50 latency", "µs", lambda r: r.get("p50_us"), "lower"),
                   ("p99 latency", "µs", lambda r: r.get("p99_us"), "lower")]
        for req_name, what in (("start", "Start"), ("track100", "Track of 100 points")):
            dbdir = tempfile.mkdtemp(prefix="durable-", dir=self.work)
            db = os.path.join(dbdir, "rides.db")
            cfg = self.rpchost_config(db).replace("log_level = warn", "log_level = info")
            a = self.rpchost("rpchost", ["rides"], cfg)
            a.restart_per_run = True
            servers = [a]
            b = self.peer_or_none(sc)
            if b:
                servers.append(b)
            if os.path.exists(nostore):
                servers.append(self.rpchost_with("rpchost, no storage", {"rides.so": nostore},
                                                 self.rpchost_config()))
            else:
                self.skip(sc + " (rpchost without storage)", "no %s: build the tests" % nostore)
            fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE", "-T", dbdir], capture_output=True,
                                text=True).stdout.strip() or "?"
            try:
                res = self.alternate(sc, servers, self.reqs[req_name], points, latency_at=(16, 1000))
            finally:
                for s in servers:
                    s.stop()
            shutil.rmtree(dbdir, ignore_errors=True)
            title = "%s %s: rpchost stores (SQLite, synchronous=FULL, %s)" % (sc, what, fs.split()[0])
            self.note(title.split(":")[0],
                      "rpchost: rides plugin with its default storage settings (synchronous FULL), database "
                      "on %s (%s); gRPC C++ and `rpchost, no storage` (the plugin built with "
                      "RIDES_NO_STORE: same validation, ids and answers) store nothing." % (dbdir.rsplit('/', 2)[0], fs))
            for (conns, streams), by in res.items():
                for i, r in enumerate(by.get("rpchost", [])):
                    if r.get("commits"):
                        self.note(title.split(":")[0],
                                  "%d streams, run %d: %s calls in %d commits, calls per commit mean %.1f, "
                                  "max %d; histogram (calls:commits) %s"
                                  % (conns * streams, i + 1, "{:,}".format(r["calls"]), r["commits"],
                                     r["calls"] / r["commits"], r["max_batch"], r["hist"]))
            self.rows_for(title + "; vs gRPC C++ (no storage)", res, metrics, tag="2. Durable " + what)
            if len(servers) > 2:
                self.rows_for(title + "; vs rpchost without storage", res, metrics,
                              labels=("rpchost", "rpchost, no storage"), tag="2. Durable " + what)

    def s3_track(self):
        sc = "3. Client streaming Track"
        if not self.servers_or_skip(sc, ["rides"]):
            return
        for n in self.P.track_sizes:
            db = os.path.join(self.shm, "rides-s3-%d.db" % n)
            a = self.rpchost("rpchost", ["rides"], self.rpchost_config(db, "OFF"))
            servers = [a]
            b = self.peer_or_none(sc)
            if b:
                servers.append(b)
            point = (4, 4) if n <= 1000 else (4, 1)
            try:
                res = self.alternate(sc, servers, self.reqs["track%d" % n], [point])
            finally:
                for s in servers:
                    s.stop()
                rm_db(db)
            self.rows_for("%s: calls of %d messages (rpchost stores every point: SQLite, synchronous=OFF, "
                          "tmpfs; peer: no storage)" % (sc, n), res,
                          [("messages/s", "msgs/s", lambda r: r["msgs_per_s"], "higher"),
                           ("server CPU per message", "ns", lambda r: r["cpu_ns_per_msg"], "lower")],
                          targets={"messages/s": (">=", 3.0), "server CPU per message": ("<=", 1 / 3.0)},
                          tag="3. Track x%d" % n)

    def s3_input(self):
        sc = "3. Client streaming without storage"
        if not self.servers_or_skip(sc, ["interop"]):
            return
        a = self.rpchost("rpchost", ["interop"], self.rpchost_config())
        servers = [a]
        b = self.peer_or_none(sc)
        if b:
            servers.append(b)
        try:
            for n in self.P.track_sizes:
                point = (4, 4) if n <= 1000 else (4, 1)
                res = self.alternate(sc, servers, self.reqs["input%d" % n], [point])
                self.rows_for("%s: interop StreamingInputCall, calls of %d messages of %d bytes (no storage on "
                              "either side)" % (sc, n, wire.INPUT_PAYLOAD + 4), res,
                              [("messages/s", "msgs/s", lambda r: r["msgs_per_s"], "higher"),
                               ("server CPU per message", "ns", lambda r: r["cpu_ns_per_msg"], "lower")],
                              targets={"messages/s": (">=", 3.0), "server CPU per message": ("<=", 1 / 3.0)},
                              tag="3. StreamingInputCall x%d" % n)
        finally:
            for s in servers:
                s.stop()

    def s4_stream(self):
        sc = "4. Server streaming"
        if not self.servers_or_skip(sc, ["interop"]):
            return
        a = self.rpchost("rpchost", ["interop"], self.rpchost_config())
        servers = [a]
        b = self.peer_or_none(sc)
        if b:
            servers.append(b)
        try:
            res = self.alternate(sc, servers, self.reqs["stream"], [(4, 4)])
        finally:
            for s in servers:
                s.stop()
        self.rows_for("%s: StreamingOutputCall, %d x 1 KiB responses per call" % (sc, self.P.stream_count),
                      res, [("messages/s", "msgs/s", lambda r: r["msgs_per_s"], "higher"),
                            ("server CPU per message", "ns", lambda r: r["cpu_ns_per_msg"], "lower")],
                      targets={"messages/s": (">=", 3.0), "server CPU per message": ("<=", 1 / 3.0)},
                      tag="4. Server streaming")

    def s5_connections(self):
        sc = "5. Connections"
        if not self.servers_or_skip(sc, ["interop"]):
            return
        req = self.reqs["unary"]
        # TLS handshakes per second: every call on a new connection.
        a = self.rpchost("rpchost", ["interop"], self.rpchost_config())
        servers = [a]
        b = self.peer_or_none(sc)
        if b:
            servers.append(b)
        hs = {s.label: [] for s in servers}
        try:
            for s in servers:
                self.verify(s, req)
            k = self.P.handshake_batch
            for rep in range(self.P.reps):
                for s in servers:
                    secs = cpu = 0.0
                    n = 0
                    for _ in range(self.P.handshake_rounds):
                        try:
                            r = load.h2load(s, req, k, 1, k, self.lcpu, self.P.timeout)
                        except load.LoadError as e:
                            self.error(sc, str(e))
                            break
                        secs += r["seconds"]
                        cpu += r["server_cpu"]
                        n += k
                        if secs > self.P.measure_s:
                            break
                    if n:
                        hs[s.label].append({"hps": n / secs, "cpu_us": cpu / n * 1e6})
                        log("%s handshakes rep %d: %s: %.0f/s, %.0f µs CPU each"
                            % (sc, rep + 1, s.label, n / secs, cpu / n * 1e6))
        finally:
            for s in servers:
                s.stop()
        self.rows.append(Row(sc, "TLS handshakes/s (a new connection per call, %d at a time)"
                             % self.P.handshake_batch, "1/s",
                             [[x["hps"] for x in hs.get(l, [])] for l in ("rpchost", "gRPC C++")],
                             ("rpchost", "gRPC C++"), "higher", None))
        self.rows.append(Row(sc, "server CPU per handshake + call", "µs",
                             [[x["cpu_us"] for x in hs.get(l, [])] for l in ("rpchost", "gRPC C++")],
                             ("rpchost", "gRPC C++"), "lower", None))
        # Memory: idle, then with N idle TLS connections.
        plugins = [p for p in ("rides", "authlog", "interop") if self.have[p]]
        mem = {"rpchost": [], "gRPC C++": []}
        for rep in range(self.P.reps):
            for which in ("rpchost", "gRPC C++"):
                if which == "rpchost":
                    s = self.rpchost("rpchost", plugins,
                                     self.rpchost_config(os.path.join(self.shm, "rides-s5.db"), "OFF"))
                else:
                    s = self.peer_or_none(sc) if rep == 0 or self.peer_ok else None
                    if s is None:
                        continue
                try:
                    mem[which].append(self.conn_memory(s))
                    m = mem[which][-1]
                    log("%s memory rep %d: %s: idle %d KiB, %d conns %d KiB (%.1f KiB each)"
                        % (sc, rep + 1, which, m["idle"], self.P.idle_conns, m["conns"], m["per_conn"]))
                except (RuntimeError, load.LoadError) as e:
                    self.error(sc, "%s: %s" % (which, e))
                finally:
                    s.stop()
        rm_db(os.path.join(self.shm, "rides-s5.db"))
        labels = ("rpchost", "gRPC C++")
        self.rows.append(Row(sc, "RSS idle (rpchost: %s loaded)" % ", ".join(plugins), "KiB",
                             [[m["idle"] for m in mem[l]] for l in labels], labels, "lower",
                             ("abs<=", 8192)))
        self.rows.append(Row(sc, "of which anonymous (RssAnon: heap, stacks; the rest is mapped library "
                             "and program pages)", "KiB",
                             [[m["idle_anon"] for m in mem[l]] for l in labels], labels, "lower", None))
        self.rows.append(Row(sc, "PSS idle (shared library pages divided among the processes mapping them)",
                             "KiB", [[m["idle_pss"] for m in mem[l]] for l in labels], labels, "lower", None))
        self.rows.append(Row(sc, "RSS with %d idle TLS connections" % self.P.idle_conns, "KiB",
                             [[m["conns"] for m in mem[l]] for l in labels], labels, "lower", None))
        self.rows.append(Row(sc, "memory per idle TLS connection", "KiB",
                             [[m["per_conn"] for m in mem[l]] for l in labels], labels, "lower",
                             ("<=", 0.25)))
        self.raw[sc] = {"handshakes": hs, "memory": mem}

    def conn_memory(self, server):
        time.sleep(0.5 if self.P.smoke else 1.0)
        idle = server.rss_kib()
        idle_anon = server.rss_kib("RssAnon")
        idle_pss = server.pss_kib()
        n = self.P.idle_conns
        p = subprocess.Popen(pinned(self.lcpu) + [sys.executable,
                              os.path.join(os.path.dirname(__file__), "idle_conns.py"),
                              str(server.port), str(n), "--hold", "300"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            if not line.startswith("ready"):
                raise RuntimeError("idle connections to %s failed: %r" % (server.label, line))
            time.sleep(0.5 if self.P.smoke else 1.0)
            conns = server.rss_kib()
        finally:
            p.stdin.close()
            p.wait(60)
        return {"idle": idle, "idle_anon": idle_anon, "idle_pss": idle_pss, "conns": conns, "per_conn": (conns - idle) / n}

    def s6_hot_add(self):
        sc = "6. Hot add and replace"
        if not self.servers_or_skip(sc, ["interop"]):
            return
        import grpc_probe
        a = self.rpchost("rpchost", [], self.rpchost_config())
        times = []
        try:
            for i in range(self.P.hot_adds):
                t = grpc_probe.hot_add(a, os.path.join(self.args.plugins, "interop.so"),
                                       self.reqs["unary"], self.args.ca, self.work)
                if t is None:
                    self.error(sc, "rpchost: interop.so renamed into the plugin directory was not "
                               "serving within 10 s")
                    break
                times.append(t * 1000)
                log("%s %d: rename to first OK call %.1f ms" % (sc, i + 1, t * 1000))
        finally:
            a.stop()
        swap = [os.path.join(self.args.test_plugins, "swap_v%d.so" % v) for v in (1, 2)]
        replace, failed = [], 0
        if all(os.path.exists(p) for p in swap):
            r = self.rpchost_with("rpchost", {"swap.so": swap[0]}, self.rpchost_config())
            try:
                replace, failed = grpc_probe.hot_replace(r, swap, self.P.hot_adds, self.args.ca)
                for i, t in enumerate(replace):
                    log("%s replace %d: rename to first call answered by the new build %.1f ms"
                        % (sc, i + 1, t * 1000))
                if failed:
                    self.error(sc, "%d calls failed while swap.so was replaced" % failed)
            finally:
                r.stop()
            replace = [t * 1000 for t in replace]
        else:
            self.skip(sc + " (replace)", "no test plugins swap_v1.so and swap_v2.so in %s" % self.args.test_plugins)
        restart = []
        if self.peer_ok:
            for i in range(self.P.hot_adds):
                t = grpc_probe.restart_to_ok(self.peer, self.reqs["unary"], self.args.ca)
                if t is None:
                    self.error(sc, "gRPC C++: no OK call within 10 s of start")
                    break
                restart.append(t * 1000)
        self.note(sc, "rpchost: time from rename(2) of interop.so into the plugin directory to the first OK "
                  "UnaryCall on an open channel (polling every 1 ms), then the file is removed and the "
                  "next round waits for UNIMPLEMENTED. gRPC C++ cannot add a service while running: its "
                  "figure is the time from exec to the first OK call on a new channel (a restart).")
        self.note(sc, "Replace: a build of the test plugin `swap` (tests/plugins/hotswap, whose builds answer "
                  "Version with their own version) renamed over the serving one; time to the first call "
                  "answered by the new build, polling every 1 ms; calls that failed during the swaps: %d."
                  % failed)
        self.rows.append(Row(sc, "add: rename to first OK call (gRPC C++: restart to first OK)", "ms",
                             [times, restart], ("rpchost", "gRPC C++"), "lower", None))
        self.rows.append(Row(sc, "replace: rename to first call by the new build (gRPC C++: restart)", "ms",
                             [replace, restart], ("rpchost", "gRPC C++"), "lower", None))
        self.raw[sc] = {"rpchost_add_ms": times, "rpchost_replace_ms": replace, "peer_restart_ms": restart}

    def cross_check(self):
        """rpcall bench against h2load on the same point, when rpcall has it."""
        import crosscheck
        crosscheck.run(self)

    # ---- run ------------------------------------------------------------

    def run(self):
        only = set(self.args.only.split(",")) if self.args.only else None
        steps = [("1", self.s1_unary), ("2", self.s2_durable), ("3", self.s3_track),
                 ("3", self.s3_input), ("4", self.s4_stream), ("5", self.s5_connections), ("6", self.s6_hot_add),
                 ("x", self.cross_check)]
        started = datetime.datetime.now(datetime.timezone.utc)
        load0 = loadavg()
        try:
            for key, fn in steps:
                if only and key not in only:
                    continue
                try:
                    fn()
                except (RuntimeError, load.LoadError, OSError) as e:
                    self.error("scenario %s" % key, str(e))
            for s in Server.all:
                s.stop()
                if s.expect_clean_exit and s.returncode != 0:
                    self.error("exit", "%s (pid %d) ended with status %s on SIGTERM, not 0; log:\n%s"
                               % (s.label, s.pid, s.returncode, s.logs()[-3000:]))
            finished = datetime.datetime.now(datetime.timezone.utc)
            self.loadavg = (load0, loadavg())
            write_report(self, started, finished)
            with open(os.path.join(self.args.work, "results.json"), "w") as f:
                json.dump({"raw": self.raw, "errors": self.errors, "skips": self.skips}, f, indent=1,
                          default=str)
        finally:
            shutil.rmtree(self.work, ignore_errors=True)
            if self.shm != self.work:
                shutil.rmtree(self.shm, ignore_errors=True)
        for s in self.skips:
            print("skipped: " + s)
        if self.errors:
            for e in self.errors:
                print("FAILED: " + e)
            return 1
        print("bench: report in %s" % self.args.out)
        return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def rm_db(db):
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(db + suffix)
        except OSError:
            pass


def rides_stats(log_text):
    """The rides plugin's statistics line (logged at fini): commits, the
    largest batch and the histogram of calls (rides + tracks) per commit."""
    import re
    m = None
    for m in re.finditer(r"in (\d+) commits \((\d+) failed\); rides per commit: max (\d+), mean [\d.]+; "
                         r"histogram \(rides:commits\) (.*?); (?:calls per commit: max (\d+); "
                         r"histogram \(calls:commits\) (.*?);)?", log_text):
        pass
    if m is None:
        return {}
    if m.group(5):
        return {"commits": int(m.group(1)), "max_batch": int(m.group(5)), "hist": m.group(6).strip()}
    return {"commits": int(m.group(1)), "max_batch": int(m.group(3)), "hist": m.group(4).strip()}


def sqlite_count(db, table):
    try:
        import sqlite3
        with sqlite3.connect(db) as c:
            return c.execute("select count(*) from %s" % table).fetchone()[0]
    except Exception:  # noqa: BLE001 - the schema is the rides plugin's; a figure, not a check
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--rpchost", required=True)
    ap.add_argument("--plugins", required=True)
    ap.add_argument("--test-plugins", default="")
    ap.add_argument("--peer")
    ap.add_argument("--peer-api", default="async", choices=("async", "callback"))
    ap.add_argument("--rides-proto", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--rpcall")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--server-cpu", type=int, default=0)
    ap.add_argument("--load-cpu", type=int, default=1)
    ap.add_argument("--only", help="comma-separated scenario numbers (1-6, x = rpcall cross-check)")
    args = ap.parse_args()
    for k in ("rpchost", "plugins", "test_plugins", "peer", "rides_proto", "cert", "key", "ca", "rpcall", "out", "work"):
        if getattr(args, k):  # servers run in a scratch directory
            setattr(args, k, os.path.abspath(getattr(args, k)))
    os.makedirs(args.work, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 65536
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, hard)), hard))
        if hard < want and os.geteuid() == 0:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        pass
    cpus = os.sched_getaffinity(0)
    if args.server_cpu not in cpus or args.load_cpu not in cpus or args.server_cpu == args.load_cpu:
        sys.exit("bench: need two distinct CPUs for server (%d) and load (%d); this process may use %s"
                 % (args.server_cpu, args.load_cpu, sorted(cpus)))
    os.sched_setaffinity(0, {args.load_cpu})  # keep the driver off the server's CPU
    sys.exit(Bench(args).run())


if __name__ == "__main__":
    main()
