#!/usr/bin/env bash
# Every performance figure of docs/PERFORMANCE.md in one command:
#   bench/run_all.sh [BUILD_DIR]        (default: build-bench, Release)
# Builds the Release benchmark, server and CLI, then runs the in-process Google
# Benchmark matrix (summarised as ratios to the limit kernel), the PyTorch comparison and
# the RPC matrix. Results go to a new mktemp directory, printed at the end.
# Environment: MIN_TIME (Google Benchmark --benchmark_min_time, default 0.5),
# REPETITIONS (default 3; the median is reported), RPC_DURATION (default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-bench}
min_time=${MIN_TIME:-0.5}
repetitions=${REPETITIONS:-3}
rpc_duration=${RPC_DURATION:-5s}
out=$(mktemp -d)

cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTOKENSAMPLER_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" --target sampler_benchmark tokensampler-server tokensampler

"$build/bench/sampler_benchmark" --benchmark_min_time="$min_time" \
  --benchmark_repetitions="$repetitions" --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/inprocess.json" --benchmark_out_format=json >"$out/inprocess.txt"
# The medians of the repetitions, as ratios to the limit kernel.
/usr/bin/python3 - "$out/inprocess.json" "$out/inprocess_median.json" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
keep = []
for b in data["benchmarks"]:
    if b.get("aggregate_name") == "median":
        b = dict(b, name=b["run_name"], run_type="iteration")
        keep.append(b)
    elif b.get("run_type", "iteration") == "iteration" and "/iterations:" in b["name"]:
        keep.append(b)  # fixed-iteration reference runs have no aggregates
data["benchmarks"] = keep
json.dump(data, open(sys.argv[2], "w"))
PY
bench/summarise.py "$out/inprocess_median.json" --markdown | tee "$out/inprocess_summary.md"
/usr/bin/python3 bench/torch_compare.py "$build" --rows 8 | tee "$out/torch.txt"
OUT="$out/rpc.jsonl" bench/rpc_bench.sh "$build" "$rpc_duration" "1 8 64" | tee "$out/rpc.txt"
echo "# results in $out"
