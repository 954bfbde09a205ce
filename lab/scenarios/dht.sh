#!/usr/bin/env bash
# Scenario: relays and peers found through the Kademlia DHT, no relay and no
# address configured anywhere but the bootstrap peers.
#   relay: R = flare relay --dht-mode server (a relay, also the DHT's first node)
#   pub1:  S1 = flare listen --dht-mode server --bootstrap R (no relay)
#   pub2:  S2 = flare relay --dht-mode server --bootstrap S1 (a relay)
#   b:     B = flare listen --auto-relay --bootstrap S1 (private: finds a relay
#          through the DHT and reserves)
#   a:     A = flare dial B_PEER_ID --bootstrap S1 --wait-holepunch (finds B's
#          relayed address by its ID, dials through the relay, hole punches)
# Steps: (a) B learns it is private and reserves on a relay it met through
# the DHT; (b) A finds B by peer ID, its addresses include a relayed one;
# (c) A reaches B and the hole punch gives a direct connection, echo over it.
# Usage: dht.sh [lab.sh up options] (default: --a-nat eim --b-nat eim --delay-ms 10).
# Env: FLARE_BIN (default build/flare). Exit 0 when every step passed.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
[ $# -gt 0 ] || set -- --a-nat eim --b-nat eim --delay-ms 10
lab_up "$@" || exit $?

seed() { printf "$1%.0s" $(seq 32); }
pid_of() { lab_json "$("$flare" id --seed "$1" --json)" peerId; }
common=(--allow-testnet --json)
L=$LAB_LOGS
declare -A SEED=([r]=$(seed 21) [s1]=$(seed 22) [s2]=$(seed 23) [b]=$(seed 24) [a]=$(seed 25))
declare -A ID=()
for n in r s1 s2 b a; do ID[$n]=$(pid_of "${SEED[$n]}"); done
R=/ip4/$FLARE_LAB_IP_relay/tcp/4001/p2p/${ID[r]}
S1=/ip4/$FLARE_LAB_IP_pub1/tcp/4001/p2p/${ID[s1]}

lab_start relay r "$flare" relay --listen "/ip4/$FLARE_LAB_IP_relay/tcp/4001" --dht-mode server \
    --seed "${SEED[r]}" "${common[@]}"
lab_wait_event "$L/r.log" listening 20 >/dev/null || { echo "R did not start"; exit 1; }
lab_start pub1 s1 "$flare" listen --listen "/ip4/$FLARE_LAB_IP_pub1/tcp/4001" --dht-mode server \
    --bootstrap "$R" --seed "${SEED[s1]}" "${common[@]}"
lab_wait_event "$L/s1.log" listening 20 >/dev/null || { echo "S1 did not start"; exit 1; }
lab_start pub2 s2 "$flare" relay --listen "/ip4/$FLARE_LAB_IP_pub2/tcp/4001" --dht-mode server \
    --bootstrap "$S1" --seed "${SEED[s2]}" "${common[@]}"
lab_wait_q 20 "$L/s1.log" 'len([e for e in ev("dht") if e["reason"] == "ready"]) > 0' ||
    { echo "S1 did not join the DHT"; exit 1; }

# (a) B: private, finds a relay through the DHT (it knows only S1, no relay).
t0=$(date +%s.%N)
lab_start b b "$flare" listen --listen /ip4/0.0.0.0/tcp/4001 --auto-relay --autonat-boot-delay 2000 \
    --bootstrap "$S1" --seed "${SEED[b]}" --echo /echo/1.0.0 "${common[@]}"
if lab_wait_q 60 "$L/b.log" 'any(e["state"] == "private" for e in ev("reachability")) and
        len(ev("reservation")) > 0'; then
    relay=$(lab_q "$L/b.log" 'ev("reservation")[0]["relay"]')
    t=$(lab_q "$L/b.log" "'%.1f' % (ev('reservation')[0]['ts'] - $t0)")
    who=$([ "$relay" = "${ID[r]}" ] && echo R || ([ "$relay" = "${ID[s2]}" ] && echo S2 || echo "?"))
    lab_result "(a) B private, reserves on a relay found through the DHT" ok "on $who after ${t} s"
else
    lab_result "(a) B private, reserves on a relay found through the DHT" FAIL "see $L/b.log"
fi
sleep 3 # B's self lookup tells the servers near its ID its relayed address

# (b) + (c): A dials B by peer ID.
lab_start a a "$flare" dial "${ID[b]}" --bootstrap "$S1" --listen /ip4/0.0.0.0/tcp/4001 \
    --seed "${SEED[a]}" --wait-holepunch 30 --echo /echo/1.0.0 --message found-by-id "${common[@]}"
if lab_wait_q 30 "$L/a.log" 'any(e["peerId"] == "'"${ID[b]}"'" and
        any("/p2p-circuit" in x for x in e["addrs"]) for e in ev("peer"))'; then
    lab_result "(b) A finds B by peer ID, relayed address included" ok \
        "$(lab_q "$L/a.log" 'len(ev("peer")[0]["addrs"])') addresses"
else
    lab_result "(b) A finds B by peer ID, relayed address included" FAIL "see $L/a.log"
fi
if lab_wait_q 45 "$L/a.log" 'any(e["ok"] for e in ev("echo"))'; then
    # B (DCUtR's initiator) reports the punch; A's echo went over the
    # direct connection, before A's wait for the punch ran out.
    direct=$(lab_q "$L/a.log" 'ev("echo")[-1]["relayed"] is False and
        not any(e.get("where") == "holepunch" for e in ev("error"))')
    hb=$(lab_q "$L/b.log" 'any(e["result"] == "direct" for e in ev("holepunch"))')
    if [ "$direct" = True ] && [ "$hb" = True ]; then
        lab_result "(c) hole punch: direct connection, echo over it" ok \
            "$(lab_q "$L/a.log" 'ev("echo")[-1]["addr"]')"
    else
        lab_result "(c) hole punch: direct connection, echo over it" FAIL \
            "echo direct and in time: $direct, B punched: $hb, see $L/a.log"
    fi
else
    lab_result "(c) hole punch: direct connection, echo over it" FAIL "no echo, see $L/a.log"
fi

lab_stop_all
if grep -qiE "sanitizer|segmentation|abort" "$L"/*.err; then
    lab_result "no crash (stderr of every node)" FAIL "$(grep -liE 'sanitizer|segmentation|abort' "$L"/*.err)"
fi
echo "dht scenario ($*):"
printf '  %s\n' "${LAB_ROWS[@]}"
echo "  $LAB_FAILS failed"
[ "$LAB_FAILS" -eq 0 ]
