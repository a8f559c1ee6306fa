#!/usr/bin/env bash
# Quick start, the main job: installs the dependencies, builds, starts tokensampler-server
# and makes a sample call against it with the CLI. The server then keeps running in the
# foreground until Ctrl-C (SIGINT drains in-flight calls and exits 0).
#   scripts/run.sh           start, show a sample call, keep serving
#   scripts/run.sh --once    start, show a sample call, stop (used by the tests)
# Environment: TOKENSAMPLER_ADDRESS (default 127.0.0.1:50051) and every other TOKENSAMPLER_*
# server variable in the README.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${TOKENSAMPLER_BUILD_DIR:-$root/build}
once=false
[ "${1:-}" = "--once" ] && once=true

"$root/scripts/install-deps.sh"
TOKENSAMPLER_BUILD_DIR=$build_dir "$root/scripts/build.sh" --target tokensampler-server tokensampler

server_bin=$build_dir/server/tokensampler-server
cli_bin=$build_dir/client/tokensampler
log=$(mktemp)
export TOKENSAMPLER_ADDRESS=${TOKENSAMPLER_ADDRESS:-127.0.0.1:50051}
# Ctrl-C: the terminal sends SIGINT to its whole foreground process group. The server runs
# in a session of its own (setsid), so it gets exactly one stop signal, passed on by this
# script (a second one would cut its lame duck short); the tee that copies its log
# ignores SIGINT and ends when the server closes its stderr, so the draining and stopped
# lines still reach the terminal.
setsid "$server_bin" 2> >(trap '' INT TERM; exec tee "$log" >&2) &
server_pid=$!
stop_server() {  # stop_server SIGNAL: pass it on, wait for the drain, exit with its status
  trap - INT TERM
  kill -"$1" "$server_pid" 2>/dev/null || true
  local status=0
  wait "$server_pid" || status=$?
  exit "$status"
}
trap 'stop_server INT' INT
trap 'stop_server TERM' TERM
trap 'kill -TERM $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -f "$log"' EXIT

address=
for _ in $(seq 1 100); do
  address=$(sed -n 's/.*event=listening address=\([^ ]*\).*/\1/p' "$log" | head -n 1)
  [ -n "$address" ] && break
  kill -0 $server_pid 2>/dev/null || { echo "run.sh: tokensampler-server exited; see the log above" >&2; exit 1; }
  sleep 0.1
done
[ -n "$address" ] || { echo "run.sh: server did not start listening within 10 s" >&2; exit 1; }
export TOKENSAMPLER_SERVER=$address

echo
echo "\$ tokensampler sample --logits=2.0,1.0,0.1 --temperature=0.5 --seed=42 --top_logprobs=3"
"$cli_bin" sample --logits=2.0,1.0,0.1 --temperature=0.5 --seed=42 --top_logprobs=3
echo
echo "\$ tokensampler dist --random-vocab=32000 --temperature=1.5 --top_k=50 --top_p=0.95 --top=8"
"$cli_bin" dist --random-vocab=32000 --temperature=1.5 --top_k=50 --top_p=0.95 --top=8
echo
if $once; then exit 0; fi
echo "tokensampler-server is serving on $address (Ctrl-C to stop). Try: $cli_bin --server=$address info"
wait $server_pid
