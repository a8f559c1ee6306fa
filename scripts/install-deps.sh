#!/usr/bin/env bash
# Installs the Debian 12 packages tokensampler needs to build, test and run.
# Idempotent: packages already present are skipped by apt. Works as root, uses sudo otherwise.
#   scripts/install-deps.sh            build + test dependencies
#   scripts/install-deps.sh --test     also what the Python client's tests and bench/ need
#                                      (pytest, torch, venv/pip/setuptools/wheel for the install test)
#   scripts/install-deps.sh --deploy   also the container and proxy tools used by deploy/ tests
#   scripts/install-deps.sh --sanitize also clang and its sanitizer/libFuzzer runtimes
#                                      (scripts/sanitize.sh)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libgrpc++-dev libgrpc-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev libhwy-dev
  python3 python3-grpcio python3-protobuf python3-numpy python3-prometheus-client openssl
)
test_packages=(python3-pytest python3-torch python3-venv python3-pip python3-setuptools python3-wheel)
sanitize_packages=(clang-14 libclang-rt-14-dev)
deploy_packages=(podman buildah runc debootstrap nginx-light uidmap slirp4netns fuse-overlayfs iproute2 procps)

for arg in "$@"; do
  case "$arg" in
    --deploy) packages+=("${deploy_packages[@]}") ;;
    --test) packages+=("${test_packages[@]}") ;;
    --sanitize) packages+=("${sanitize_packages[@]}") ;;
    --torch) packages+=(python3-torch) ;;
    *) echo "install-deps.sh: unknown option '$arg'" >&2; exit 2 ;;
  esac
done

sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages already installed"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
