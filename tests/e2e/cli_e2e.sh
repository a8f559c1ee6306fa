#!/usr/bin/env bash
# End-to-end: the real tokensampler-server driven by the real tokensampler CLI.
# usage: cli_e2e.sh SERVER_BINARY CLIENT_BINARY
set -u -o pipefail

SERVER_BIN=${1:?usage: cli_e2e.sh SERVER_BINARY CLIENT_BINARY}
CLI=${2:?usage: cli_e2e.sh SERVER_BINARY CLIENT_BINARY}
PY=/usr/bin/python3

WORK=$(mktemp -d)
SERVER_PID=""
FAILURES=0

cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

pass() { echo "ok   - $*"; }
fail() { echo "FAIL - $*"; FAILURES=$((FAILURES + 1)); }
die() { echo "FATAL - $*"; [[ -f "$WORK/server.log" ]] && sed 's/^/  server: /' "$WORK/server.log"; exit 1; }

# Runs the CLI; sets OUT, ERR and RC.
run() {
  "$CLI" "$@" >"$WORK/out" 2>"$WORK/err"
  RC=$?
  OUT=$(cat "$WORK/out")
  ERR=$(cat "$WORK/err")
}

# expect_rc WANT DESCRIPTION (after run)
expect_rc() {
  if [[ "$RC" == "$1" ]]; then pass "$2 (exit $RC)"; else
    fail "$2: exit $RC, want $1"; echo "  stdout: $OUT"; echo "  stderr: $ERR"; fi
}

# expect_in HAYSTACK NEEDLE DESCRIPTION
expect_in() {
  if [[ "$1" == *"$2"* ]]; then pass "$3"; else fail "$3: '$2' not in: $1"; fi
}

