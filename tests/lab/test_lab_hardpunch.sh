#!/usr/bin/env bash
# NAT lab, the hard-NAT punch with real flare processes (root; skipped with
# 77 otherwise): A behind a cone (nftables masquerade), B behind a symmetric
# NAT (masquerade fully-random: a random port per destination), QUIC only,
# both with --hard-punch and a second observer on pub1.
#   RUNS runs (default 4): at least half must end direct (birthday probing)
#   the same pair without --hard-punch: stays relayed (DCUtR alone cannot)
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" x
export QUIET=1 TRANSPORT=quic
sc=$root/lab/scenarios/holepunch.sh
runs=${RUNS:-4} direct=0 fail=0
for i in $(seq "$runs"); do
    if HARD_PUNCH=1 EXPECT=direct timeout 240 "$sc" --a-nat eim --b-nat sym --delay-ms 25 \
        >"/tmp/flare-lab-hardpunch-$$.$i.log" 2>&1; then
        direct=$((direct + 1))
        echo "ok   run $i: direct ($(grep -o 'relayed->direct: [0-9]* ms' \
            "/tmp/flare-lab-hardpunch-$$.$i.log"))"
    else
        echo "--   run $i: not direct"
        tail -12 "/tmp/flare-lab-hardpunch-$$.$i.log"
    fi
    rm -f "/tmp/flare-lab-hardpunch-$$.$i.log"
done
if [ $((direct * 2)) -ge "$runs" ]; then
    echo "ok   cone/symmetric with --hard-punch: $direct/$runs direct"
else
    fail=$((fail + 1)); echo "FAIL cone/symmetric with --hard-punch: $direct/$runs direct"
fi
if EXPECT=relayed timeout 240 "$sc" --a-nat eim --b-nat sym --delay-ms 25 >/dev/null 2>&1; then
    echo "ok   cone/symmetric without it: stays relayed"
else
    fail=$((fail + 1)); echo "FAIL cone/symmetric without it"
fi
[ $fail -eq 0 ]
