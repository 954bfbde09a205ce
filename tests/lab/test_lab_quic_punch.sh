#!/usr/bin/env bash
# NAT lab, hole punching over QUIC with real flare processes (root; skipped
# with 77 otherwise): relay, A and B listen on /udp/4001/quic-v1 only.
#   cone/cone            -> direct QUIC connection (B sprays UDP, A dials)
#   symmetric/symmetric  -> stays relayed (a circuit over QUIC)
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" q
export QUIET=1 TRANSPORT=quic
pass=0 fail=0
punch "quic cone/cone: direct" direct --a-nat eim --b-nat eim --delay-ms 25
punch "quic symmetric/symmetric: stays relayed" relayed --a-nat sym --b-nat sym --delay-ms 25
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
