#!/usr/bin/env bash
# scripts/run.sh stopped with Ctrl-C: SIGINT to its whole process group, as a terminal
# sends it. The server must drain (event=draining signal=SIGINT, event=stopped on the
# terminal, no lame duck cut by a second signal) and the script exit 0.
# usage: run_sh_test.sh REPO_ROOT BUILD_DIR
set -u -o pipefail
root=${1:?usage: run_sh_test.sh REPO_ROOT BUILD_DIR}
build_dir=${2:?usage: run_sh_test.sh REPO_ROOT BUILD_DIR}
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Job control: the script gets a process group of its own (its id is its pid), like a
# shell's foreground job, and SIGINT is not ignored in it (bash ignores SIGINT in the
# background jobs of a script without job control, and a trap cannot undo that).
set -m
TOKENSAMPLER_BUILD_DIR=$build_dir TOKENSAMPLER_ADDRESS=127.0.0.1:0 TOKENSAMPLER_LAME_DUCK=200ms \
  bash "$root/scripts/run.sh" >"$work/out" 2>&1 &
pid=$!
set +m
for _ in $(seq 1 600); do
  grep -q "is serving on" "$work/out" && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q "is serving on" "$work/out"; then
  echo "FAIL: run.sh did not get to serving"; cat "$work/out"; exit 1
fi
kill -INT -- "-$pid"
rc=0
wait "$pid" || rc=$?
pid=""
failures=0
check() { if grep -q -- "$1" "$work/out"; then echo "ok   - $2"; else echo "FAIL - $2"; failures=$((failures + 1)); fi; }
[ "$rc" -eq 0 ] && echo "ok   - run.sh exits 0 after Ctrl-C" || { echo "FAIL - run.sh exit $rc after Ctrl-C"; failures=$((failures + 1)); }
check "event=draining signal=SIGINT" "the server drains on SIGINT"
check "event=stopped" "event=stopped reaches the terminal"
if grep -q "event=lame_duck_cut" "$work/out"; then
  echo "FAIL - the server got a second signal (lame duck cut)"; failures=$((failures + 1))
fi
[ "$failures" -eq 0 ] || { echo "--- run.sh output:"; cat "$work/out"; exit 1; }
