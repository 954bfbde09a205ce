#!/usr/bin/env bash
# NAT lab, flare end to end (root; skipped with 77 otherwise):
#   cone/cone        -> direct connection
#   firewall/cone    -> direct connection
#   symmetric/symmetric -> stays relayed, with a reason
#   relay killed mid-punch -> no crash, a clear error, both nodes keep running
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" h
export QUIET=1
sc=$root/lab/scenarios/holepunch.sh
pass=0 fail=0
punch "cone/cone: direct" direct --a-nat eim --b-nat eim --delay-ms 25
punch "firewall/cone: direct" direct --a-nat fw --b-nat eim --delay-ms 25
punch "symmetric/symmetric: stays relayed" relayed --a-nat sym --b-nat sym --delay-ms 25
# Through a js-libp2p relay (skipped when npm is unreachable).
if "$root/scripts/interop-setup.sh" "$(dirname "$FLARE_BIN")" >/dev/null 2>&1; then
    RELAY_IMPL=js punch "cone/cone through a js-libp2p relay: direct" direct \
        --a-nat eim --b-nat eim --delay-ms 25
else
    echo "skip cone/cone through a js relay (no npm registry)"
fi
if KILL_RELAY=1 timeout 240 "$sc" --a-nat eim --b-nat eim --delay-ms 60; then
    pass=$((pass + 1)); echo "ok   relay killed mid-punch: no crash, clear outcome"
else
    fail=$((fail + 1)); echo "FAIL relay killed mid-punch"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
