#!/usr/bin/env bash
# Scale-out test: 3 tokensampler-server replicas on loopback, reached two ways:
#   - through nginx, configured from the same template as deploy/compose.yaml's nginx
#     (deploy/nginx/nginx.conf.template rendered by deploy/nginx/render.sh);
#   - with client-side load balancing: --server=HOST:P1,HOST:P2,HOST:P3 (gRPC round_robin).
# For each way it drives `tokensampler bench` and reads every replica's requests_served counter
# (`tokensampler info --json`) to show that every replica served calls and that the counters add
# up to the calls the bench made. Then, for each way, it kills one replica (SIGKILL) in the middle
# of a run and shows that the remaining replicas take the load, with only calls in flight at that
# moment failing (see kill_mid_run for the bound).
# It also stops one replica gracefully (SIGTERM) under load each way. The replica first goes lame
# duck (health NOT_SERVING for --lame_duck, 1 s, while still serving), then drains. Client-side
# round robin watches health, so it has left the replica before the port closes: no call may fail.
# nginx does not watch health; a call it sends just as the port closes can still be refused by
# gRPC (CANCELLED), so that run is bounded like a kill. Then it kills one more each way with the
# client's retry policy on (--retries=2), where no call may fail at all.
# Everything it starts is stopped on exit; all files live in a mktemp directory.
#
# Usage: deploy/test-scale-out.sh --server-binary PATH --cli PATH
#   (or TOKENSAMPLER_SERVER_BINARY / TOKENSAMPLER_CLI in the environment)
# Exit codes: 0 pass, 1 fail, 77 skipped (nginx missing and cannot be installed).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
server_bin=${TOKENSAMPLER_SERVER_BINARY:-}
cli=${TOKENSAMPLER_CLI:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --server-binary) server_bin=$2; shift 2 ;;
    --server-binary=*) server_bin=${1#*=}; shift ;;
    --cli) cli=$2; shift 2 ;;
    --cli=*) cli=${1#*=}; shift ;;
    *) echo "test-scale-out.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[ -x "$server_bin" ] || { echo "test-scale-out.sh: --server-binary '$server_bin' is not executable" >&2; exit 2; }
[ -x "$cli" ] || { echo "test-scale-out.sh: --cli '$cli' is not executable" >&2; exit 2; }

log() { printf '[scale-out %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[scale-out] FAIL: %s\n' "$*" >&2; exit 1; }

# nginx (Debian's nginx-light has grpc_pass and HTTP/2).
nginx_bin=$(command -v nginx || true)
[ -z "$nginx_bin" ] && [ -x /usr/sbin/nginx ] && nginx_bin=/usr/sbin/nginx
if [ -z "$nginx_bin" ]; then
  if [ "$(id -u)" -eq 0 ]; then
    "$root/scripts/install-deps.sh" --deploy
    nginx_bin=/usr/sbin/nginx
  else
    echo "test-scale-out.sh: SKIP: nginx is not installed (run scripts/install-deps.sh --deploy as root)" >&2
    exit 77
  fi
fi
"$nginx_bin" -V 2>&1 | grep -q -- '--with-http_v2_module' || fail "$nginx_bin has no HTTP/2 module"

concurrency=6
vocab=32000
replicas=3
work=$(mktemp -d "${TMPDIR:-/tmp}/tokensampler-scale-out.XXXXXX")
declare -a server_pid server_addr
nginx_pid=""
bench_pid=""

cleanup() {
  local rc=$?
  set +e
  local p
  # nginx's master stops its workers on SIGTERM (a SIGKILLed master would orphan them).
  if [ -n "$nginx_pid" ] && kill -0 "$nginx_pid" 2>/dev/null; then
    kill -TERM "$nginx_pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$nginx_pid" 2>/dev/null || break; sleep 0.1; done
  fi
  for p in "${server_pid[@]}" "$nginx_pid" "$bench_pid"; do
    if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null; fi
  done
  for p in "${server_pid[@]}" "$nginx_pid" "$bench_pid"; do
    if [ -n "$p" ]; then wait "$p" 2>/dev/null; fi
  done
  if [ "$rc" -ne 0 ]; then
    for f in "$work"/*.log "$work"/nginx/*.log; do
      [ -f "$f" ] && { echo "---- $f (last 15 lines)"; tail -n 15 "$f"; }
    done >&2
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

json() { # json FILE PYTHON-EXPRESSION-OVER-d
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# Starts replica $1 on address $2 (127.0.0.1:0 = any free port) and records its bound address.
start_server() {
  local i=$1 address=$2 logf="$work/server-$1.log"
  : >"$logf"
  "$server_bin" --address="$address" --workers=1 --drain_timeout=3s 2>>"$logf" &
  server_pid[$i]=$!
  local bound=""
  for _ in $(seq 1 100); do
    bound=$(sed -n 's/.*event=listening address=\([^ ]*\).*/\1/p' "$logf" | tail -n 1)
    [ -n "$bound" ] && break
    kill -0 "${server_pid[$i]}" 2>/dev/null || fail "replica $i exited at start: $(cat "$logf")"
    sleep 0.1
  done
  [ -n "$bound" ] || fail "replica $i printed no event=listening"
  server_addr[$i]=$bound
}

