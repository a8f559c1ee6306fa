#!/usr/bin/env bash
# The CI stages after scripts/test.sh: sanitizer builds and bounded fuzzing.
#   scripts/sanitize.sh [asan] [tsan] [fuzz]      (default: all three, in that order)
#
#   asan  build-asan (TOKENSAMPLER_SANITIZE=address: AddressSanitizer + UndefinedBehavior-
#         Sanitizer, LeakSanitizer at exit): every suite but deploy (ctest -LE deploy:
#         unit, service, e2e, the fuzz corpora).
#   tsan  build-tsan (TOKENSAMPLER_SANITIZE=thread): the concurrent units that use neither
#         gRPC nor absl::Mutex (stream session, codec, sampler). Debian's gRPC and abseil
#         are not instrumented, so TSan cannot see their locks (absl::Mutex included) and
#         reports races that are not there; the rest runs under ASan instead.
#   fuzz  build-fuzz (clang, libFuzzer + ASan + UBSan): each fuzzer of tests/fuzz for
#         TOKENSAMPLER_FUZZ_SECONDS (default 45) seconds from its seed corpus, one per core
#         at a time.
#
# Any sanitizer report or fuzzer crash fails the stage. Suppressions (each with its
# evidence) are in tests/sanitizers/. Build dirs live next to build/ (or under
# $TOKENSAMPLER_SANITIZE_ROOT). Prints each stage's wall time.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out_root=${TOKENSAMPLER_SANITIZE_ROOT:-$root}
fuzz_seconds=${TOKENSAMPLER_FUZZ_SECONDS:-45}
jobs=$(nproc)
stages=("$@")
[ "${#stages[@]}" -eq 0 ] && stages=(asan tsan fuzz)

"$root/scripts/install-deps.sh" --sanitize

supp=$root/tests/sanitizers
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"

generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
launcher=()
if command -v ccache >/dev/null 2>&1; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache); fi

configure() {  # configure BUILD_DIR CMAKE_ARGS...
  local dir=$1
  shift
  cmake -S "$root" -B "$dir" "${generator[@]}" "${launcher[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DTOKENSAMPLER_BUILD_BENCHMARKS=OFF -DTOKENSAMPLER_DEPLOY_TESTS=OFF "$@" >/dev/null
}

stage_asan() {
  local dir=$out_root/build-asan
  configure "$dir" -DTOKENSAMPLER_SANITIZE=address
  cmake --build "$dir" -j"$jobs"
  # Label `rss`: tests that assert the server's RSS falls back after a burst
  # (e2e_memory_budget, e2e_soak_short). Under ASan freed memory sits in the allocator's
  # quarantine and malloc_trim cannot return it: a CI run here measured RSS 537 MiB / 445 MiB
  # after the bursts against limits of 200 MiB / baseline + 64 MiB, with every other
  # check of both tests passing. They run in the plain build (scripts/test.sh) instead.
  (cd "$dir" && ctest -LE 'deploy|rss' -j"$jobs" --output-on-failure --timeout 900)
}

stage_tsan() {
  local dir=$out_root/build-tsan
  configure "$dir" -DTOKENSAMPLER_SANITIZE=thread
  # sampler_simd_tests (every kernel on every SIMD target) is single-threaded and takes
  # minutes under TSan (54 s for one scalar-target test here); the ASan stage runs it.
  local targets=(sampler_tests server_stream_session_test server_codec_test)
  cmake --build "$dir" -j"$jobs" --target "${targets[@]}"
  "$dir/tests/sampler/sampler_tests"
  "$dir/tests/server/server_stream_session_test"
  "$dir/tests/server/server_codec_test"
}

fuzz_one() {  # fuzz_one BUILD_DIR NAME: fuzz_NAME for $fuzz_seconds; writes fuzz-NAME.{log,rc}
  local dir=$1 name=$2
  local corpus=$dir/corpus/$name rc=0
  mkdir -p "$corpus"
  # New inputs go to the build dir's corpus; the committed seeds are read, not changed.
  "$dir/tests/fuzz/fuzz_$name" -max_total_time="$fuzz_seconds" -print_final_stats=1 \
    -rss_limit_mb=2048 -timeout=20 -artifact_prefix="$dir/crash-$name-" \
    "$corpus" "$root/tests/fuzz/corpus/$name" >"$dir/fuzz-$name.log" 2>&1 || rc=$?
  echo "$rc" >"$dir/fuzz-$name.rc"
}

stage_fuzz() {
  local dir=$out_root/build-fuzz
  configure "$dir" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
    -DTOKENSAMPLER_FUZZ=ON -DTOKENSAMPLER_SANITIZE=address
  local names=(request stream verify shared_memory npy)
  cmake --build "$dir" -j"$jobs" --target "${names[@]/#/fuzz_}"
  # A fuzzer is single-threaded: run one per core at a time, so the stage takes
  # ceil(5 / cores) * TOKENSAMPLER_FUZZ_SECONDS (3 * 45 s on 2 cores, as long as the three
  # targets before verify and shared_memory took one after the other).
  local name failed=0
  rm -f "$dir"/fuzz-*.rc
  for name in "${names[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    fuzz_one "$dir" "$name" &
  done
  wait
  for name in "${names[@]}"; do
    if [ "$(cat "$dir/fuzz-$name.rc")" != 0 ]; then
      tail -n 60 "$dir/fuzz-$name.log"
      echo "sanitize.sh: fuzz_$name failed (a crash or a sanitizer report; see $dir/crash-$name-*)" >&2
      failed=1
      continue
    fi
    echo "fuzz_$name: $(grep -E '^Done' "$dir/fuzz-$name.log")"
  done
  return "$failed"
}

for stage in "${stages[@]}"; do
  case "$stage" in
    asan|tsan|fuzz) ;;
    *) echo "sanitize.sh: unknown stage '$stage' (want asan, tsan or fuzz)" >&2; exit 2 ;;
  esac
  start=$SECONDS
  echo "=== sanitize.sh: $stage"
  "stage_$stage"
  echo "=== sanitize.sh: $stage passed in $((SECONDS - start)) s"
done
