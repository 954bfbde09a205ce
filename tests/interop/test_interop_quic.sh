#!/usr/bin/env bash
# Interop: flare <-> js-libp2p 3.3.11 + @chainsafe/libp2p-quic 2.1.1 over
# loopback QUIC v1 (TLS 1.3 with libp2p certificates, QUIC streams; no Noise,
# no yamux), both ways:
#  1. js listens (echo), flare dials: connected over quic-v1/tls, identify
#     both ways (js's record verified), an observed QUIC address, two pings;
#  2. flare listens (echo), js dials: identify, ping, an echo round trip.
# Not asserted: flare dialing js's echo handler (`flare dial --echo` sends and
# half-closes at once). js-libp2p's QUIC stream (libp2p-quic 2.1.1) then often
# misses the FIN: its debug log shows the remote end closed while the stream
# was being unwrapped after negotiation, and the handler's read never ends.
# flare's FIN is on the wire (ngtcp2 log: STREAM fin=1); js's own echo client
# below half-closes after the reply for the same reason.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
quic=$(dirname "$peer")/quic.mjs

# 1. js listener, flare dialer
timeout 60 "$node" "$quic" --listen /ip4/127.0.0.1/udp/0/quic-v1 --echo /echo/1.0.0 \
    --exit-after-ms 50000 >"$tmp/js1.out" 2>"$tmp/js1.err" &
pids+=($!)
wait_line "$tmp/js1.out" listening || { echo "js listener did not start"; cat "$tmp/js1.err"; exit 1; }
jsaddr=$(field "$tmp/js1.out" listening 'e["addrs"][0]')
timeout 20 "$flare" ping "$jsaddr" -c 2 --json >"$tmp/f1.out" 2>"$tmp/f1.err"
check "flare->js connected over quic-v1 / tls" "$tmp/f1.out" \
    'any(e["transport"] == "quic-v1" and e["security"] == "tls" and e["muxer"] == "quic" for e in ev("connected"))'
check "flare->js identify: js protocols, QUIC listen addr, verified record" "$tmp/f1.out" \
    'any("/echo/1.0.0" in e["protocols"] and any("/quic-v1" in a for a in e["listenAddrs"]) and e["signedRecord"] == "verified" for e in ev("identify"))'
check "flare->js observed QUIC address" "$tmp/f1.out" \
    'any(e["addr"].startswith("/ip4/127.0.0.1/udp/") and e["addr"].endswith("/quic-v1") for e in ev("observed_addr"))'
check "flare->js ping x2" "$tmp/f1.out" 'len(ev("ping")) == 2'
check "js saw flare inbound over QUIC and its identify" "$tmp/js1.out" \
    'any(e["multiplexer"] == "quic" for e in ev("inbound")) and any(e["agentVersion"].startswith("flare/") for e in ev("identify"))'

# 2. flare listener, js dialer
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --echo /echo/1.0.0 --json \
    >"$tmp/f2.out" 2>"$tmp/f2.err" &
pids+=($!)
wait_line "$tmp/f2.out" listening || { echo "flare listener did not start"; cat "$tmp/f2.err"; exit 1; }
faddr=$(addr_of "$tmp/f2.out")
timeout 30 "$node" "$quic" --dial "$faddr" --ping --echo-send /echo/1.0.0 \
    --message "hello over quic" --exit-after-ms 20000 >"$tmp/js2.out" 2>"$tmp/js2.err"
echo "{\"event\":\"exit-status\",\"status\":$?}" >>"$tmp/js2.out"
check "js->flare exits 0" "$tmp/js2.out" 'ev("exit-status")[-1]["status"] == 0'
check "js->flare identify: flare protocols, observed QUIC addr" "$tmp/js2.out" \
    'any("/echo/1.0.0" in e["protocols"] and (e["observedAddr"] or "").endswith("/quic-v1") and e["agentVersion"].startswith("flare/") for e in ev("identify"))'
check "js->flare ping" "$tmp/js2.out" 'len(ev("ping")) >= 1'
check "js->flare echo" "$tmp/js2.out" 'any(e["message"] == "hello over quic" for e in ev("echo-reply"))'
sleep 0.3
check "flare listener: inbound over quic-v1 / tls" "$tmp/f2.out" \
    'any(e["transport"] == "quic-v1" and e["security"] == "tls" and e["direction"] == "inbound" for e in ev("connected"))'

finish
