#!/usr/bin/env bash
# 30 inbound connections with one peer ID: 30 `flare listen` processes with
# the same key dial one node. Only max_connections_per_peer (8) get through
# the handshake; the others are closed with "resource limit exceeded".
# The IP limits are raised on the target so that only the per-peer limit
# is under test (all 30 come from 127.0.0.1). Fails without the per-peer
# limit on inbound connections: all 30 are kept.
. "$(dirname "$0")/lib.sh"

start_node "$tmp/target.log" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$(printf 'a1%.0s' $(seq 32))" \
    --max-conns-per-ip 100 --max-conns-per-subnet 100 --max-handshakes-per-ip 100 \
    --max-handshakes-per-subnet 100
seed=$(printf 'c3%.0s' $(seq 32))
for i in $(seq 30); do
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed" --connect "$addr" --json \
        >"$tmp/c$i.log" 2>&1 &
    pids+=($!)
done
peer=$(wait_for "$tmp/c1.log" 'e["event"] == "listening"') && peer=$(field "$peer" peerId)
sleep 6
open=$(count "$tmp/target.log" "e['event'] == 'connected' and e['peerId'] == '$peer'")
closed=$(count "$tmp/target.log" "e['event'] == 'disconnected' and e['peerId'] == '$peer'")
refused=$(count "$tmp/target.log" "e['event'] == 'incoming_failed' and e['error'] == 'resource limit exceeded'")
echo "target: $open connected, $closed disconnected, $refused refused at the handshake"
[ $((open - closed)) -eq 8 ] && ok "exactly 8 connections with one peer ID are kept" ||
    bad "$((open - closed)) connections with one peer ID kept"
[ "$refused" -ge 22 ] && ok "the others are closed with resource limit exceeded" ||
    bad "only $refused closed for the limit"
finish
