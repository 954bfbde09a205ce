#!/usr/bin/env bash
# NAT lab, WebRTC private-to-private (root; skipped with 77 otherwise): A and
# B behind cone (EIM) NATs, 25 ms per router link (~100 ms RTT), a flare
# relay on the public side (QUIC, so it also answers STUN). B reserves; A
# dials RELAY/p2p-circuit/webrtc/p2p/B: the signalling runs over the relayed
# connection, ICE finds the pair through both NATs (server-reflexive
# candidates from the relay's STUN answers), then DTLS and SCTP. DCUtR is
# off on both (--no-holepunch), so the direct connection is WebRTC's. Checks:
# B's `connected` says transport webrtc, A echoes 256 KiB over it (more than
# the relay's 128 KiB per circuit), and prints the time from A's relayed
# connection to its WebRTC connection (docs/benchmarks.md). About 15 s.
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" wr
# shellcheck source=../../lab/lib.sh
source "$root/lab/lib.sh"
flare=$FLARE_BIN
lab_up --a-nat eim --b-nat eim --delay-ms 25 || exit 1

seed_r=$(printf 'a1%.0s' $(seq 32))
seed_b=$(printf 'b2%.0s' $(seq 32))
seed_a=$(printf 'c3%.0s' $(seq 32))
rid=$(lab_json "$("$flare" id --seed "$seed_r" --json)" peerId)
bid=$(lab_json "$("$flare" id --seed "$seed_b" --json)" peerId)
common=(--allow-testnet --no-holepunch --json)
tp=udp/4001/quic-v1
bytes=262144

lab_start relay relay "$flare" relay --listen "/ip4/$FLARE_LAB_IP_relay/$tp" --seed "$seed_r" \
    --allow-testnet --json
lab_wait_event "$LAB_LOGS/relay.log" listening 20 >/dev/null || exit 1
raddr=/ip4/$FLARE_LAB_IP_relay/$tp/p2p/$rid
lab_start b b "$flare" listen --listen "/ip4/0.0.0.0/$tp" --relay "$raddr" --seed "$seed_b" \
    --echo /echo/1.0.0 "${common[@]}"
lab_wait_event "$LAB_LOGS/b.log" reservation 20 >/dev/null || { echo "B got no reservation"; exit 1; }
lab_start a a "$flare" dial "$raddr/p2p-circuit/webrtc/p2p/$bid" --listen "/ip4/0.0.0.0/$tp" \
    --seed "$seed_a" --echo /echo/1.0.0 --echo-bytes $bytes "${common[@]}"
lab_wait_event "$LAB_LOGS/a.log" echo 30 >/dev/null

pass=0 fail=0
check() { # NAME LOG EXPR
    if [ "$(lab_q "$2" "$3")" = True ]; then
        pass=$((pass + 1)); echo "ok   $1"
    else
        fail=$((fail + 1)); echo "FAIL $1"; cut -c1-250 "$2"
    fi
}
check "B: inbound connection over webrtc (through both NATs)" "$LAB_LOGS/b.log" \
    'any(e["transport"] == "webrtc" and e["direction"] == "inbound" for e in ev("connected"))'
check "A: outbound connection over webrtc" "$LAB_LOGS/a.log" \
    'any(e["transport"] == "webrtc" and e["direction"] == "outbound" for e in ev("connected"))'
check "A: $bytes bytes echoed over the WebRTC connection, not the relay" "$LAB_LOGS/a.log" \
    "any(e['ok'] and e['bytes'] == $bytes and not e['relayed'] and '/webrtc/' in e['addr'] for e in ev('echo'))"
check "B sees A at A's NAT's public address" "$LAB_LOGS/b.log" \
    "any(e['transport'] == 'webrtc' and e['addr'].startswith('/ip4/$FLARE_LAB_PUBIP_a/udp/') for e in ev('connected'))"
check "no hole punch ran (the direct connection is WebRTC's)" "$LAB_LOGS/a.log" 'not ev("holepunch")'
lab_q "$LAB_LOGS/a.log" '"relayed -> webrtc: %.0f ms (relayed connection up to the WebRTC connection)" % (1000 * (min(e["ts"] for e in ev("connected") if e["transport"] == "webrtc") - min(e["ts"] for e in ev("connected") if e["transport"] == "circuit")))' 2>/dev/null
lab_stop_all
crashed=$(lab_crashes)
[ -z "$crashed" ] || { echo "FAIL crashed: $crashed"; fail=$((fail + 1)); }
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
