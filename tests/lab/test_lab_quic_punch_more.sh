#!/usr/bin/env bash
# NAT lab, more QUIC hole punching with real flare processes (root; skipped
# with 77 otherwise); A and B listen on /udp/4001/quic-v1 only:
#   firewall/cone (A behind a stateful firewall, no NAT) -> direct QUIC
#   cone/cone through a js-libp2p relay (circuit-relay-v2 over QUIC, from
#   tests/interop/js; skipped without npm)                -> direct QUIC
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" qm
export QUIET=1 TRANSPORT=quic
pass=0 fail=0
PUNCH_TIMEOUT=120
punch "quic firewall/cone: direct" direct --a-nat fw --b-nat eim --delay-ms 25
if timeout 600 "$root/scripts/interop-setup.sh" "$(dirname "$FLARE_BIN")" >/dev/null; then
    RELAY_IMPL=js punch "quic cone/cone through a js-libp2p relay: direct" direct \
        --a-nat eim --b-nat eim --delay-ms 25
else
    echo "skip js relay: interop-setup.sh failed (no npm registry?)"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
