#!/bin/sh
# Renders nginx.conf.template for a listen address and a list of tokensampler replicas.
#   render.sh TEMPLATE LISTEN UPSTREAMS [ACCESS_LOG] > nginx.conf
#     LISTEN      e.g. 8080 or 127.0.0.1:8080
#     UPSTREAMS   comma-separated HOST:PORT list, e.g. tokensampler:50051 or 127.0.0.1:5001,127.0.0.1:5002
#     ACCESS_LOG  off (default) or a file name relative to nginx's prefix, e.g. access.log
# POSIX sh + awk, so the same script runs in the nginx image and in the tests.
set -eu
if [ $# -lt 3 ] || [ $# -gt 4 ]; then
  echo "usage: render.sh TEMPLATE LISTEN HOST:PORT[,HOST:PORT...] [ACCESS_LOG]" >&2
  exit 2
fi
template=$1
listen=$2
upstreams=$3
access_log=${4:-off}
case "$access_log" in
  off) ;;
  ''|*[!0-9A-Za-z._/-]*) echo "render.sh: bad access log file '$access_log'" >&2; exit 2 ;;
  *) access_log="$access_log grpc buffer=32k flush=1s" ;;
esac
case "$listen" in
  ''|*[!0-9A-Za-z.:\[\]-]*) echo "render.sh: bad listen address '$listen'" >&2; exit 2 ;;
esac
servers=$(printf '%s\n' "$upstreams" | tr ',' '\n' | awk '
  NF == 0 { next }
  $1 !~ /^[0-9A-Za-z.\[\]:-]+:[0-9]+$/ { printf "render.sh: bad upstream address \"%s\" (want HOST:PORT)\n", $1 > "/dev/stderr"; bad = 1; exit }
  # A replica that failed a call is skipped for fail_timeout before nginx tries it again.
  { printf "%sserver %s max_fails=1 fail_timeout=5s;\n", (n++ ? "    " : ""), $1 }
  END { if (bad) exit 2; if (n == 0) { print "render.sh: no upstream addresses" > "/dev/stderr"; exit 2 } }')
awk -v listen="$listen" -v servers="$servers" -v access_log="$access_log" '
  /^[ \t]*#/ { print; next }
  { gsub(/@LISTEN@/, listen); gsub(/@ACCESS_LOG@/, access_log) }
  /@UPSTREAM_SERVERS@/ { sub(/@UPSTREAM_SERVERS@/, servers) }
  { print }' "$template"
