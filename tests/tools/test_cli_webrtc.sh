#!/usr/bin/env bash
# WebRTC private-to-private through flare relay on loopback (no root): B
# reserves on a relay whose circuits carry at most 16 KiB; A dials
# RELAY/p2p-circuit/webrtc/p2p/B and echoes 40,000 bytes, which only a
# direct connection carries; both ends report transport webrtc. B with
# --no-webrtc neither announces nor answers it: the dial fails, exit 1.
# Loopback candidates need --allow-private-addrs on both nodes.
source "$(dirname "$0")/lib.sh"

seed_r=$(printf 'a7%.0s' $(seq 32))
seed_b=$(printf 'b7%.0s' $(seq 32))
seed_a=$(printf 'c7%.0s' $(seq 32))
"$flare" relay --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/udp/0/quic-v1 \
    --seed "$seed_r" --json --relay-data 16384 >"$tmp/relay.log" 2>&1 &
pids+=($!)
raddr=$(listening_addr "$tmp/relay.log") || { bad "relay did not start"; finish; }
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$raddr" --seed "$seed_b" --echo /echo/1.0.0 \
    --no-holepunch --allow-private-addrs --json >"$tmp/b.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/b.log" 'e["event"] == "reservation"') || { bad "no reservation"; finish; }
baddr=$(field "$line" addr)
waddr=${baddr/\/p2p-circuit\/p2p\//\/p2p-circuit\/webrtc\/p2p\/}
ok "reserved: dialing $waddr"

head -c 40000 /dev/urandom | base64 -w0 | head -c 40000 >"$tmp/msg"
timeout 20 "$flare" dial "$waddr" --echo /echo/1.0.0 --message-file "$tmp/msg" --seed "$seed_a" \
    --no-holepunch --allow-private-addrs --json >"$tmp/a.log" 2>&1
rc=$?
[ $rc -eq 0 ] && ok "dial exits 0" || bad "dial rc $rc: $(tail -3 "$tmp/a.log")"
wait_for "$tmp/a.log" 'e["event"] == "connected" and e["transport"] == "webrtc" and e["direction"] == "outbound"' \
    10 >/dev/null && ok "dialer: connected over webrtc" || bad "dialer: no webrtc connection"
wait_for "$tmp/a.log" 'e["event"] == "echo" and e["ok"] and e["bytes"] == 40000 and not e["relayed"]' 10 \
    >/dev/null && ok "40000-byte echo over the direct WebRTC connection" || bad "echo: $(grep echo "$tmp/a.log")"
wait_for "$tmp/b.log" 'e["event"] == "connected" and e["transport"] == "webrtc" and e["direction"] == "inbound" and e["security"] == "dtls"' \
    >/dev/null && ok "listener: inbound webrtc connection (dtls)" || bad "listener: no webrtc connection"

# The listener announces RELAYADDR/p2p-circuit/webrtc (A's identify of B).
wait_for "$tmp/a.log" 'e["event"] == "identify" and any("/p2p-circuit/webrtc/p2p/" in a for a in e["listenAddrs"])' 10 \
    >/dev/null && ok "B announces its /p2p-circuit/webrtc address" || bad "no /p2p-circuit/webrtc in B's identify"

# --no-webrtc on the listener: no answer to the signalling, the dial fails.
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$raddr" --seed "$(printf 'd7%.0s' $(seq 32))" \
    --echo /echo/1.0.0 --no-holepunch --no-webrtc --json >"$tmp/d.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/d.log" 'e["event"] == "reservation"') || { bad "no reservation (d)"; finish; }
daddr=$(field "$line" addr)
timeout 20 "$flare" dial "${daddr/\/p2p-circuit\/p2p\//\/p2p-circuit\/webrtc\/p2p\/}" --echo /echo/1.0.0 \
    --message hi --seed "$seed_a" --no-holepunch --allow-private-addrs --json >"$tmp/a2.log" 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q '"where":"dial"' "$tmp/a2.log" && ok "a peer with --no-webrtc: dial fails (exit 1)" ||
    bad "no-webrtc peer: rc $rc $(tail -2 "$tmp/a2.log")"
finish
