#!/usr/bin/env bash
# Interop, Circuit Relay v2 over loopback, every mix of flare and js:
#  1. js relay; flare listener reserves on it; flare dialer echoes through it.
#  2. flare relay; js listener reserves on it; a js dialer pings and echoes
#     through it, and a flare dialer echoes through it.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# 1. js relay, flare listener (reservation), flare dialer
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --relay --exit-after-ms 55000 \
    >"$tmp/jsrelay.out" 2>&1 &
pids+=($!)
wait_line "$tmp/jsrelay.out" listening || { echo "js relay did not start"; exit 1; }
jr=$(field "$tmp/jsrelay.out" listening "e['addrs'][0]")
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$jr" --echo /echo/1.0.0 --json \
    >"$tmp/fb.out" 2>&1 &
pids+=($!)
wait_line "$tmp/fb.out" reservation
check "flare reserved on the js relay" "$tmp/fb.out" \
    'any("/p2p-circuit/p2p/" in e["addr"] for e in ev("reservation"))'
fbr=$(field "$tmp/fb.out" reservation "e['addr']")
timeout 20 "$flare" dial "$fbr" --echo /echo/1.0.0 --message "flare via js relay" --json \
    >"$tmp/fa.out" 2>&1
check "flare -> js relay -> flare: limited connection, echo" "$tmp/fa.out" \
    'any(e["reply"] == "flare via js relay" and e["ok"] for e in ev("echo"))'

# 2. flare relay, js listener (reservation), js and flare dialers
timeout 60 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 --json >"$tmp/fr.out" 2>&1 &
pids+=($!)
wait_line "$tmp/fr.out" listening || { echo "flare relay did not start"; exit 1; }
fr=$(field "$tmp/fr.out" listening "e['addr']")
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --reserve "$fr" --echo /echo/1.0.0 \
    --exit-after-ms 50000 >"$tmp/jb.out" 2>&1 &
pids+=($!)
wait_line "$tmp/jb.out" reserved
check "js reserved on the flare relay" "$tmp/jb.out" \
    'any("/p2p-circuit/p2p/" in a for e in ev("reserved") for a in e["addrs"])'
jbr=$(field "$tmp/jb.out" reserved "e['addrs'][0]")
timeout 30 "$node" "$peer" --dial "$jbr" --ping --echo-send /echo/1.0.0 --message "js via flare" \
    >"$tmp/ja.out" 2>&1
check "js -> flare relay -> js: ping and echo" "$tmp/ja.out" \
    'len(ev("ping")) >= 1 and any(e["message"] == "js via flare" for e in ev("echo-reply"))'
timeout 20 "$flare" dial "$jbr" --echo /echo/1.0.0 --message "flare via flare to js" --json \
    >"$tmp/fa2.out" 2>&1
check "flare -> flare relay -> js: echo" "$tmp/fa2.out" \
    'any(e["reply"] == "flare via flare to js" and e["ok"] for e in ev("echo"))'
sleep 0.5
check "the flare relay saw the reservation and two circuits" "$tmp/fr.out" \
    'len(ev("relay_reservation")) >= 1 and len(ev("relay_circuit_opened")) == 2'
finish
