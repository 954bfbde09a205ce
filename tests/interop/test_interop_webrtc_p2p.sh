#!/usr/bin/env bash
# Interop: WebRTC private-to-private (/p2p-circuit/webrtc) between flare and
# js-libp2p 3.3.11 + @libp2p/webrtc 6.0.30 (webRTC, in Node through
# node-datachannel), the signalling (/webrtc-signaling/0.0.1) over a Circuit
# Relay v2 connection (TCP, loopback), then ICE, DTLS and SCTP directly:
#  a. js dialer -> flare listener (reserved on a flare relay)
#  b. flare dialer -> js listener (reserved on a flare relay)
#  c. and d. the same through a js relay (circuit-relay-v2 server).
# Each: the connection is WebRTC (js: remote address with /webrtc, not
# limited; flare: `connected` with transport webrtc), identify and ping run
# over it, and an echo of 256 KiB (more than either relay's 128 KiB per
# circuit, and the js echo handler refuses limited connections) comes back
# byte for byte. Exit 0 pass, 1 fail, 77 skip (no npm registry).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
wp=$(dirname "$peer")/webrtc-p2p.mjs
bytes=262144

# A relay of kind $1 (flare|js); sets relay (its address with /p2p/).
start_relay() {
    local out=$tmp/relay-$1.out
    if [ "$1" = flare ]; then
        timeout 90 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 --json >"$out" 2>&1 &
    else
        timeout 90 "$node" "$wp" --listen /ip4/127.0.0.1/tcp/0 --relay >"$out" 2>&1 &
    fi
    pids+=($!)
    wait_line "$out" listening || { echo "$1 relay did not start"; cat "$out"; exit 1; }
    relay=$(field "$out" listening "e.get('addr') or e['addrs'][0]")
}

# a/c. js dialer -> flare listener through relay $1.
js_to_flare() {
    local k=$1 fo=$tmp/fl-$1.out jo=$tmp/jd-$1.out
    timeout 60 "$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --relay "$relay" \
        --echo /echo/1.0.0 --no-holepunch --json >"$fo" 2>&1 &
    local fpid=$!
    pids+=($fpid)
    wait_line "$fo" reservation || { echo "flare did not reserve on the $k relay"; cat "$fo"; return; }
    local id
    id=$(field "$fo" listening "e['peerId']")
    timeout 30 "$node" "$wp" --dial "$relay/p2p-circuit/webrtc/p2p/$id" --ping \
        --echo-send /echo/1.0.0 --bytes $bytes --exit-after-ms 25000 >"$jo" 2>&1
    echo "{\"event\":\"exit-status\",\"status\":$?}" >>"$jo"
    check "$k relay: js -> flare connected over WebRTC (/webrtc, not limited)" "$jo" \
        'ev("exit-status")[-1]["status"] == 0 and any("/p2p-circuit/webrtc/p2p/" in e["remoteAddr"] and not e["limited"] and e["multiplexer"] == "/webrtc" for e in ev("connected"))'
    check "$k relay: js identified flare over the WebRTC connection" "$jo" \
        'any(e["agentVersion"].startswith("flare/") and "/webrtc/" in (e["remoteAddr"] or "") for e in ev("identify"))'
    check "$k relay: js pinged flare" "$jo" 'len(ev("ping")) == 1'
    check "$k relay: js echoed $bytes bytes byte for byte over WebRTC" "$jo" \
        "any(e['ok'] and e['bytes'] == $bytes and '/webrtc/' in e['remoteAddr'] for e in ev('echo-bytes'))"
    sleep 0.3
    check "$k relay: flare listener: inbound connection over webrtc, echo served" "$fo" \
        'any(e["transport"] == "webrtc" and e["direction"] == "inbound" and e["muxer"] == "webrtc" for e in ev("connected")) and len(ev("echo_stream")) >= 1'
    check "$k relay: flare saw js close the WebRTC connection" "$fo" 'len(ev("disconnected")) >= 1'
    kill "$fpid" 2>/dev/null
}

# b/d. flare dialer -> js listener through relay $1.
flare_to_js() {
    local k=$1 jo=$tmp/jl-$1.out fo=$tmp/fd-$1.out po=$tmp/fp-$1.out
    timeout 60 "$node" "$wp" --reserve "$relay" --echo /echo/1.0.0 --exit-after-ms 55000 >"$jo" 2>&1 &
    local jpid=$!
    pids+=($jpid)
    wait_line "$jo" reserved || { echo "js did not reserve on the $k relay"; cat "$jo"; return; }
    local target
    target=$(field "$jo" reserved "[a for a in e['addrs'] if '/p2p-circuit/webrtc/p2p/' in a][0]")
    timeout 30 "$flare" dial "$target" --echo /echo/1.0.0 --echo-bytes $bytes --json >"$fo" 2>&1
    echo "{\"event\":\"exit-status\",\"status\":$?}" >>"$fo"
    check "$k relay: flare -> js connected over webrtc" "$fo" \
        'ev("exit-status")[-1]["status"] == 0 and any(e["transport"] == "webrtc" and e["direction"] == "outbound" for e in ev("connected"))'
    check "$k relay: flare echoed $bytes bytes over the WebRTC connection" "$fo" \
        "any(e['ok'] and e['bytes'] == $bytes and not e['relayed'] and '/webrtc/' in e['addr'] for e in ev('echo'))"
    timeout 30 "$flare" ping "$target" -c 2 --json >"$po" 2>&1
    check "$k relay: flare pinged js twice" "$po" 'len(ev("ping")) == 2'
    sleep 0.3
    check "$k relay: js listener: inbound WebRTC connections (not limited), echo served" "$jo" \
        "sum(1 for e in ev('inbound') if e['remoteAddr'].startswith('/webrtc/') and not e['limited']) >= 2 and any(e['bytes'] == $bytes for e in ev('echo'))"
    check "$k relay: js identified flare over the WebRTC connection" "$jo" \
        'any(e["agentVersion"].startswith("flare/") and (e["remoteAddr"] or "").startswith("/webrtc/") for e in ev("identify"))'
    check "$k relay: js saw flare close the WebRTC connections" "$jo" \
        "sum(1 for e in ev('closed') if e['remoteAddr'].startswith('/webrtc/')) >= 2"
    kill "$jpid" 2>/dev/null
}

for kind in flare js; do
    start_relay $kind
    js_to_flare $kind
    flare_to_js $kind
done

finish