json_get() {  # json_get JSON PYTHON_EXPRESSION_OF_d
  "$PY" -c 'import json,sys; d=json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# --- start the server on a free port -----------------------------------------------
"$SERVER_BIN" --address="127.0.0.1:0,unix:$WORK/sock" --workers=2 --drain_timeout=5s \
  2>"$WORK/server.log" &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 200); do
  PORT=$(sed -n 's/.*event=listening address=[^ ,]*:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -1)
  [[ -n "$PORT" ]] && break
  kill -0 "$SERVER_PID" 2>/dev/null || die "server exited before listening"
  sleep 0.1
done
[[ -n "$PORT" ]] || die "no event=listening line within 20s"
ADDR="127.0.0.1:$PORT"
export TOKENSAMPLER_SERVER="$ADDR"   # the CLI reads its default --server from here
echo "# server pid $SERVER_PID on $ADDR"

# --- health, info ---------------------------------------------------------------------
run health
expect_rc 0 "health"
expect_in "$OUT" "SERVING" "health prints SERVING"
run health --service=tokensampler.v1.Sampler
expect_rc 0 "health of tokensampler.v1.Sampler"
run info
expect_rc 0 "info"
expect_in "$OUT" "version" "info shows the version"
run info --json
expect_rc 0 "info --json"
[[ "$(json_get "$OUT" "len(d['version']) > 0 and d['max_vocab'] >= 128256")" == "True" ]] \
  && pass "info --json has version and max_vocab" || fail "info --json: $OUT"

# --- addressing: dns:/// and a comma list (round robin) reach the same server -----------
run health --server="dns:///localhost:$PORT"
expect_rc 0 "health over dns:///localhost:$PORT"
run sample --server="$ADDR,localhost:$PORT" --logits=1,5,2 --temperature=0 --retries=2
expect_rc 0 "sample over a comma list with --retries"
expect_in "$OUT" "token 1 " "comma list call answers"
run health --server="unix:$WORK/sock"
expect_rc 0 "health over the Unix socket of the same server"

# --- shared memory: --wire=shm gives the float32 token and leaves no object behind --------
run sample --random-vocab=32000 --seed=5 --temperature=0.9 --top_k=40 --wire=float32 --json
WANT=$(json_get "$OUT" "d['results'][0]['samples'][0]['token_id']")
run sample --server="unix:$WORK/sock" --random-vocab=32000 --seed=5 --temperature=0.9 \
  --top_k=40 --wire=shm --json
expect_rc 0 "sample --wire=shm over the Unix socket"
GOT=$(json_get "$OUT" "d['results'][0]['samples'][0]['token_id']")
[[ -n "$WANT" && "$WANT" == "$GOT" ]] && pass "--wire=shm gives the float32 token ($GOT)" \
  || fail "--wire=shm token $GOT, float32 token $WANT"
run sample --random-vocab=100 --top_p=2 --wire=shm
expect_rc 1 "a bad row over --wire=shm fails the call"
run dist --random-vocab=1000 --wire=shm --top=3
expect_rc 0 "dist --wire=shm"
ls /dev/shm/tokensampler-[0-9]* >/dev/null 2>&1 && fail "--wire=shm left objects in /dev/shm" \
  || pass "--wire=shm unlinked its objects, also after the failed call"
run bench --wire=shm --requests=20 --warmup=0s --vocab=1000 --rows=4 --json
expect_rc 0 "bench --wire=shm"
[[ "$(json_get "$OUT" "d['requests'] == 20 and d['errors'] == 0 and d['wire'] == 'shm'")" == "True" ]] \
  && pass "bench --wire=shm: 20 calls, no error" || fail "bench --wire=shm: $OUT"
run info --json
[[ "$(json_get "$OUT" "d['shared_memory_mode'] == 'SHARED_MEMORY_MODE_LOCAL'")" == "True" ]] \
  && pass "info --json reports shared_memory_mode LOCAL" || fail "info: $OUT"

run info --server="127.0.0.1"
expect_rc 2 "an address without a port is a usage error"
expect_in "$ERR" "--server" "address error names the flag"

# --- sample ------------------------------------------------------------------------------
run sample --logits=0.1,3.0,1.0,-inf --temperature=0
expect_rc 0 "greedy sample"
expect_in "$OUT" "token 1 " "greedy picks the argmax"

run sample --random-vocab=32000 --seed=12345 --step=7 --temperature=0.9 --top_k=40 --json
expect_rc 0 "seeded sample (1)"
T1=$(json_get "$OUT" "d['results'][0]['samples'][0]['token_id']")
S1=$(json_get "$OUT" "d['results'][0]['seed'] + '/' + d['results'][0]['step']")
run sample --random-vocab=32000 --seed=12345 --step=7 --temperature=0.9 --top_k=40 --json
T2=$(json_get "$OUT" "d['results'][0]['samples'][0]['token_id']")
[[ -n "$T1" && "$T1" == "$T2" ]] && pass "same seed and step give the same token ($T1)" \
  || fail "seeded tokens differ: $T1 vs $T2"
[[ "$S1" == "12345/7" ]] && pass "response echoes seed and step" || fail "seed/step: $S1"

run sample --random-vocab=32000 --temperature=0.9
expect_rc 0 "unseeded sample"
expect_in "$OUT" "replay with --seed" "unseeded sample says how to replay"
REPLAY=$(sed -n 's/.*(replay with \(--seed [0-9]* --step [0-9]*\)).*/\1/p' <<<"$OUT")
TOKEN=$(sed -n 's/^row 0: token \([0-9]*\).*/\1/p' <<<"$OUT")
# shellcheck disable=SC2086
run sample --random-vocab=32000 --temperature=0.9 $REPLAY
TOKEN2=$(sed -n 's/^row 0: token \([0-9]*\).*/\1/p' <<<"$OUT")
[[ -n "$TOKEN" && "$TOKEN" == "$TOKEN2" ]] && pass "replaying the printed seed gives token $TOKEN" \
  || fail "replay: $TOKEN vs $TOKEN2 ($REPLAY)"

# Every wire encoding of the same logits gives the same greedy token.
for wire in values float32 bfloat16 float16; do
  run sample --random-vocab=128256 --random-seed=3 --temperature=0 --wire=$wire --json
  expect_rc 0 "greedy over --wire=$wire"
  eval "TOK_$wire=\$(json_get \"\$OUT\" \"d['results'][0]['samples'][0]['token_id']\")"
done
[[ "$TOK_values" == "$TOK_float32" && "$TOK_float32" == "$TOK_bfloat16" && \
   "$TOK_bfloat16" == "$TOK_float16" ]] \
  && pass "all wires agree on the argmax ($TOK_values)" \
  || fail "wires disagree: $TOK_values $TOK_float32 $TOK_bfloat16 $TOK_float16"

# A 2-D float16 .npy file: one result per row, argmax per row.
"$PY" - "$WORK/rows.npy" <<'PYEOF'
import sys, numpy as np
a = np.full((3, 50), -1.0, dtype=np.float16)
a[0, 7] = 4.0; a[1, 42] = 4.0; a[2, 0] = 4.0
np.save(sys.argv[1], a)
PYEOF
run sample --npy="$WORK/rows.npy" --temperature=0 --json
expect_rc 0 "sample from a 2-D float16 .npy"
[[ "$(json_get "$OUT" "[r['samples'][0]['token_id'] for r in d['results']]")" == "[7, 42, 0]" ]] \
  && pass "npy rows give argmaxes 7, 42, 0" || fail "npy rows: $OUT"

run sample --logits=1,2,3 --num_samples=3 --top_logprobs=2 --seed=1
expect_rc 0 "num_samples and top_logprobs"
expect_in "$OUT" "sample 2:" "three samples printed"
expect_in "$OUT" "top:" "alternatives printed"

# --- dist -----------------------------------------------------------------------------------
printf 'the\n a\nof\ncat\n' >"$WORK/vocab.txt"
run dist --logits=2.0,1.0,0.1,-inf --vocab="$WORK/vocab.txt"
expect_rc 0 "dist with a vocabulary"
expect_in "$OUT" "3 tokens with p > 0" "dist counts the tokens with p > 0"
expect_in "$OUT" '"the"' "dist maps ids to strings"
expect_in "$OUT" "█" "dist draws bars"
run dist --logits=2.0,1.0,0.1 --json
[[ "$(json_get "$OUT" "abs(sum(d['distributions'][0]['probs']) - 1) < 1e-5 and d['distributions'][0]['token_ids'] == [0, 1, 2]")" == "True" ]] \
  && pass "dist --json sums to 1, descending" || fail "dist --json: $OUT"

# --- bench ----------------------------------------------------------------------------------
run bench --duration=2s --warmup=200ms --concurrency=4 --vocab=128256 --json
expect_rc 0 "bench unary 2s"
echo "# bench: $OUT"
[[ "$(json_get "$OUT" "d['requests'] > 0 and d['errors'] == 0 and d['rows'] == d['requests'] and d['rows_per_s'] > 0 and d['mb_per_s'] > 0 and set(d['latency_ms']) >= {'p50','p90','p99','max'} and d['error_codes'] == {} and d['seconds'] >= 2")" == "True" ]] \
  && pass "bench --json has the documented keys and no errors" || fail "bench json: $OUT"
run bench --mode=stream --requests=40 --warmup=0s --concurrency=2 --rows=2 --vocab=32000 \
  --wire=bfloat16 --pipeline=full --json
expect_rc 0 "bench stream"
[[ "$(json_get "$OUT" "d['requests'] == 40 and d['rows'] == 80 and d['errors'] == 0")" == "True" ]] \
  && pass "bench stream ran 40 messages of 2 rows" || fail "bench stream: $OUT"

# --- errors ---------------------------------------------------------------------------------
run sample --logits=1,2 --top_p=1.5
expect_rc 1 "server rejects top_p 1.5"
expect_in "$ERR" "INVALID_ARGUMENT" "rejection carries the code"
expect_in "$ERR" "rows[0].params.top_p" "rejection names the field"
run sample --logits=1,2 --top_k=abc
expect_rc 2 "bad flag value"
expect_in "$ERR" "--top_k" "bad flag value names the flag"
run sample --npy="$WORK/vocab.txt"
expect_rc 2 "a file that is not .npy"
expect_in "$ERR" "not a valid .npy file" "bad file error"
run bench --duration=1s --warmup=0s --json --wire=float32 --vocab=64 --concurrency=70
expect_rc 0 "bench with many callers"
# A bench the server rejects stops at the first rejection (not after --duration) with
# the server's message; the server's log gets a line per rejected call at most.
errors_before=$(grep -c "event=rpc_error" "$WORK/server.log")
for mode in unary stream; do
  run bench --mode=$mode --top_p=1.5 --duration=10m --warmup=0s --vocab=64 --concurrency=4
  expect_rc 1 "bench --mode=$mode with a rejected parameter stops"
  expect_in "$ERR" "INVALID_ARGUMENT: rows[0].params.top_p: must be in (0, 1], got 1.5" \
    "bench --mode=$mode reports the server's message"
done
errors_after=$(grep -c "event=rpc_error" "$WORK/server.log")
(( errors_after - errors_before <= 8 )) && pass "rejected bench calls: $((errors_after - errors_before)) log lines" \
  || fail "rejected bench runs logged $((errors_after - errors_before)) rpc_error lines, want <= 8"
run bench --vocab=2000000 --duration=10m --warmup=0s --wire=bfloat16
expect_rc 1 "bench over the server's max_vocab stops"
expect_in "$ERR" "exceed the server limit max_vocab" "bench names max_vocab"
# CLI wording.
run sample --logits=1,2 -t 0.5
expect_rc 2 "a short flag"
expect_in "$ERR" "unknown flag -t (flags have long names" "a short flag is explained"
run sample --logits=1,2 --temperature=abc
expect_rc 2 "a flag value that is not a number"
[[ "$ERR" == "error: --temperature: 'abc' is not a number"* && "${ERR#*abc}" != *abc* ]] \
  && pass "a bad value is reported once" || fail "bad value message: $ERR"
run sample --logits=1,2 --temperature=1e40
expect_rc 2 "a float32 overflow"
expect_in "$ERR" "--temperature: '1e40' overflows float32" "1e40 overflows float32"
run sample --logits=1,2 --temprature=0.5
expect_in "$ERR" "did you mean --temperature?" "a misspelt flag gets a suggestion"
TOKENSAMPLER_SERVER=nowhere "$CLI" info >"$WORK/out" 2>"$WORK/err"; RC=$?; ERR=$(cat "$WORK/err")
expect_rc 2 "a bad TOKENSAMPLER_SERVER"
[[ "$ERR" == *"TOKENSAMPLER_SERVER: 'nowhere'"* && "$ERR" != *"--server"* ]] \
  && pass "the error names TOKENSAMPLER_SERVER" || fail "env error: $ERR"

# --- stop: SIGTERM drains and exits 0 ------------------------------------------------------
kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_RC=$?
SERVER_PID=""
[[ "$SERVER_RC" == 0 ]] && pass "server exits 0 on SIGTERM" || fail "server exit code $SERVER_RC"
grep -q "event=stopped" "$WORK/server.log" && pass "server logged event=stopped" \
  || fail "no event=stopped in the server log"

run health
[[ "$RC" != 0 ]] && pass "health of a stopped server fails (exit $RC)" || fail "health exit 0"
expect_in "$ERR" "cannot reach server at $ADDR" "down server error says where"
run sample --logits=1,2 --timeout=2s
expect_rc 1 "sample against a down server"

if [[ "$FAILURES" -gt 0 ]]; then
  echo "# $FAILURES check(s) failed"; sed 's/^/  server: /' "$WORK/server.log" | tail -20; exit 1
fi
echo "# all checks passed"
