#!/usr/bin/env bash
# RPC benchmark: `tokensampler bench` against a real tokensampler-server on a free port.
# Matrix (issues 4 and 10): V=128256; concurrency 1/8/64; unary and streaming; wire fp32
# `values`, fp32 `raw`, bf16 `raw`, and fp32 in shared memory (`shm`: one registered region
# per caller, rewritten before every call); transport TCP (127.0.0.1) and a Unix socket;
# greedy and the full pipeline (T 0.8, top-k 50, top-p 0.95, min-p 0.05). Prints one line per run (rows/s, MB/s, p50/p99 latency, errors), then the
# ratios the issue targets, and the server's peak RSS (VmHWM of /proc/PID/status) for
# each (pipeline, mode, wire) group (a fresh server per group).
#
# Usage: bench/rpc_bench.sh BUILD_DIR [DURATION] [CONCURRENCIES]
#   e.g. bench/rpc_bench.sh build 5s "1 8 64"
# Environment: ROWS (rows per request, default 1), WORKERS (server --workers, default 0
# = CPUs), MODES ("unary stream"; "verify" = Verify calls with k = 4 one-hot drafts, a row
# being one sequence of k + 1 target rows), WIRES ("values float32 bfloat16 shm"),
# TRANSPORTS ("tcp unix"), PIPELINES ("greedy full"), SERVER_FLAGS (extra server flags, e.g.
# "--sample_on_grpc_threads"). JSON lines go to $OUT (default: a new mktemp file).
set -euo pipefail

build=${1:?usage: rpc_bench.sh BUILD_DIR [DURATION] [CONCURRENCIES]}
duration=${2:-5s}
concurrencies=${3:-"1 8 64"}
rows=${ROWS:-1}
workers=${WORKERS:-0}
modes=${MODES:-"unary stream"}
wires=${WIRES:-"values float32 bfloat16 shm"}
transports=${TRANSPORTS:-"tcp unix"}
pipelines=${PIPELINES:-"greedy full"}
read -r -a server_flags <<<"${SERVER_FLAGS:-}"
vocab=128256

server_bin="$build/server/tokensampler-server"
client_bin="$build/client/tokensampler"
for b in "$server_bin" "$client_bin"; do
  [[ -x $b ]] || { echo "missing $b (build the tokensampler-server and tokensampler targets)" >&2; exit 2; }
done