served() { # requests_served of replica $1
  "$cli" info --server="${server_addr[$1]}" --json >"$work/info.json" || fail "info on replica $1 failed"
  json "$work/info.json" 'int(d["requests_served"])'
}

snapshot() { # prints "n0 n1 n2" (requests_served per live replica; "-" for a dead one)
  local i out=()
  for ((i = 0; i < replicas; i++)); do
    if kill -0 "${server_pid[$i]}" 2>/dev/null; then out+=("$(served "$i")"); else out+=("-"); fi
  done
  echo "${out[*]}"
}

bench() { # bench OUT SERVER [flags...]: bounded load; never aborts on failed calls
  local out=$1 target=$2
  shift 2
  "$cli" bench --server="$target" --concurrency="$concurrency" --vocab="$vocab" --warmup=0s \
    --timeout=5s --json "$@" >"$out" 2>"$out.err"
}

# ---- 3 replicas + nginx -----------------------------------------------------------------------
for ((i = 0; i < replicas; i++)); do start_server "$i" 127.0.0.1:0; done
log "replicas: ${server_addr[*]}"
upstreams=$(IFS=,; echo "${server_addr[*]}")

mkdir -p "$work/nginx"
for attempt in 1 2 3; do
  nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sh "$root/deploy/nginx/render.sh" "$root/deploy/nginx/nginx.conf.template" "127.0.0.1:$nginx_port" \
    "$upstreams" access.log >"$work/nginx/nginx.conf"
  "$nginx_bin" -t -q -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e stderr || fail "nginx rejects the rendered config"
  "$nginx_bin" -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e stderr \
    >"$work/nginx/stdout.log" 2>"$work/nginx/error.log" &
  nginx_pid=$!
  up=""
  for _ in $(seq 1 50); do
    if ! kill -0 "$nginx_pid" 2>/dev/null; then break; fi
    if "$cli" health --server="127.0.0.1:$nginx_port" --timeout=1s >/dev/null 2>&1; then up=1; break; fi
    sleep 0.1
  done
  [ -n "$up" ] && break
  kill "$nginx_pid" 2>/dev/null; wait "$nginx_pid" 2>/dev/null || true
  nginx_pid=""
  log "nginx did not come up on port $nginx_port (attempt $attempt): $(tail -n 2 "$work/nginx/error.log")"
done
[ -n "$nginx_pid" ] || fail "nginx did not start"
via_nginx=127.0.0.1:$nginx_port
via_rr=$upstreams
log "nginx $("$nginx_bin" -v 2>&1 | sed 's/.*version: //') on $via_nginx (pid $nginx_pid), same template as compose.yaml"

# Both client-side forms resolve: dns:/// and the comma list.
"$cli" health --server="dns:///${server_addr[0]}" >/dev/null || fail "health via dns:///${server_addr[0]} failed"
"$cli" health --server="$via_rr" >/dev/null || fail "health via the comma list failed"

# ---- steady load: every replica serves, and the counters add up -------------------------------
steady() { # steady NAME TARGET
  local name=$1 target=$2 before after i d sum=0 requests errors
  before=($(snapshot))
  bench "$work/$name.json" "$target" --requests=3000
  after=($(snapshot))
  requests=$(json "$work/$name.json" 'd["requests"]')
  errors=$(json "$work/$name.json" 'd["errors"]')
  local shares=()
  for ((i = 0; i < replicas; i++)); do
    d=$((after[i] - before[i]))
    sum=$((sum + d))
    shares+=("r$i=$d")
    [ "$d" -gt 0 ] || fail "$name: replica $i (${server_addr[$i]}) served no request"
    # Round robin spreads calls evenly; a replica with under 15% would mean it was mostly bypassed.
    [ $((d * 100)) -ge $((requests * 15)) ] || fail "$name: replica $i served only $d of $requests calls"
  done
  [ "$errors" -eq 0 ] || fail "$name: $errors failed calls with every replica up: $(json "$work/$name.json" 'd["error_codes"]')"
  [ "$sum" -eq "$requests" ] || fail "$name: replicas counted $sum calls, the bench made $requests"
  log "$name: $requests calls, 0 errors, per replica: ${shares[*]} ($(json "$work/$name.json" 'd["requests_per_s"]') calls/s)"
  echo "SCALE_OUT_${name^^}_PER_REPLICA=${shares[*]}"
}
steady nginx "$via_nginx"
# What nginx logged agrees: one line per call, spread over all three upstreams.
sleep 1.2 # access_log flush=1s
for ((i = 0; i < replicas; i++)); do
  n=$(grep -c "upstream=${server_addr[$i]} " "$work/nginx/access.log" || true)
  [ "$n" -gt 0 ] || fail "nginx access log shows no call to ${server_addr[$i]}"
done
steady round_robin "$via_rr"

