#!/usr/bin/env bash
# Builds deploy/Dockerfile with podman/buildah (runc runtime) and proves the image works:
#   - base images debian:bookworm and debian:bookworm-slim are made locally with debootstrap when no
#     registry is reachable (the tarballs are cached outside the repo, see TOKENSAMPLER_IMAGE_CACHE);
#   - the image config: numeric non-root USER, EXPOSE 50051, HEALTHCHECK, TOKENSAMPLER_ADDRESS env;
#   - both binaries find all their shared libraries in the runtime stage;
#   - the container (read-only root, no capabilities, ulimits nofile=1024 nproc=4096) serves the
#     host's CLI: health, info, sample; the image's HEALTHCHECK passes; the server runs as uid 10001;
#   - SIGTERM with calls in flight: exit code 0 within the drain timeout, `event=stopped` logged;
#   - everything it made (containers, images, storage, configs) is removed on exit.
# Needs root (rootful podman, debootstrap). Installs missing tools with scripts/install-deps.sh --deploy.
#
# Usage: deploy/test-image.sh [--cli PATH]
#   --cli PATH   the host's `tokensampler` CLI (also $TOKENSAMPLER_CLI); default: copied out of the image
# Environment:
#   TOKENSAMPLER_IMAGE_CACHE  where the debootstrap tarballs are cached
#                             (default ${XDG_CACHE_HOME:-$HOME/.cache}/tokensampler)
#   TOKENSAMPLER_BASE_MAX_AGE_DAYS  rebuild cached base tarballs older than this (default 7)
# Exit codes: 0 pass, 1 fail, 77 skipped (not root).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cli=${TOKENSAMPLER_CLI:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --cli) cli=$2; shift 2 ;;
    --cli=*) cli=${1#--cli=}; shift ;;
    *) echo "test-image.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

log() { printf '[test-image %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
fail() { printf '[test-image] FAIL: %s\n' "$*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
  echo "test-image.sh: SKIP: needs root (rootful podman and debootstrap)" >&2
  exit 77
fi

t_start=$(date +%s)
"$root/scripts/install-deps.sh" --deploy

image=localhost/tokensampler:test
drain_seconds=5
work=$(mktemp -d "${TMPDIR:-/tmp}/tokensampler-image.XXXXXX")
container=""

cleanup() {
  local rc=$?
  set +e
  if [ -n "$container" ]; then podman rm -f -t 0 "$container" >/dev/null 2>&1; fi
  # Only ever against this run's own storage (never the machine's default podman storage).
  if [ "${CONTAINERS_STORAGE_CONF:-}" = "$work/storage.conf" ] && [ -f "$work/storage.conf" ]; then
    podman rm -a -f -t 0 >/dev/null 2>&1
    podman rmi -a -f >/dev/null 2>&1
    podman system reset --force >/dev/null 2>&1
  fi
  # Storage mounts (overlay) that are still under the work dir, deepest first.
  awk -v w="$work" '$2 ~ "^" w {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$work"
  log "cleaned up ($work removed)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# podman 4.3 tries to schedule HEALTHCHECKs with systemd timers (there is no systemd here) and
# says so on stderr; the check itself still runs with `podman healthcheck run`.
quiet_podman() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

# ---- podman configuration: runc, explicit ulimits, all state under the work dir -----------------
mkdir -p "$work/storage" "$work/run" "$work/tmp" "$work/cni" "$work/libpod-tmp"
cat >"$work/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
log_driver = "k8s-file"

[network]
network_config_dir = "$work/cni"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$work/events.log"
tmp_dir = "$work/libpod-tmp"
EOF
cat >"$work/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$work/storage"
runroot = "$work/run"
EOF
# No registry is reachable here; short names resolve to the locally imported images only.
cat >"$work/registries.conf" <<EOF
unqualified-search-registries = []
short-name-mode = "permissive"
EOF
export CONTAINERS_CONF="$work/containers.conf"
export CONTAINERS_STORAGE_CONF="$work/storage.conf"
export CONTAINERS_REGISTRIES_CONF="$work/registries.conf"
export TMPDIR="$work/tmp"

# ---- base images ---------------------------------------------------------------------------------
# The Debian mirror the host itself uses: "URI SUITE" pairs from deb822 .sources and one-line lists.
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk '
      function flush(  n, m, i, j, u, s) {
        if (types ~ /(^| )deb( |$)/ && enabled != "no") {
          n = split(uris, u, " "); m = split(suites, s, " ")
          for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print u[i], s[j]
        }
        types = uris = suites = enabled = ""
      }
      /^[ \t]*#/ { next }
      /^[ \t]*$/ { flush(); next }
      tolower($1) == "types:"   { sub(/^[^:]*:[ \t]*/, ""); types = $0; next }
      tolower($1) == "uris:"    { sub(/^[^:]*:[ \t]*/, ""); uris = $0; next }
      tolower($1) == "suites:"  { sub(/^[^:]*:[ \t]*/, ""); suites = $0; next }
      tolower($1) == "enabled:" { enabled = tolower($2); next }
      END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ } print $i, $(i+1) }' "$f"
  done
}
sources=$(apt_sources || true)
mirror=$(awk '$2 == "bookworm" {print $1; exit}' <<<"$sources")
security=$(awk '$2 == "bookworm-security" {print $1; exit}' <<<"$sources")
if [ -z "$mirror" ]; then
  mirror=$(awk '$1 ~ /\/debian\/?$/ {print $1; exit}' <<<"$sources")
