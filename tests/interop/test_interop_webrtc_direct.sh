#!/usr/bin/env bash
# Interop: js-libp2p 3.3.11 + @libp2p/webrtc 6.0.30 (webRTCDirect, in Node
# through node-datachannel) against flare over loopback /webrtc-direct:
#  1. flare listens (echo) on /udp/P/webrtc-direct/certhash/... (P shared
#     with its QUIC listener); js dials it
#     (its ICE agent's STUN check, DTLS as client with the certhash, SCTP,
#     Noise on channel 0): identify, ping, an echo round trip;
#  2. js listens, flare dials its /webrtc-direct/certhash address: connected
#     over webrtc-direct / noise, identify, pings; when flare exits, js sees
#     the connection close within a second (SCTP shutdown, close_notify).
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
webrtc=$(dirname "$peer")/webrtc.mjs

# 1. flare listener, js dialer
# flare's WebRTC-direct listener shares its QUIC listener's port.
port=$((40000 + RANDOM % 20000))
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/udp/$port/quic-v1 \
    --listen /ip4/127.0.0.1/udp/$port/webrtc-direct --echo /echo/1.0.0 --json \
    >"$tmp/f1.out" 2>"$tmp/f1.err" &
fpid=$!
pids+=($fpid)
wait_line "$tmp/f1.out" listening || { echo "flare listener did not start"; cat "$tmp/f1.err"; exit 1; }
sleep 0.3
faddr=$(grep -o '"addr":"[^"]*/webrtc-direct/certhash/[^"]*"' "$tmp/f1.out" | head -1 | cut -d'"' -f4)
[[ $faddr == /ip4/127.0.0.1/udp/$port/webrtc-direct/* ]] || { echo "no shared webrtc-direct address"; cat "$tmp/f1.out" "$tmp/f1.err"; exit 1; }
timeout 40 "$node" "$webrtc" --dial "$faddr" --ping --echo-send /echo/1.0.0 \
    --message "hello over webrtc-direct" --exit-after-ms 30000 >"$tmp/js1.out" 2>"$tmp/js1.err"
echo "{\"event\":\"exit-status\",\"status\":$?}" >>"$tmp/js1.out"
check "js->flare exits 0" "$tmp/js1.out" 'ev("exit-status")[-1]["status"] == 0'
check "js->flare identify: flare protocols and agent" "$tmp/js1.out" \
    'any("/echo/1.0.0" in e["protocols"] and e["agentVersion"].startswith("flare/") for e in ev("identify"))'
check "js->flare ping" "$tmp/js1.out" 'len(ev("ping")) >= 1'
check "js->flare echo" "$tmp/js1.out" 'any(e["message"] == "hello over webrtc-direct" for e in ev("echo-reply"))'
sleep 0.3
check "flare listener: inbound over webrtc-direct / noise" "$tmp/f1.out" \
    'any(e["transport"] == "webrtc-direct" and e["security"] == "noise" and e["direction"] == "inbound" for e in ev("connected"))'

sleep 1
if kill -0 "$fpid" 2>/dev/null; then
    echo '{"event":"alive"}' >>"$tmp/f1.out"
fi
check "flare listener still running after js left" "$tmp/f1.out" 'len(ev("alive")) == 1'
# js stopped its node (SCTP and DTLS closed): flare saw the connection end.
check "flare listener saw js close the connection" "$tmp/f1.out" 'len(ev("disconnected")) >= 1'

# 2. js listener, flare dialer
timeout 60 "$node" "$webrtc" --listen /ip4/127.0.0.1/udp/0/webrtc-direct --echo /echo/1.0.0 \
    --exit-after-ms 50000 >"$tmp/js2.out" 2>"$tmp/js2.err" &
pids+=($!)
wait_line "$tmp/js2.out" listening || { echo "js listener did not start"; cat "$tmp/js2.err"; exit 1; }
jsaddr=$(field "$tmp/js2.out" listening '[a for a in e["addrs"] if "/certhash/" in a][0]')
timeout 30 "$flare" ping "$jsaddr" -c 2 --json >"$tmp/f2.out" 2>"$tmp/f2.err"
left=$(date +%s%3N)
sleep 1.5
check "flare->js connected over webrtc-direct / noise" "$tmp/f2.out" \
    'any(e["transport"] == "webrtc-direct" and e["security"] == "noise" for e in ev("connected"))'
check "flare->js identify: js protocols" "$tmp/f2.out" \
    'any("/echo/1.0.0" in e["protocols"] for e in ev("identify"))'
check "flare->js ping x2" "$tmp/f2.out" 'len(ev("ping")) == 2'
# flare's exit closed the connection (SCTP SHUTDOWN, DTLS close_notify): js
# sees it at once, not after an ICE timeout.
check "js saw flare close the connection within 1 s" "$tmp/js2.out" \
    "any(e['atMs'] - $left < 1000 for e in ev('closed'))"

finish
