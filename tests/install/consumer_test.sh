#!/usr/bin/env bash
# Installs this build into a staging prefix and builds tests/install/consumer against it,
# as a C++ backend would: find_package(tokensampler CONFIG) for tokensampler::sampler and
# tokensampler::client, then pkg-config for both libraries. Runs the in-process sampler
# (known draws from the README) and the client against a tokensampler-server started from
# the staged prefix.
#   consumer_test.sh BUILD_DIR SOURCE_DIR [CXX_COMPILER]
set -euo pipefail
build=$1
source=$2
cxx=${3:-c++}
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

prefix=$work/prefix
echo "== cmake --install into a staging prefix"
cmake --install "$build" --prefix "$prefix" > "$work/install.log"
# A plain install must not write outside the prefix (the unit and /etc/default are .deb-only).
if grep -v "$prefix" "$work/install.log" | grep -E '^-- (Installing|Up-to-date):'; then
  echo "FAIL: cmake --install wrote outside the prefix" >&2
  exit 1
fi
for f in include/tokensampler/sampler/sampler.h include/tokensampler/client/client.h \
         include/tokensampler/v1/sampler.grpc.pb.h bin/tokensampler-server bin/tokensampler; do
  test -e "$prefix/$f" || { echo "FAIL: $f not installed" >&2; exit 1; }
done
for f in workspace.h kernels.h; do
  test ! -e "$prefix/include/tokensampler/sampler/$f" || { echo "FAIL: private header $f installed" >&2; exit 1; }
done

echo "== find_package(tokensampler CONFIG) consumer"
launcher=()
if command -v ccache > /dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$source/tests/install/consumer" -B "$work/consumer" -G Ninja \
  -DCMAKE_CXX_COMPILER="$cxx" "${launcher[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON \
  | tee "$work/configure.log" | grep 'found tokensampler'
grep -q "found tokensampler 0.1.0 in $prefix/" "$work/configure.log"
cmake --build "$work/consumer"
"$work/consumer/consumer_sampler"
"$work/consumer/consumer_client"

# COMPONENTS sampler alone defines no client target (and needs no gRPC); an unknown
# component and a version the package does not satisfy (0.x: SameMinorVersion) are refused.
mkdir -p "$work/version"
cat > "$work/version/CMakeLists.txt" <<'CMAKE'
cmake_minimum_required(VERSION 3.16)
project(version_check LANGUAGES CXX)
find_package(tokensampler 0.1 CONFIG REQUIRED COMPONENTS sampler)
if(NOT TARGET tokensampler::sampler OR TARGET tokensampler::client)
  message(FATAL_ERROR "COMPONENTS sampler: want tokensampler::sampler only")
endif()
find_package(tokensampler 0.1 CONFIG COMPONENTS nosuch)
if(tokensampler_FOUND)
  message(FATAL_ERROR "COMPONENTS nosuch accepted")
endif()
find_package(tokensampler 0.2 CONFIG COMPONENTS sampler)
if(tokensampler_FOUND)
  message(FATAL_ERROR "tokensampler ${tokensampler_VERSION} accepted for a 0.2 request")
endif()
CMAKE
cmake -S "$work/version" -B "$work/version/build" -DCMAKE_PREFIX_PATH="$prefix" > "$work/version.log" 2>&1 ||
  { cat "$work/version.log" >&2; echo "FAIL: components/version checks" >&2; exit 1; }
echo "components and version checks: ok"

echo "== client against the staged tokensampler-server"
"$prefix/bin/tokensampler-server" --address=127.0.0.1:0 --workers=1 2> "$work/server.log" &
server_pid=$!
address=$("$source/tests/install/listening-address.sh" "$work/server.log")
"$work/consumer/consumer_client" "$address"

echo "== pkg-config"
pcdir=$(dirname "$(find "$prefix" -name tokensampler-sampler.pc)")
export PKG_CONFIG_PATH=$pcdir
test "$(pkg-config --modversion tokensampler-client)" = 0.1.0
# shellcheck disable=SC2046
"$cxx" -std=c++17 -O1 "$source/tests/install/consumer/sampler_main.cc" -o "$work/pc_sampler" \
  $(pkg-config --cflags --libs tokensampler-sampler)
"$work/pc_sampler"
# shellcheck disable=SC2046
"$cxx" -std=c++17 -O1 "$source/tests/install/consumer/client_main.cc" -o "$work/pc_client" \
  $(pkg-config --cflags --libs tokensampler-client)
"$work/pc_client" "$address"
echo "consumer_test: ok"