fi
if [ -z "$mirror" ]; then
  mirror=http://deb.debian.org/debian
  log "no Debian mirror found in /etc/apt; using $mirror"
fi
mirror=${mirror%/}
security=${security%/}
log "Debian mirror: $mirror${security:+ (security: $security)}"

arch=$(dpkg --print-architecture)
cache=${TOKENSAMPLER_IMAGE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tokensampler}
base_recipe=2 # bump when the rootfs recipe below changes, so cached tarballs are rebuilt
key=$(printf '%s %s %s' "$base_recipe" "$mirror" "$security" | md5sum | cut -c1-8)
full_tar=$cache/debian-bookworm-minbase-$arch-$key.tar
slim_tar=$cache/debian-bookworm-slim-$arch-$key.tar
max_age=${TOKENSAMPLER_BASE_MAX_AGE_DAYS:-7}
mkdir -p "$cache"

fresh() { [ -s "$1" ] && [ -n "$(find "$1" -mtime "-$max_age" 2>/dev/null)" ]; }

if fresh "$full_tar" && fresh "$slim_tar"; then
  log "base tarballs from cache: $full_tar, $slim_tar"
else
  t0=$(date +%s)
  rootfs=$work/rootfs
  log "debootstrap --variant=minbase bookworm from $mirror"
  ok=""
  for attempt in 1 2; do # one retry for a mirror hiccup
    if debootstrap --variant=minbase --arch="$arch" bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1; then
      ok=1; break
    fi
    log "debootstrap attempt $attempt failed: $(tail -n 1 "$work/debootstrap.log")"
    rm -rf "$rootfs"
  done
  [ -n "$ok" ] || { tail -n 30 "$work/debootstrap.log" >&2; fail "debootstrap failed (log above)"; }
  {
    echo "deb $mirror bookworm main"
    echo "deb $mirror bookworm-updates main"
    if [ -n "$security" ]; then echo "deb $security bookworm-security main"; fi
  } >"$rootfs/etc/apt/sources.list"
  # Like the official images: no package lists, binary caches or downloaded .debs kept in a
  # layer, no recommends by default.
  cat >"$rootfs/etc/apt/apt.conf.d/90container" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
EOF
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb \
    "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
  tar --numeric-owner -C "$rootfs" -cf "$full_tar.partial.$$" . && mv "$full_tar.partial.$$" "$full_tar"
  # The -slim variant: no documentation, manual pages or translations (now or in later installs).
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/90container-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
EOF
  find "$rootfs/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete 2>/dev/null || true
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
  rm -rf "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/groff/* \
    "$rootfs"/usr/share/lintian/* "$rootfs"/usr/share/locale/*
  tar --numeric-owner -C "$rootfs" -cf "$slim_tar.partial.$$" . && mv "$slim_tar.partial.$$" "$slim_tar"
  rm -rf "$rootfs"
  log "base tarballs built in $(($(date +%s) - t0)) s"
fi

base_changes=(--change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
              --change 'CMD ["bash"]')
podman import --quiet "${base_changes[@]}" "$full_tar" localhost/debian:bookworm >/dev/null
podman import --quiet "${base_changes[@]}" "$slim_tar" localhost/debian:bookworm-slim >/dev/null
log "imported localhost/debian:bookworm and localhost/debian:bookworm-slim"

# ---- build the image from deploy/Dockerfile ------------------------------------------------------
t0=$(date +%s)
log "podman build -f deploy/Dockerfile (context $root)"
podman build --format docker --pull=never --network host -f "$root/deploy/Dockerfile" -t "$image" "$root" \
  >"$work/build.log" 2>&1 || { tail -n 60 "$work/build.log" >&2; fail "podman build failed (log above)"; }
