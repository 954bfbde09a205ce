#!/usr/bin/env bash
# NAT lab, Kademlia (root; skipped with 77 otherwise): a private flare node
# behind an EIM NAT with --auto-relay and only a bootstrap peer finds a
# relay through the DHT and reserves; another private node dials it by peer
# ID alone (--bootstrap), reaches it through the relay and hole punches.
# See lab/scenarios/dht.sh (about 20 s).
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" kd
timeout 150 "$root/lab/scenarios/dht.sh" --a-nat eim --b-nat eim --delay-ms 10
