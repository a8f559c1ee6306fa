#!/usr/bin/env bash
# Waits up to 10 s for tokensampler-server's `event=listening` line in LOG and prints the
# first address it names (the bound port when started with --address=HOST:0).
#   listening-address.sh LOG
# Exits 1 with LOG on stderr when the line does not come.
set -euo pipefail
log=${1:?usage: listening-address.sh LOG}
for _ in $(seq 100); do
  address=$(sed -n 's/.*event=listening address=\([^ ,]*\).*/\1/p' "$log" | head -n 1)
  if [ -n "$address" ]; then echo "$address"; exit 0; fi
  sleep 0.1
done
echo "no event=listening line in $log:" >&2
cat "$log" >&2
exit 1
