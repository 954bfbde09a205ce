#!/usr/bin/env bash
# NAT lab, the relay with limits (root; skipped with 77 otherwise): a flare
# relay on the lab internet serves a flare listener behind a symmetric NAT to
# a flare dialer behind another one and to js peers; data, duration and
# per-IP limits; reservation refresh with a 15 s TTL; relay restart.
# See lab/scenarios/relay.sh (about 1 minute).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: the NAT lab needs root"; exit 77; }
ip netns add flr-probe-$$ 2>/dev/null || { echo "skip: no network namespaces"; exit 77; }
ip netns del flr-probe-$$
export FLARE_BIN=${FLARE_BIN:-${FLARE_BINARY_DIR:-$root/build}/flare}
[ -x "$FLARE_BIN" ] || { echo "no flare binary at $FLARE_BIN"; exit 1; }
export FLARE_LAB_PREFIX=flr-r$$-
# One lab at a time (the other lab tests take the same lock).
exec 9>/run/lock/flare-lab.lock
flock -w 600 9 || echo "warning: lab lock busy, running anyway"
timeout 240 "$root/lab/scenarios/relay.sh" --a-nat sym --b-nat sym --delay-ms 10