build_seconds=$(($(date +%s) - t0))
size_bytes=$(podman image inspect --format '{{.Size}}' "$image")
log "image built in ${build_seconds} s, size $((size_bytes / 1000000)) MB ($size_bytes bytes)"

# ---- image configuration --------------------------------------------------------------------------
cfg() { podman image inspect --format "$1" "$image"; }
[ "$(cfg '{{.Config.User}}')" = "10001:10001" ] || fail "USER is '$(cfg '{{.Config.User}}')', want 10001:10001"
cfg '{{json .Config.ExposedPorts}}' | grep -q '"50051/tcp"' || fail "EXPOSE 50051 missing"
cfg '{{json .Config.Env}}' | grep -q 'TOKENSAMPLER_ADDRESS=0.0.0.0:50051' || fail "TOKENSAMPLER_ADDRESS env missing"
cfg '{{json .Config.Entrypoint}}' | grep -q 'tokensampler-server' || fail "ENTRYPOINT is not the server"
cfg '{{json .Config.Healthcheck}}' | grep -q 'tokensampler health' || fail "HEALTHCHECK with 'tokensampler health' missing"
log "image config: user 10001:10001, EXPOSE 50051, TOKENSAMPLER_ADDRESS env, server entrypoint, health check"

# Every shared library of both binaries is in the runtime stage.
ldd_out=$(quiet_podman run --rm --network none --entrypoint /bin/sh "$image" -c \
  'ldd /usr/local/bin/tokensampler-server /usr/local/bin/tokensampler')
if grep -q 'not found' <<<"$ldd_out"; then
  grep 'not found' <<<"$ldd_out" >&2
  fail "missing shared libraries in the runtime image"
fi
log "ldd: all shared libraries present"

# The host CLI: given, or copied out of the image (the host is Debian 12 with the same libraries).
if [ -z "$cli" ]; then
  cid=$(podman create "$image")
  podman cp "$cid:/usr/local/bin/tokensampler" "$work/tokensampler"
  podman rm "$cid" >/dev/null
  cli=$work/tokensampler
  log "using the CLI copied out of the image"
fi
[ -x "$cli" ] || fail "CLI '$cli' is not executable"

# ---- run it ---------------------------------------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
server=127.0.0.1:$port
container=tokensampler-test-$$
# Host networking: the port is on the host's loopback only. Hardened like the Kubernetes manifests.
quiet_podman run -d --name "$container" --network host --read-only --cap-drop ALL \
  --security-opt no-new-privileges \
  -e TOKENSAMPLER_ADDRESS="$server" -e TOKENSAMPLER_DRAIN_TIMEOUT="${drain_seconds}s" \
  "$image" --workers=2 >/dev/null || fail "podman run of the image failed"
for _ in $(seq 1 150); do
  if podman logs "$container" 2>&1 | grep -q 'event=listening'; then break; fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$container")" != "true" ]; then
    podman logs "$container" >&2 || true
    fail "container exited before listening"
  fi
  sleep 0.2
done
podman logs "$container" 2>&1 | grep 'event=listening' || fail "no event=listening in the container log"

"$cli" health --server="$server" || fail "tokensampler health against the container failed"
"$cli" info --server="$server" --json >"$work/info.json" || fail "tokensampler info failed"
log "info: $(tr -d '\n' <"$work/info.json" | cut -c1-300)"
"$cli" sample --server="$server" --random-vocab=32000 --seed=7 --json >"$work/sample.json" ||
  fail "tokensampler sample against the container failed"
grep -q '"token_id"' "$work/sample.json" || fail "sample output has no token_id: $(cat "$work/sample.json")"
log "sample: $(tr -d '\n' <"$work/sample.json" | cut -c1-200)"

# The image's own HEALTHCHECK, run by podman inside the container.
podman healthcheck run "$container" || fail "the image HEALTHCHECK did not pass"
log "HEALTHCHECK passed"

