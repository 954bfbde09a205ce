#!/usr/bin/env bash
# The main job: decentralized NAT hole punching, end to end.
#
# As root (network namespaces available): builds flare and runs the Flare
# flow in the NAT lab with real sockets and nftables NAT: a public relay, a
# private listener B behind one NAT holding a reservation, a private dialer A
# behind another NAT; 25 ms per router link. A reaches B through the relay,
# DCUtR punches a hole, and the two end up directly connected. Then the same
# with symmetric NATs on both sides, where the punch cannot work and the
# connection stays relayed.
#
# Without root: the same flow on flare's deterministic simulated network.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
echo "building flare..."
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLARE_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

lab_ok=0
if [ "$(id -u)" -eq 0 ] && ip netns add flr-demo-probe 2>/dev/null; then
    ip netns del flr-demo-probe
    lab_ok=1
fi

if [ $lab_ok -eq 1 ]; then
    export FLARE_BIN=$PWD/build/flare FLARE_DELAYLINK=$PWD/build/lab/flare-delaylink
    echo
    echo "=== NAT lab: A and B behind endpoint-independent NATs (cone), 25 ms per link"
    lab/scenarios/holepunch.sh --a-nat eim --b-nat eim --delay-ms 25
    echo
    echo "=== NAT lab: both behind symmetric NATs: no direct path, the relay stays"
    QUIET=1 EXPECT=relayed lab/scenarios/holepunch.sh --a-nat sym --b-nat sym --delay-ms 25
else
    echo
    echo "(not root or no network namespaces: running on the simulated network instead)"
    echo
    build/flare demo --a-nat eim --b-nat eim --delay-ms 25
    echo
    echo "=== both behind symmetric NATs: no direct path, the relay stays"
    build/flare demo --a-nat sym --b-nat sym --delay-ms 25 | sed -n '/^summary/,$p' || true
fi
