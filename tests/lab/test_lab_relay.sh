#!/usr/bin/env bash
# NAT lab, the relay with limits (root; skipped with 77 otherwise): a flare
# relay on the lab internet serves a flare listener behind a symmetric NAT to
# a flare dialer behind another one and to js peers; data, duration and
# per-IP limits; reservation refresh with a 15 s TTL; relay restart.
# See lab/scenarios/relay.sh (about 1 minute).
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" r
timeout 240 "$root/lab/scenarios/relay.sh" --a-nat sym --b-nat sym --delay-ms 10
