#!/usr/bin/env bash
# NAT lab, AutoRelay (root; skipped with 77 otherwise): a flare node behind an
# EIM NAT, connected to three flare relays, a plain node and a full relay,
# learns it is private, reserves on exactly 2 relays, replaces a stopped one
# with the third, and backs off from the relay that refuses; a flare dialer
# behind a symmetric NAT reaches it through each relayed address.
# See lab/scenarios/autorelay.sh (about 20 s).
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" ar
timeout 120 "$root/lab/scenarios/autorelay.sh" --a-nat sym --b-nat eim --b-inbound reset --delay-ms 10
