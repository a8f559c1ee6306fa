#!/usr/bin/env bash
# Configures and builds tokensampler into ./build (or $TOKENSAMPLER_BUILD_DIR).
#   scripts/build.sh [cmake --build args...]   e.g. scripts/build.sh --target tokensampler-server
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${TOKENSAMPLER_BUILD_DIR:-$root/build}
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
if [ ! -f "$build_dir/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build_dir" -j"$(nproc)" "$@"
