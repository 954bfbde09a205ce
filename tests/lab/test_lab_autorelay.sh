#!/usr/bin/env bash
# NAT lab, AutoRelay (root; skipped with 77 otherwise): a flare node behind an
# EIM NAT, connected to three flare relays, a plain node and a full relay,
# learns it is private, reserves on exactly 2 relays, replaces a stopped one
# with the third, and backs off from the relay that refuses; a flare dialer
# behind a symmetric NAT reaches it through each relayed address.
# See lab/scenarios/autorelay.sh (about 20 s).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: the NAT lab needs root"; exit 77; }
ip netns add flr-probe-$$ 2>/dev/null || { echo "skip: no network namespaces"; exit 77; }
ip netns del flr-probe-$$
export FLARE_BIN=${FLARE_BIN:-${FLARE_BINARY_DIR:-$root/build}/flare}
[ -x "$FLARE_BIN" ] || { echo "no flare binary at $FLARE_BIN"; exit 1; }
export FLARE_LAB_PREFIX="flr-ar$(($$ % 100000))-" # at most 12 characters
# One lab at a time (the other lab tests take the same lock).
exec 9>/run/lock/flare-lab.lock
flock -w 600 9 || echo "warning: lab lock busy, running anyway"
timeout 120 "$root/lab/scenarios/autorelay.sh" --a-nat sym --b-nat eim --b-inbound reset --delay-ms 10