# ---- one replica killed in the middle of a run ------------------------------------------------
# Waits until replica $1 has served at least $2 more calls than the count $3.
wait_serving() {
  for _ in $(seq 1 100); do
    [ "$(served "$1")" -ge $(($3 + $2)) ] && return 0
    sleep 0.05
  done
  fail "replica $1 did not serve calls during the run"
}

kill_mid_run() { # kill_mid_run NAME TARGET VICTIM SIGNAL [MAX_ERRORS [BENCH FLAGS...]]
  local name=$1 target=$2 victim=$3 signal=$4 max_errors=${5:-$((2 * concurrency))}
  shift 4; [ $# -gt 0 ] && shift
  local i before survivors_before=() survivors_after=() errors requests
  before=$(served "$victim")
  bench "$work/$name.json" "$target" --duration=6s "$@" &
  bench_pid=$!
  wait_serving "$victim" 200 "$before"
  for ((i = 0; i < replicas; i++)); do [ "$i" -ne "$victim" ] && survivors_before[$i]=$(served "$i"); done
  kill "-$signal" "${server_pid[$victim]}"
  local status=0
  wait "${server_pid[$victim]}" 2>/dev/null || status=$?
  sleep 1 # load keeps running on the survivors
  for ((i = 0; i < replicas; i++)); do [ "$i" -ne "$victim" ] && survivors_after[$i]=$(served "$i"); done
  wait "$bench_pid" || fail "$name: bench exited non-zero: $(tail -n 3 "$work/$name.json.err")"
  bench_pid=""
  requests=$(json "$work/$name.json" 'd["requests"]')
  errors=$(json "$work/$name.json" 'd["errors"]')
  local moved=()
  for ((i = 0; i < replicas; i++)); do
    [ "$i" -eq "$victim" ] && continue
    local d=$((survivors_after[i] - survivors_before[i]))
    moved+=("r$i+$d")
    [ "$d" -gt 0 ] || fail "$name: replica $i served nothing after replica $victim was stopped"
  done
  log "$name: SIG$signal replica $victim (exit status $status) mid-run: $requests calls, $errors failed" \
    "$(json "$work/$name.json" 'd["error_codes"]'), survivors in the 1 s after: ${moved[*]}"
  if [ "$errors" -gt 0 ]; then log "  first error: $(json "$work/$name.json" 'd["first_error"][:160]')"; fi
  if [[ "$target" == "$via_nginx" ]]; then
    # What nginx said about the failed calls (one line per distinct message).
    grep -E '\[(error|crit|alert)\]' "$work/nginx/error.log" | sed 's/^.*\] [0-9#*]* *//; s/, client:.*//' |
      sort | uniq -c | sed 's/^/    nginx: /' || true
    : >"$work/nginx/error.log"
  fi
  echo "SCALE_OUT_${name^^}_ERRORS=$errors"
  echo "SCALE_OUT_${name^^}_REQUESTS=$requests"
  # Which calls may fail: those in flight on the victim when it died (at most $concurrency, one per
  # caller), plus a call that a caller whose call just failed sends on the same connection before
  # its channel has processed the connection's end (the failed stream and the closed transport
  # are separate events). So at most one more per caller: 2 x concurrency. Seen here: 1..6 at
  # concurrency 6. Every later call must find a live replica; with --retries even these succeed.
  # SIGTERM through nginx: only calls that reach the replica in the instant its port closes fail
  # (gRPC refuses them with CANCELLED); seen here: 0..3.
  [ "$errors" -le "$max_errors" ] ||
    fail "$name: $errors failed calls, more than $max_errors (calls in flight: $concurrency)"
  [ "$requests" -gt "$errors" ] || fail "$name: no call succeeded"
  if [ "$signal" = TERM ]; then
    [ "$status" -eq 0 ] || fail "$name: replica $victim exited with $status after SIGTERM"
    grep -q 'event=stopped' "$work/server-$victim.log" || fail "$name: replica $victim logged no event=stopped"
  fi
}

kill_mid_run nginx_kill "$via_nginx" 2 KILL
start_server 2 "${server_addr[2]}" # back on the same port for the next run
kill_mid_run round_robin_kill "$via_rr" 1 KILL
start_server 1 "${server_addr[1]}"
# SIGTERM through client-side round robin: zero failed calls, without any retry policy.
kill_mid_run round_robin_drain "$via_rr" 0 TERM 0
grep -q 'event=draining signal=SIGTERM lame_duck=1s' "$work/server-0.log" ||
  fail "round_robin_drain: replica 0 logged no lame duck: $(grep event=draining "$work/server-0.log")"
start_server 0 "${server_addr[0]}"
kill_mid_run nginx_drain "$via_nginx" 1 TERM
start_server 1 "${server_addr[1]}"
# With the client's retry policy (--retries: UNAVAILABLE before any response is retried on
# another replica) even the calls in flight on the killed replica succeed.
kill_mid_run round_robin_kill_retries "$via_rr" 2 KILL 0 --retries=2
start_server 2 "${server_addr[2]}"
kill_mid_run nginx_kill_retries "$via_nginx" 0 KILL 0 --retries=2

log "PASS"
