#!/usr/bin/env bash
# The main job: decentralized NAT hole punching, end to end.
#
# As root (network namespaces available): builds flare (in build-demo/, so
# that build/ keeps its test configuration) and runs the Flare flow in the
# NAT lab with real sockets and nftables NAT: a public relay R behind a
# slower link, a private listener B behind one NAT holding a reservation,
# a private dialer A behind another NAT. A reaches B through the relay,
# DCUtR punches a hole (each step explained as it happens), and A's message
# then goes over the direct connection. Then the same with symmetric NATs on
# both sides, where the punch cannot work and the connection stays relayed.
# The lab lock (/run/lock/flare-lab.lock) keeps it from overlapping another
# lab run; its namespaces have their own prefix.
#
# Without root: the same flow on flare's deterministic simulated network.
# Env: DELAY_MS (per NAT link, default 25), RELAY_DELAY_MS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
delay=${DELAY_MS:-25}
rdelay=${RELAY_DELAY_MS:-60}
scripts/deps.sh
echo "building flare (build-demo/)..."
cmake -S . -B build-demo -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLARE_TESTS=OFF >/dev/null
cmake --build build-demo -j"$(nproc)" --target flare flare-delaylink >/dev/null

lab_ok=0
if [ "$(id -u)" -eq 0 ] && ip netns add "flr-dprobe$$" 2>/dev/null; then
    ip netns del "flr-dprobe$$"
    lab_ok=1
fi

topology() { # A-NAT B-NAT
    cat <<TOPO

                 relay R 203.0.113.10  (public, behind a ${rdelay} ms link)
                            |
          ------------------+------------------   "internet" 203.0.113.0/24
          |                                   |
    NAT-A 198.51.100.2 ($1)          NAT-B 198.51.100.6 ($2)
          |  ${delay} ms                             |  ${delay} ms
    A 10.0.1.2                          B 10.0.2.2
    the dialer: reaches B via R,        the listener: keeps a reservation on R,
    then waits for the punch and        serves /echo/1.0.0, starts DCUtR when
    sends "after-the-punch"             A's relayed connection arrives

TOPO
}

run_lab() { # A-NAT B-NAT EXPECT
    local logs stop rc=0
    logs=$(mktemp -d /tmp/flare-demo.XXXXXX)
    stop=$logs/.stop
    topology "$1" "$2"
    python3 scripts/demo_narrate.py "$logs" "$stop" &
    local narrator=$!
    LAB_LOGS=$logs QUIET=1 EXPECT=$3 lab/scenarios/holepunch.sh --a-nat "$1" --b-nat "$2" \
        --delay-ms "$delay" --relay-delay-ms "$rdelay" >"$logs/summary.txt" 2>&1 || rc=$?
    touch "$stop"
    wait "$narrator" || true
    echo
    grep -v "^lab: logs kept" "$logs/summary.txt" || true
    rm -rf "$logs"
    return $rc
}

if [ $lab_ok -eq 1 ]; then
    export FLARE_BIN=$root/build-demo/flare FLARE_DELAYLINK=$root/build-demo/lab/flare-delaylink
    # Our own namespace prefix (at most 12 characters), and the lab lock.
    export FLARE_LAB_PREFIX="flr-demo$(($$ % 1000))-"
    exec 9>/run/lock/flare-lab.lock
    if ! flock -n 9; then
        echo "another NAT lab run holds /run/lock/flare-lab.lock: waiting for it (up to 15 min)..."
        flock -w 900 9 || { echo "lab lock still busy: try again later"; exit 1; }
    fi
    echo
    echo "=== NAT lab: A and B behind endpoint-independent (cone) NATs"
    run_lab eim eim direct
    echo
    echo "=== NAT lab: both behind symmetric NATs: no direct path, the relay stays"
    echo "    (each attempt waits 5 s for the dials; three attempts)"
    run_lab sym sym relayed
else
    echo
    echo "(not root or no network namespaces: running on the simulated network instead)"
    echo
    build-demo/flare demo --a-nat eim --b-nat eim --delay-ms "$delay" --relay-delay-ms "$rdelay"
    echo
    echo "=== both behind symmetric NATs: no direct path, the relay stays"
    build-demo/flare demo --a-nat sym --b-nat sym --delay-ms "$delay" --relay-delay-ms "$rdelay" || true
fi
