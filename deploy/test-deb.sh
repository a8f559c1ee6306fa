#!/usr/bin/env bash
# Builds the Debian package with CPack from BUILD_DIR and checks it on this machine:
# contents and Depends, `apt-get install ./tokensampler_*.deb`, the systemd unit
# (systemd-analyze verify, when available), the server started from /usr/bin serving a
# call from the installed CLI and stopping on SIGTERM with exit 0, then `apt-get purge`,
# leaving no file behind. Needs root and apt-get; exits 77 (skipped) without them, or
# when a tokensampler package is already installed (it is not this test's to remove).
#   deploy/test-deb.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: test-deb.sh BUILD_DIR}" && pwd)

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get install)"
for tool in apt-get dpkg dpkg-deb cpack; do
  command -v "$tool" > /dev/null || skip "$tool not found"
done
if dpkg-query -W -f='${Status}' tokensampler 2>/dev/null | grep -q installed; then
  skip "a tokensampler package is already installed"
fi

work=$(mktemp -d)
server_pid=
installed=0
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ "$installed" = 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tokensampler > /dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "== cpack -G DEB"
(cd "$build" && cpack -G DEB -B "$work/pkg" > "$work/cpack.log") || { cat "$work/cpack.log" >&2; fail "cpack"; }
deb=$(ls "$work"/pkg/tokensampler_*.deb)
echo "$(basename "$deb"): $(stat -c %s "$deb") bytes"
dpkg-deb -c "$deb" | awk '{print $6}' > "$work/contents"
for f in ./usr/bin/tokensampler-server ./usr/bin/tokensampler \
         ./lib/systemd/system/tokensampler.service ./etc/default/tokensampler; do
  grep -qx "$f" "$work/contents" || fail "$f missing from the package"
done
if grep -E '/include/|\.a$|/cmake/|\.pc$' "$work/contents"; then
  fail "development files in the server package"
fi
depends=$(dpkg-deb -f "$deb" Depends)
echo "Depends: $depends"
for lib in libgrpc++1.51 libprotobuf32 libabsl20220623 libhwy1; do
  grep -q "$lib" <<< "$depends" || fail "Depends lacks $lib"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/default/tokensampler ] ||
  fail "/etc/default/tokensampler is not a conffile"

# The install must pull in nothing else: purging the package then restores the machine.
apt-get install -s "$deb" > "$work/simulate.log" 2>&1 || { cat "$work/simulate.log" >&2; fail "apt-get install -s"; }
others=$(grep '^Inst ' "$work/simulate.log" | grep -v '^Inst tokensampler ' || true)
[ -z "$others" ] || skip "installing would also install other packages: $others"

echo "== apt-get install"
installed=1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" > "$work/apt.log" 2>&1 ||
  { cat "$work/apt.log" >&2; fail "apt-get install"; }
dpkg-query -W -f='${Status} ${Version}\n' tokensampler
test -x /usr/bin/tokensampler-server && test -x /usr/bin/tokensampler

if command -v systemd-analyze > /dev/null; then
  systemd-analyze verify /lib/systemd/system/tokensampler.service
  echo "systemd-analyze verify: ok"
fi
stop_timeout=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)s$/\1/p' /lib/systemd/system/tokensampler.service)
[ -n "$stop_timeout" ] && [ "$stop_timeout" -gt 11 ] ||
  fail "TimeoutStopSec=${stop_timeout}s is not above the lame duck + drain timeout (1s + 10s)"

echo "== /usr/bin/tokensampler-server"
/usr/bin/tokensampler-server --help > "$work/help.txt" 2>&1 || true
grep -q -- '--drain_timeout' "$work/help.txt" || { cat "$work/help.txt" >&2; fail "--help lists no --drain_timeout"; }
/usr/bin/tokensampler-server --address=127.0.0.1:0 --workers=1 --lame_duck=0 2> "$work/server.log" &
server_pid=$!
address=$("$(dirname "$0")/../tests/install/listening-address.sh" "$work/server.log")
/usr/bin/tokensampler health --server="$address"
/usr/bin/tokensampler sample --server="$address" --logits=0,0 --seed=42 --num_samples=2 | tee "$work/sample.txt"
# The README's known draw: seed 42, step 0 gives u = 0.6130 then 0.0101, so tokens 1 then 0.
grep -q 'sample 0: token 1 ' "$work/sample.txt" && grep -q 'sample 1: token 0 ' "$work/sample.txt" ||
  fail "want tokens 1 then 0"
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=
[ "$rc" -eq 0 ] || { cat "$work/server.log" >&2; fail "SIGTERM: exit $rc, want 0"; }
grep -q 'event=stopped' "$work/server.log" || fail "no event=stopped after SIGTERM"

echo "== apt-get purge"
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq tokensampler > "$work/purge.log" 2>&1 ||
  { cat "$work/purge.log" >&2; fail "apt-get purge"; }
installed=0
for f in /usr/bin/tokensampler-server /usr/bin/tokensampler \
         /lib/systemd/system/tokensampler.service /etc/default/tokensampler; do
  [ ! -e "$f" ] || fail "$f left after purge"
done
if dpkg-query -W -f='${Status}' tokensampler 2>/dev/null | grep -q installed; then
  fail "still installed after purge"
fi
echo "test-deb: ok"
