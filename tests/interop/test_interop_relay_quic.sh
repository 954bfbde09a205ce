#!/usr/bin/env bash
# Interop, Circuit Relay v2 reached over QUIC (loopback), both mixes:
#  1. flare relay (QUIC only); a js node reserves on it over QUIC; a js
#     dialer (over QUIC to the relay) pings and echoes through the circuit,
#     and a flare dialer echoes through it.
#  2. js relay (js-libp2p circuit-relay-v2 server, QUIC only); a flare node
#     reserves on it over QUIC; a flare dialer echoes through it over QUIC.
# Relayed connections are Noise + yamux over the circuit; the carrier (the
# connection to the relay) is QUIC. Exit 0 pass, 1 fail, 77 skip (no npm
# registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
qr=$(dirname "$peer")/quic-relay.mjs

# 1. flare relay, js listener (reservation), js and flare dialers
timeout 60 "$flare" relay --listen /ip4/127.0.0.1/udp/0/quic-v1 --json >"$tmp/fr.out" 2>&1 &
pids+=($!)
wait_line "$tmp/fr.out" listening || { echo "flare relay did not start"; exit 1; }
fr=$(field "$tmp/fr.out" listening "e['addr']")
timeout 60 "$node" "$qr" --reserve "$fr" --echo /echo/1.0.0 --exit-after-ms 50000 \
    >"$tmp/jb.out" 2>"$tmp/jb.err" &
pids+=($!)
wait_line "$tmp/jb.out" reserved
check "js reserved on the flare relay over QUIC" "$tmp/jb.out" \
    'any("/quic-v1/p2p/" in a and "/p2p-circuit/p2p/" in a for e in ev("reserved") for a in e["addrs"])'
jbr=$(field "$tmp/jb.out" reserved "[a for a in e['addrs'] if '/quic-v1/' in a][0]")
timeout 30 "$node" "$qr" --dial "$jbr" --ping --echo-send /echo/1.0.0 --message "js via flare over quic" \
    --exit-after-ms 25000 >"$tmp/ja.out" 2>"$tmp/ja.err"
check "js -> flare relay (QUIC) -> js: limited connection, ping, echo" "$tmp/ja.out" \
    'any(e["limited"] for e in ev("connected")) and len(ev("ping")) >= 1 and any(e["message"] == "js via flare over quic" for e in ev("echo-reply"))'
timeout 20 "$flare" dial "$jbr" --echo /echo/1.0.0 --message "flare via flare over quic to js" --json \
    >"$tmp/fa.out" 2>&1
check "flare -> flare relay (QUIC) -> js: echo" "$tmp/fa.out" \
    'any(e["reply"] == "flare via flare over quic to js" and e["ok"] for e in ev("echo"))'
check "flare dialer reached the relay over quic-v1" "$tmp/fa.out" \
    'any(e["transport"] == "quic-v1" and "/udp/" in e["addr"] for e in ev("connected"))'
sleep 0.5
# (js may open a circuit more than once for one dial: count the dialers.)
check "the flare relay saw the reservation and circuits from both dialers, all over QUIC" "$tmp/fr.out" \
    'len(ev("relay_reservation")) >= 1 and len({e["src"] for e in ev("relay_circuit_opened")}) == 2 and all(e["transport"] == "quic-v1" for e in ev("connected"))'

# 2. js relay over QUIC, flare listener (reservation) and flare dialer
timeout 60 "$node" "$qr" --listen /ip4/127.0.0.1/udp/0/quic-v1 --relay --exit-after-ms 55000 \
    >"$tmp/jsrelay.out" 2>"$tmp/jsrelay.err" &
pids+=($!)
wait_line "$tmp/jsrelay.out" listening || { echo "js relay did not start"; cat "$tmp/jsrelay.err"; exit 1; }
jr=$(field "$tmp/jsrelay.out" listening "e['addrs'][0]")
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --relay "$jr" --echo /echo/1.0.0 \
    --no-holepunch --json >"$tmp/fb.out" 2>&1 &
pids+=($!)
wait_line "$tmp/fb.out" reservation
check "flare reserved on the js relay over QUIC" "$tmp/fb.out" \
    'any("/quic-v1/p2p/" in e["addr"] and "/p2p-circuit/p2p/" in e["addr"] for e in ev("reservation"))'
fbr=$(field "$tmp/fb.out" reservation "e['addr']")
timeout 20 "$flare" dial "$fbr" --echo /echo/1.0.0 --message "flare via js relay over quic" \
    --no-holepunch --json >"$tmp/fa2.out" 2>&1
check "flare -> js relay (QUIC) -> flare: echo" "$tmp/fa2.out" \
    'any(e["reply"] == "flare via js relay over quic" and e["ok"] for e in ev("echo"))'
check "flare dialer reached the js relay over quic-v1" "$tmp/fa2.out" \
    'any(e["transport"] == "quic-v1" and "/udp/" in e["addr"] for e in ev("connected"))'
check "js relay: inbound QUIC connections from both flare nodes" "$tmp/jsrelay.out" \
    'len([e for e in ev("inbound") if e["multiplexer"] == "quic"]) >= 2'
finish
