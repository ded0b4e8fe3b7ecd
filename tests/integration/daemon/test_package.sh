#!/usr/bin/env bash
# The Debian packages: built from this tree with scripts/package, installed
# with `apt-get install ./rpchost_*.deb ./rpchost-dev_*.deb` on this machine
# (CI machines are fresh and root), the unit accepted by systemd-analyze
# verify, the installed daemon started as the rpchost user from the
# installed configuration and called with the installed rpcall, the SDK
# found by a plugin build; then purged. Needs root; skipped (exit 77)
# otherwise.
set -euo pipefail
src=${RPCHOST_SOURCE_DIR:?}
[ "$(id -u)" = 0 ] || { echo "not root: skipped"; exit 77; }
out=$(mktemp -d /tmp/rpchost-pkg-XXXXXX)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq rpchost rpchost-dev >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$out/daemon.log" ] && cat "$out/daemon.log" >&2; exit 1; }

RPCHOST_PACKAGE_LINTIAN=0 "$src/scripts/package" "$out/debs" > "$out/built" 2> "$out/package.log" ||
  { cat "$out/package.log" >&2; fail "scripts/package failed"; }
deb=$(ls "$out"/debs/rpchost_*.deb) && dev=$(ls "$out"/debs/rpchost-dev_*.deb) || fail "no packages"
dpkg-deb -c "$deb" > "$out/contents"
for f in ./usr/bin/rpchost ./usr/bin/rpcall ./usr/lib/rpchost/plugins/rides.so \
         ./usr/lib/rpchost/plugins/authlog.so ./usr/lib/rpchost/plugins/interop.so \
         ./etc/rpchost/rpchost.ini ./lib/systemd/system/rpchost.service \
         ./usr/share/man/man8/rpchost.8.gz ./usr/share/man/man1/rpcall.1.gz; do
  grep -q " $f\$" "$out/contents" || fail "$f missing from $(basename "$deb")"
done
dpkg-deb -I "$deb" conffiles | grep -x /etc/rpchost/rpchost.ini >/dev/null || fail "rpchost.ini is not a conffile"
dpkg-deb -c "$dev" | grep '/usr/include/rpchost/plugin.h$' >/dev/null || fail "plugin.h missing from rpchost-dev"

DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" "$dev" > "$out/apt.log" 2>&1 ||
  { cat "$out/apt.log" >&2; fail "apt-get install failed"; }
getent passwd rpchost >/dev/null || fail "postinst made no rpchost user"
[ "$(stat -c %U /var/lib/rpchost)" = rpchost ] || fail "/var/lib/rpchost not owned by rpchost"
systemd-analyze verify /lib/systemd/system/rpchost.service > "$out/verify.log" 2>&1 ||
  { cat "$out/verify.log" >&2; fail "systemd-analyze verify refused the unit"; }
man -l /usr/share/man/man8/rpchost.8.gz 2>/dev/null | grep -- "--user" >/dev/null || fail "rpchost(8) lacks --user"

# The installed daemon, as its user, from the installed configuration (the
# port moved to loopback; the admin socket's directory is what systemd's
# RuntimeDirectory would make).
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
install -d -o rpchost -g rpchost /run/rpchost
cd /var/lib/rpchost
setpriv --reuid=rpchost --regid=rpchost --init-groups -- /usr/bin/rpchost --config /etc/rpchost/rpchost.ini \
  --listen "127.0.0.1:$port" > "$out/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
  [ -S /run/rpchost/admin.sock ] && grep -q "serving on" "$out/daemon.log" && break
  kill -0 "$pid" 2>/dev/null || fail "the installed daemon exited"
  sleep 0.05
done
grep -q "serving on" "$out/daemon.log" || fail "the installed daemon did not start within 10 s"
health=$(/usr/bin/rpcall --insecure -d '{"service": "Rides"}' "127.0.0.1:$port" grpc.health.v1.Health/Check) ||
  fail "health call failed: $health"
echo "$health" | grep '"SERVING"' >/dev/null || fail "Rides is not SERVING: $health"
/usr/bin/rpcall --plaintext "unix:/run/rpchost/admin.sock" list | grep '^Rides$' >/dev/null ||
  fail "rpcall list over the admin socket did not show Rides"
# Without a token authlog refuses the call: the installed interceptors work.
set +e
/usr/bin/rpcall --insecure -d '{}' "127.0.0.1:$port" Rides/Start > "$out/unauth" 2>&1
code=$?
set -e
[ "$code" = 80 ] || fail "unauthenticated Start: exit $code, $(cat "$out/unauth")"
kill -TERM "$pid"
wait "$pid" || fail "the daemon did not stop cleanly"
pid=""

# The SDK from rpchost-dev builds the example plugin out of tree.
cmake -S "$src/examples/hello-plugin" -B "$out/hello" > "$out/sdk.log" 2>&1 &&
  cmake --build "$out/hello" >> "$out/sdk.log" 2>&1 || { cat "$out/sdk.log" >&2; fail "SDK build failed"; }
[ -f "$out/hello/plugins/hello.so" ] || fail "the SDK built no plugin"
echo "package: built, installed, verified, served, SDK used"
