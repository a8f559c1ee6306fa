#!/usr/bin/env bash
# Installs the dependencies (with pytest/torch for the Python client's tests), builds
# everything and runs the test suite through ctest.
#   scripts/test.sh [ctest arguments...]     e.g. scripts/test.sh -L sampler, scripts/test.sh -LE deploy
# The deploy tests' tools (podman, buildah, runc, debootstrap, nginx, ...) are installed
# only when the selected tests include a deploy test (label `deploy`); with -LE deploy,
# -E deploy or -L <another label> they are not. TOKENSAMPLER_SKIP_DEPLOY_DEPS=1 does not
# install them up front either (the deploy tests then install what they need when run as
# root, or skip).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_dir=${TOKENSAMPLER_BUILD_DIR:-$root/build}
"$root/scripts/install-deps.sh" --test
TOKENSAMPLER_BUILD_DIR=$build_dir "$root/scripts/build.sh"
if [ "${TOKENSAMPLER_SKIP_DEPLOY_DEPS:-0}" != 1 ] &&
   "$root/scripts/deploy-tests-selected.sh" "$build_dir" "$@"; then
  "$root/scripts/install-deps.sh" --deploy
fi
cd "$build_dir"
ctest --output-on-failure --timeout 1800 "$@"
