"""bench/REPORT.md: machine, versions, method, and one table per scenario
with both medians, their ratio and the issue's target."""
import os
import platform
import re
import statistics
import subprocess


class Row:
    """One measured figure for two servers.

    vals: one list of per-run values per label; better: "higher"/"lower";
    target: None, (op, ratio) on median(labels[0]) / median(labels[1]), or
    ("abs<=", value) on labels[0]'s median alone."""

    def __init__(self, scenario, metric, unit, vals, labels, better, target, tag=None):
        self.scenario, self.metric, self.unit, self.tag = scenario, metric, unit, tag
        self.vals, self.labels, self.better, self.target = vals, labels, better, target

    def medians(self):
        return [statistics.median(v) if v else None for v in self.vals]

    def ratio(self):
        a, b = self.medians()
        if a is None or b is None or b == 0:
            return None
        return a / b

    load_bound = None  # why calls/s here measures the load generator, not the server

    def verdict(self):
        if not self.target:
            return ""
        if self.load_bound and self.target[0] != "abs<=":
            r = self.ratio()
            if r is not None and r < self.target[1]:
                return "load-bound (%s; see CPU per call)" % self.load_bound
        op, want = self.target
        if op == "abs<=":
            a = self.medians()[0]
            return "" if a is None else ("yes" if a <= want else "**no**")
        r = self.ratio()
        if r is None:
            return ""
        return "yes" if (r >= want if op == ">=" else r <= want) else "**no**"

    def target_text(self):
        if not self.target:
            return ""
        op, want = self.target
        if op == "abs<=":
            return "<= %s %s" % (fmt(want), self.unit)
        w = ("1/%g" % round(1 / want, 2)) if want < 1 and op == "<=" and abs(1 / want - round(1 / want)) < 1e-9 \
            else "%g" % want
        return "%s %s" % ("≥" if op == ">=" else "≤", w)


def fmt(v):
    if v is None:
        return "–"
    if isinstance(v, float) and v != v:
        return "–"
    a = abs(v)
    if a >= 1000:
        return "{:,.0f}".format(v)
    if a >= 100:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.2f" % v


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001 - a missing tool just leaves the field empty
        return ""


def machine():
    model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    return [
        ("CPU", "%s, %s logical CPUs (%s)" % (model, os.cpu_count(),
                                              sh("lscpu | awk -F: '/Hypervisor vendor/ {print $2}'").strip()
                                              and "virtual machine" or "host")),
        ("Memory", mem),
        ("OS", "Debian %s, Linux %s" % (sh("cat /etc/debian_version"), platform.release())),
    ]


TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))


def versions(bench):
    rpchost_rev = sh("git -C %s rev-parse --short HEAD" % TOP) or "?"
    dirty = sh("git -C %s status --porcelain --untracked-files=no" % TOP)
    return [
        ("rpchost", "commit %s%s, %s" % (rpchost_rev, " (+ local changes)" if dirty else "",
                                          first_line(sh("%s --version" % bench.args.rpchost)) or "?")),
        ("gRPC C++ peer", "libgrpc++ %s (Debian), %s API, bench/peer built -O2"
         % (sh("dpkg-query -W -f='${Version}' libgrpc++-dev"), bench.args.peer_api)),
        ("nghttp2", "h2load/nghttpd %s, libnghttp2 %s" % (
            sh("h2load --version | awk '{print $2}'"), sh("dpkg-query -W -f='${Version}' libnghttp2-14"))),
        ("OpenSSL", sh("openssl version")),
        ("protobuf-c", sh("dpkg-query -W -f='${Version}' libprotobuf-c1")),
        ("SQLite", sh("dpkg-query -W -f='${Version}' libsqlite3-0")),
        ("Compiler", first_line(sh("cc --version"))),
    ]


def first_line(s):
    return s.splitlines()[0] if s else ""