work=$(mktemp -d)
out=${OUT:-$(mktemp --suffix=.jsonl)}
server_pid=""
cleanup() {
  if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# One server per (pipeline, mode, wire) group, so that each group's peak RSS (VmHWM) is
# its own: the peak is reached at the group's highest concurrency.
# Each server logs to its own file: reading a reused file could find the previous
# server's address before the new one has truncated it.
servers_started=0
start_server() {
  servers_started=$((servers_started + 1))
  local log="$work/server$servers_started.log"
  rm -f "$work/sock"
  "$server_bin" --address="127.0.0.1:0,unix:$work/sock" --workers="$workers" \
    "${server_flags[@]}" 2>"$log" &
  server_pid=$!
  address=""
  for _ in $(seq 1 200); do
    address=$(sed -n 's/.*event=listening address=\([^ ,]*\).*/\1/p' "$log" 2>/dev/null | head -n1)
    [[ -n $address ]] && return 0
    kill -0 "$server_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  echo "server did not report its address" >&2
  exit 1
}
stop_server() {
  kill -TERM "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$server_pid/status"; }

echo "# tokensampler-server --workers=$workers ${SERVER_FLAGS:+$SERVER_FLAGS }on $(nproc) CPUs, V=$vocab, rows/request=$rows, $duration per run (+1s warmup); client on the same machine"
printf '%-8s %-7s %-9s %-5s %5s %11s %9s %9s %9s %7s %12s\n' pipeline mode wire via conc rows/s MB/s p50_ms p99_ms errors peak_rss_MiB
for pipeline in $pipelines; do
  for mode in $modes; do
    for wire in $wires; do
      start_server
      for transport in $transports; do
      target=$address
      [[ $transport == unix ]] && target="unix:$work/sock"
      for conc in $concurrencies; do
        json=$("$client_bin" bench --server="$target" --json --pipeline="$pipeline" \
          --mode="$mode" --wire="$wire" --concurrency="$conc" --vocab="$vocab" \
          --rows="$rows" --duration="$duration" --warmup=1s --timeout=30s)
        echo "$json" | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
r.update(pipeline=sys.argv[1], mode=sys.argv[2], wire=sys.argv[3], concurrency=int(sys.argv[4]),
         server_peak_rss_kib=int(sys.argv[5]), transport=sys.argv[6])
print(json.dumps(r))' "$pipeline" "$mode" "$wire" "$conc" "$(hwm_kib)" "$transport" >>"$out"
        tail -n1 "$out" | /usr/bin/python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
l = r["latency_ms"]
print("%-8s %-7s %-9s %-5s %5d %11.0f %9.1f %9.2f %9.2f %7d %12.0f" % (
    r["pipeline"], r["mode"], r["wire"], r["transport"], r["concurrency"], r["rows_per_s"],
    r["mb_per_s"], l["p50"], l["p99"], r["errors"], r["server_peak_rss_kib"] / 1024))'
      done
      done
      stop_server
    done
  done
done

/usr/bin/python3 - "$out" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
# Issue 4's ratios compare TCP runs; issue 10's compare shm (either transport) with TCP.
by = {(r["pipeline"], r["mode"], r["wire"], r["concurrency"]): r["rows_per_s"]
      for r in runs if r.get("transport", "tcp") == "tcp"}
via = {(r["pipeline"], r["mode"], r["wire"], r["transport"], r["concurrency"]): r
       for r in runs}
print("# ratios (issue 4 targets)")
for (p, m, w, c), v in sorted(by.items()):
    if p == "full":
        g = by.get(("greedy", m, w, c))
        if g:
            ok = "MET" if v >= 0.85 * g else f"MISSED ({v / g:.0%})"
            print(f"full/greedy rows/s {m} {w} c={c}: {v / g:.2f} (target >= 0.85) {ok}")
for (p, m, w, c), v in sorted(by.items()):
    if w == "bfloat16":
        f = by.get((p, m, "float32", c))
        if f:
            ok = "MET" if v >= 1.6 * f else f"MISSED by {1.6 * f / v:.2f}x"
            print(f"bf16/fp32-raw rows/s {p} {m} c={c}: {v / f:.2f} (target >= 1.6) {ok}")
for (p, m, w, c), v in sorted(by.items()):
    if m == "stream":
        u = by.get((p, "unary", w, c))
        if u:
            ok = "MET" if v >= u else f"MISSED ({v / u:.0%})"
            print(f"stream/unary rows/s {p} {w} c={c}: {v / u:.2f} (target >= 1) {ok}")
for (p, m, w, c), v in sorted(by.items()):
    if m == "verify":
        u = by.get((p, "unary", w, c))
        if u:
            print(f"verify/unary rows/s {p} {w} c={c}: {v / u:.2f} (a Verify row is k + 1 = 5 positions)")
print("# shared memory (issue 10 targets; the batch target compares with sampler_benchmark)")
for (p, m, w, t, c), r in sorted(via.items()):
    # The one-row target is about one-row calls; with ROWS > 1 the ratio means nothing.
    if w == "shm" and t == "unix" and c == 1 and r.get("rows_per_request", 1) == 1:
        f = via.get((p, m, "float32", "tcp", 1))
        if f:
            ratio = r["rows_per_s"] / f["rows_per_s"]
            ok = "MET" if ratio >= 4 else f"MISSED ({ratio:.2f}x)"
            print(f"shm-unix/fp32-raw-tcp rows/s {p} {m} c=1: {ratio:.2f} (target >= 4) {ok}")
    if w == "shm":
        print(f"shm {p} {m} via {t} c={c}: p50 {r['latency_ms']['p50']:.3f} ms, "
              f"{r['rows_per_s']:.0f} rows/s")
top = max(r["concurrency"] for r in runs)
for r in runs:
    if r["concurrency"] == top:
        mib = r["server_peak_rss_kib"] / 1024
        # Issue 4's 256 MiB limit is for its one-row matrix; larger calls get no verdict.
        if r.get("rows_per_request", 1) == 1:
            ok = "MET" if mib <= 256 else f"MISSED by {mib / 256:.2f}x"
        else:
            ok = f"(no target at {r['rows_per_request']} rows/call)"
        print(f"peak server RSS {r['pipeline']} {r['mode']} {r['wire']} "
              f"{r.get('transport', 'tcp')} c={top}: "
              f"{mib:.0f} MiB {'(target <= 256) ' if r.get('rows_per_request', 1) == 1 else ''}{ok}")
PY
echo "# JSON lines: $out"
