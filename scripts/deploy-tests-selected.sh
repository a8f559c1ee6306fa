#!/usr/bin/env bash
# Whether a ctest run with these arguments would run a deploy test (label `deploy`: the
# container image and scale-out tests, which need podman, buildah, nginx, ...).
#   scripts/deploy-tests-selected.sh BUILD_DIR [ctest arguments...]
# Exits 0 if at least one selected test has the label, 1 if none does. scripts/test.sh
# uses it to install the deploy tools only when they are needed.
set -euo pipefail
build_dir=${1:?usage: deploy-tests-selected.sh BUILD_DIR [ctest arguments...]}
shift
cd "$build_dir"
ctest --show-only=json-v1 "$@" | python3 -c '
import json, sys
tests = json.load(sys.stdin).get("tests", [])
def labels(test):
    for p in test.get("properties", []):
        if p.get("name") == "LABELS":
            return p.get("value", [])
    return []
sys.exit(0 if any("deploy" in labels(t) for t in tests) else 1)
'
