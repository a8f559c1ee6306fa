#!/usr/bin/env bash
# Installs every dependency (including the container and proxy tools the deploy tests use,
# and pytest/torch for the Python client's tests),
# builds everything and runs the whole test suite through ctest.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${TOKENSAMPLER_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh" --deploy --test
TOKENSAMPLER_BUILD_DIR=$build_dir "$root/scripts/build.sh"
cd "$build_dir"
ctest --output-on-failure --timeout 1800 "$@"
