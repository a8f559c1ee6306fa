#!/usr/bin/env bash
# scripts/deploy-tests-selected.sh, which decides whether scripts/test.sh installs the
# deploy tools: not for -L sampler, -LE deploy or -E deploy; for a run that includes a
# deploy test, when this build registered any.
# usage: test_sh_deps_test.sh REPO_ROOT BUILD_DIR
set -u -o pipefail
root=${1:?}
build_dir=${2:?}
selected="$root/scripts/deploy-tests-selected.sh"
failures=0
expect() {  # expect WANT_RC DESCRIPTION ARGS...
  local want=$1 what=$2
  shift 2
  "$selected" "$build_dir" "$@"
  local rc=$?
  if [ "$rc" -eq "$want" ]; then echo "ok   - $what"; else echo "FAIL - $what: exit $rc, want $want"; failures=$((failures + 1)); fi
}
expect 1 "-L sampler needs no deploy tools" -L sampler
expect 1 "-LE deploy needs no deploy tools" -LE deploy
expect 1 "-E deploy needs no deploy tools" -E deploy
if (cd "$build_dir" && ctest -N -L deploy | grep -q "Total Tests: [1-9]"); then
  expect 0 "the whole suite needs them"
  expect 0 "-L deploy needs them" -L deploy
else
  expect 1 "a build without deploy tests never needs them"
fi
[ "$failures" -eq 0 ]
