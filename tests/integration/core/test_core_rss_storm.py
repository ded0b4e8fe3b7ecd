"""Memory after a connection storm: 1,000 TLS connections (handshake,
ALPN h2, HTTP/2 preface and SETTINGS) opened at once and closed must leave
the host's resident memory within 2 MiB of its idle figure
(docs/transport.md, "Memory after a storm"; storms repeated back to back
each leave a little more, converging near idle + 2 MiB: bench/REPORT.md). The host returns the pages
from its 1 s tick: the test follows VmRSS until it is back, with a
deadline, and reports the figures. bench/rss-storm prints the same.

Not meaningful under AddressSanitizer (its allocator keeps freed memory in
quarantine on purpose): there the storm runs and only the host's health is
checked."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import rpchost_test as rt  # noqa: E402

sys.path.insert(0, os.path.join(rt.SOURCE_DIR, "bench/lib"))
import rss_storm  # noqa: E402

MIB = 1024
CONNS = 1000
SLACK = 2 * MIB
DEADLINE_S = 30


def sanitized(path):
    with open(path, "rb") as f:
        return b"__asan_init" in f.read()


def main():
    res = rt.Results()
    rt.ensure_certs()
    asan = sanitized(rt.RPCHOST_BIN)
    h = rss_storm.Host(rt.RPCHOST_BIN, rt.PLUGIN_BUILD_DIR, rt.SERVER_CERT, rt.SERVER_KEY)
    try:
        rss_storm.warm_up(h)
        idle = h.rss()
        print("  idle RSS after warm-up connections: %.1f MiB" % (idle / MIB), flush=True)

        def storm_and_back(i):
            peak = rss_storm.storm(h, CONNS)
            after, secs = rss_storm.settle(h, idle + SLACK, DEADLINE_S)
            print("  storm %d: %.1f MiB with %d connections open, %.1f MiB %.1f s after the close"
                  % (i, peak / MIB, CONNS, after / MIB, secs), flush=True)
            if not asan:
                assert after <= idle + SLACK, (
                    "RSS %.1f MiB %d s after the storm, idle was %.1f MiB"
                    % (after / MIB, DEADLINE_S, idle / MIB))
            assert h.proc.poll() is None, "host died:\n" + h.logs()[-3000:]

        res.run("RSS back within 2 MiB of idle after %d TLS connections" % CONNS,
                storm_and_back, 1)
    finally:
        code = h.stop()
    if code != 0:
        print("rpchost exited with %s" % code)
        sys.exit(1)
    res.finish()


if __name__ == "__main__":
    main()