METHOD = """\
- Each server runs alone on CPU {scpu} (`taskset -c {scpu}`): rpchost with
  `--workers 1`, the gRPC C++ peer (`bench/peer`, {api} API) with one
  completion queue and polling thread per CPU it may use (one), nghttpd with
  its default single thread. The load generator, `h2load -t1`, runs on CPU
  {lcpu}. Servers and load run at nice {nice} (`BENCH_NICE`) so that other
  work on a shared machine disturbs them less. Everything is on 127.0.0.1 over TLS 1.3 with ALPN h2 and the same
  certificate (`certs/out/server.pem`, RSA 2048).
- Requests are real gRPC: protobuf built with `protoc --encode` from text,
  5-byte length-prefixed, `content-type: application/grpc`, `te: trailers`.
  Every measured run must have every call done with HTTP 200 and exactly
  calls x answer-size response DATA bytes (a failed gRPC call is a
  trailers-only answer with no DATA); before and after each scenario the
  same request is sent with `nghttp -v`, every trailer must carry
  `grpc-status: 0` and the answers must decode right (32-hex ride ids,
  payload sizes, Track counts, number of streamed messages).
- Each point: a warm-up run that also estimates the rate, then a measured
  run sized to last about {secs:g} s (bounded in calls and time). The
  servers alternate run by run (A B A B A B; here {reps} run(s) each); tables show
  medians. "Server CPU" is utime + stime of the server process from
  `/proc/PID/stat` over the measured run, divided by the calls (or
  messages) it served: what the server costs, independent of the load
  generator's own limit.
- Ratio is rpchost / other, so for calls/s and messages/s above 1 is better
  and for CPU, latency and memory below 1 is better.
"""


def write_report(bench, started, finished):
    a = bench.args
    out = []
    w = out.append
    w("# rpchost benchmarks%s\n" % (" (smoke run: tiny counts, not figures)" if bench.P.smoke else ""))
    w("Run on %s UTC, %d s, with `bench/run%s`.\n" % (started.strftime("%Y-%m-%d %H:%M"),
                                                     (finished - started).total_seconds(),
                                                     " --smoke" if bench.P.smoke else ""))
    w("## Machine and versions\n")
    load0, load1 = getattr(bench, "loadavg", ("?", "?"))
    w("Load average (1 min) before the run: %s, after: %s. The machine is shared: calls/s and latency "
      "move with whatever else runs; CPU per call moves much less.\n" % (load0, load1))
    w("| | |\n|---|---|")
    for k, v in machine() + versions(bench):
        w("| %s | %s |" % (k, v))
    w("")
    w("## Method\n")
    w(METHOD.format(nice=os.environ.get("BENCH_NICE", "-10") if os.geteuid() == 0 else "0", scpu=bench.scpu, lcpu=bench.lcpu, api=a.peer_api, secs=bench.P.measure_s,
                    reps=bench.P.reps))
    targeted = [r for r in bench.rows if r.target]
    if targeted:
        w("## Targets (issue 7)\n")
        w("| scenario | figure | ratio or value | target | met |\n|---|---|---:|---|---|")
        for r in targeted:
            val = (fmt(r.medians()[0]) + " " + r.unit) if r.target[0] == "abs<=" else fmt(r.ratio())
            w("| %s | %s | %s | %s | %s |" % (r.tag or r.scenario.split(":")[0], short(r), val, r.target_text(),
                                               r.verdict() or "not measured"))
        w("")
    scenarios = []
    for r in bench.rows:
        if r.scenario not in scenarios:
            scenarios.append(r.scenario)
    noted = set()
    for sc in scenarios:
        rows = [r for r in bench.rows if r.scenario == sc]
        la, lb = rows[0].labels
        w("## %s\n" % sc)
        key = sc.split(":")[0]
        if key not in noted:  # notes once, under the first table of their scenario
            noted.add(key)
            for line in bench.notes.get(key, []):
                w(line + "\n")
        w("| figure | unit | %s | %s | ratio | target | met | runs (%s; %s) |" % (la, lb, la, lb))
        w("|---|---|---:|---:|---:|---|---|---|")
        for r in rows:
            ma, mb = r.medians()
            w("| %s | %s | %s | %s | %s | %s | %s | %s; %s |" % (
                r.metric, r.unit, fmt(ma), fmt(mb), fmt(r.ratio()), r.target_text(), r.verdict(),
                " ".join(fmt(v) for v in r.vals[0]) or "–", " ".join(fmt(v) for v in r.vals[1]) or "–"))
        w("")
    for sc, lines in bench.notes.items():
        if not any(s.split(":")[0] == sc for s in scenarios):
            w("## %s\n" % sc)
            for line in lines:
                w(line + "\n")
    if bench.skips or bench.errors:
        w("## Skipped and failed\n")
        for s in bench.skips:
            w("- skipped: %s" % s)
        for e in bench.errors:
            w("- FAILED: %s" % e)
        w("")
    extra = getattr(bench, "report_tail", [])
    for line in extra:
        w(line)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


def short(r):
    return re.sub(r" \(\d+ conn x \d+\)", "", r.metric)
