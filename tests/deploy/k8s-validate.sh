#!/usr/bin/env bash
# ctest wrapper for deploy/k8s/validate/validate.mjs: installs the pinned npm packages
# (deploy/k8s/validate/package-lock.json) into a work directory in the build tree and runs the
# schema + structural checks and the self-test on deploy/k8s and its sidecar example (and the checks of deploy/compose.yaml).
#   k8s-validate.sh SOURCE_DIR WORK_DIR [SERVER_BINARY]
# Exit codes: 0 pass, 1 fail, 77 skip (node or npm not installed).
set -euo pipefail
src=$1
work=$2
server_binary=${3:-}
if [ -n "$server_binary" ]; then server_binary=$(readlink -f "$server_binary"); fi
validate_dir=$src/deploy/k8s/validate

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "k8s-validate: SKIP: node/npm not installed" >&2
  exit 77
fi

mkdir -p "$work"
cp "$validate_dir/package.json" "$validate_dir/package-lock.json" "$validate_dir/validate.mjs" "$work/"
if [ ! -d "$work/node_modules" ] || ! cmp -s "$work/package-lock.json" "$work/.installed-lock"; then
  (cd "$work" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$work/package-lock.json" "$work/.installed-lock"
fi

args=(--base "$src/deploy/k8s" --sidecar "$src/deploy/k8s/sidecar" --dockerfile "$src/deploy/Dockerfile" --compose "$src/deploy/compose.yaml" --self-test)
if [ -n "$server_binary" ] && [ -x "$server_binary" ]; then args+=(--server-binary "$server_binary"); fi
# Cross-check the rendering with kubectl's built-in kustomize when a kubectl is installed.
if command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; then
  args+=(--kubectl "$(command -v kubectl)")
fi
cd "$work"
exec node validate.mjs "${args[@]}"