# Non-root: the uid inside and the uid of the server process as the host kernel sees it.
uid_inside=$(podman exec "$container" id -u)
[ "$uid_inside" = "10001" ] || fail "uid inside the container is $uid_inside, want 10001"
pid=$(podman inspect --format '{{.State.Pid}}' "$container")
host_uids=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$pid/status")
[ "$host_uids" = "10001 10001 10001 10001" ] || fail "server process uids are '$host_uids', want 10001"
limits="$(awk '/^Max open files/ {print $4 ":" $5}' "/proc/$pid/limits") $(awk '/^Max processes/ {print $3 ":" $4}' "/proc/$pid/limits")"
[ "$limits" = "1024:1024 4096:4096" ] || fail "server ulimits nofile/nproc are '$limits', want '1024:1024 4096:4096'"
if podman exec "$container" /bin/sh -c 'touch /probe' 2>/dev/null; then fail "root filesystem is writable"; fi
log "runs as uid 10001 (server pid $pid on the host), ulimits nofile=1024 nproc=4096, read-only root"

# ---- the compose file's nginx image (deploy/nginx) in front of the container ------------------
t0=$(date +%s)
nginx_image=localhost/tokensampler-nginx:test
podman build --format docker --pull=never --network host -t "$nginx_image" "$root/deploy/nginx" \
  >"$work/build-nginx.log" 2>&1 || { tail -n 30 "$work/build-nginx.log" >&2; fail "building deploy/nginx failed"; }
nginx_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
nginx_container=tokensampler-nginx-test-$$
# As in compose.yaml: read-only root with a tmpfs for nginx's prefix, no capabilities. (podman 4.3
# ignores mode= on a tmpfs; U gives it to the container's user, which Docker's mode=1777 allows.)
podman run -d --name "$nginx_container" --network host --read-only --cap-drop ALL \
  --security-opt no-new-privileges --tmpfs /run/tokensampler-nginx:rw,U \
  -e NGINX_LISTEN="127.0.0.1:$nginx_port" -e TOKENSAMPLER_UPSTREAMS="$server" "$nginx_image" >/dev/null ||
  fail "podman run of the nginx image failed"
ok=""
for _ in $(seq 1 50); do
  if "$cli" health --server="127.0.0.1:$nginx_port" --timeout=1s >/dev/null 2>&1; then ok=1; break; fi
  sleep 0.2
done
[ -n "$ok" ] || { podman logs "$nginx_container" >&2 || true; fail "health through the nginx container failed"; }
"$cli" sample --server="127.0.0.1:$nginx_port" --random-vocab=32000 --seed=7 --json >"$work/sample-nginx.json" ||
  fail "sample through the nginx container failed"
cmp -s "$work/sample.json" "$work/sample-nginx.json" || fail "sample through nginx differs from the direct one"
nginx_size=$(podman image inspect --format '{{.Size}}' "$nginx_image")
podman rm -f -t 5 "$nginx_container" >/dev/null
log "nginx image (deploy/nginx, $((nginx_size / 1000000)) MB, built in $(($(date +%s) - t0)) s): health + sample through it OK"

# ---- SIGTERM with calls in flight: clean exit within the drain timeout --------------------------
"$cli" bench --server="$server" --concurrency=2 --duration=5s --warmup=0s --vocab=32000 --json \
  >"$work/bench.json" 2>"$work/bench.err" &
bench_pid=$!
sleep 2
t0=$(date +%s%N)
podman kill --signal TERM "$container" >/dev/null
exit_code=$(timeout $((drain_seconds + 20)) podman wait "$container") || fail "container did not stop after SIGTERM"
stop_ms=$((($(date +%s%N) - t0) / 1000000))
wait "$bench_pid" || true
podman logs "$container" >"$work/container.log" 2>&1 || true
[ "$exit_code" = "0" ] || { tail -n 20 "$work/container.log" >&2; fail "exit code after SIGTERM is $exit_code, want 0"; }
grep -q 'event=stopped' "$work/container.log" || fail "no event=stopped in the log after SIGTERM"
[ "$stop_ms" -le $(((drain_seconds + 2) * 1000)) ] ||
  fail "stop took ${stop_ms} ms, more than the ${drain_seconds}s drain timeout (+2 s slack)"
log "SIGTERM: exit code 0 after ${stop_ms} ms (drain timeout ${drain_seconds}s); bench during stop: $(tr -d '\n' <"$work/bench.json" | cut -c1-200)"
quiet_podman rm "$container" >/dev/null
container=""

total=$(($(date +%s) - t_start))
echo "IMAGE_SIZE_BYTES=$size_bytes"
echo "IMAGE_SIZE_MB=$((size_bytes / 1000000))"
echo "IMAGE_BUILD_SECONDS=$build_seconds"
echo "NGINX_IMAGE_SIZE_MB=$((nginx_size / 1000000))"
echo "TEST_IMAGE_SECONDS=$total"
log "PASS (total ${total} s)"
