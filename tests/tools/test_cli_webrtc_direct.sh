#!/usr/bin/env bash
# WebRTC-direct over loopback with the real (libuv) driver: a node listening
# on /udp/0/webrtc-direct announces /certhash/...; ping and an echo over it,
# `connected` naming webrtc-direct and noise on both ends; the certificate is
# kept beside the key file, so a restart announces the same certhash; a
# wrong certhash fails the dial; QUIC, WebRTC-direct and the STUN server on
# one UDP port.
source "$(dirname "$0")/lib.sh"

start() {
    "$flare" listen --key "$tmp/key" --listen /ip4/127.0.0.1/udp/0/webrtc-direct \
        --echo /echo/1 --json >"$tmp/$1" 2>"$tmp/$1.err" &
    pids+=($!)
}
start l
addr=$(listening_addr "$tmp/l") || { bad "no listening event: $(cat "$tmp/l.err")"; finish; }
[[ $addr == /ip4/127.0.0.1/udp/*/webrtc-direct/certhash/uEi*/p2p/12D3KooW* ]] &&
    ok "listening on webrtc-direct ($addr)" || bad "listen address: $addr"
[ -s "$tmp/key.webrtc.pem" ] && ok "certificate kept beside the key" || bad "no $tmp/key.webrtc.pem"

ping_stack "$addr" webrtc-direct "$tmp/l" webrtc-direct noise webrtc

out=$(timeout 20 "$flare" dial "$addr" --echo /echo/1 --message "hello webrtc" 2>&1)
grep -q "echo reply: hello webrtc (matches)" <<<"$out" && ok "echo over a data channel" ||
    bad "echo: $out"

# Another certificate's hash: DTLS refuses the listener's certificate.
hash=${addr#*/certhash/}
hash=${hash%%/*}
flip=A
[ "${hash: -1}" = A ] && flip=B
wrong=${addr/$hash/${hash%?}$flip}
timeout 20 "$flare" dial "$wrong" --json >"$tmp/w" 2>&1
[ $? -ne 0 ] && ! grep -q '"event":"connected"' "$tmp/w" && ok "wrong certhash refused" ||
    bad "wrong certhash: $(cat "$tmp/w")"

# Restart with the same key: the same certificate, the same certhash.
kill "${pids[0]}" 2>/dev/null
wait "${pids[0]}" 2>/dev/null
start l2
addr2=$(listening_addr "$tmp/l2") || { bad "restart: $(cat "$tmp/l2.err")"; finish; }
[ "${addr2#*/certhash/}" = "${addr#*/certhash/}" ] && ok "same certhash after a restart" ||
    bad "certhash changed: $addr -> $addr2"
timeout 20 "$flare" ping "$addr2" --json >"$tmp/p2" 2>&1
grep -q '"event":"ping"' "$tmp/p2" && ok "ping after the restart" || bad "ping 2: $(cat "$tmp/p2")"

# One port for QUIC, WebRTC-direct and STUN (first-byte demultiplexing).
port=$((40000 + RANDOM % 20000))
"$flare" listen --listen /ip4/127.0.0.1/udp/$port/quic-v1 \
    --listen /ip4/127.0.0.1/udp/$port/webrtc-direct --json >"$tmp/s" 2>"$tmp/s.err" &
pids+=($!)
w=$(wait_for "$tmp/s" 'e.get("event") == "listening" and "/webrtc-direct/" in e["addr"]') &&
    q=$(wait_for "$tmp/s" 'e.get("event") == "listening" and "/quic-v1/" in e["addr"]') ||
    { bad "shared port listeners: $(cat "$tmp/s.err")"; finish; }
w=$(field "$w" addr)
q=$(field "$q" addr)
[[ $w == /ip4/127.0.0.1/udp/$port/webrtc-direct/* ]] && ok "webrtc-direct on the QUIC port" ||
    bad "shared address: $w"
timeout 20 "$flare" ping "$w" --json 2>&1 | grep -q '"event":"ping"' &&
    ok "ping over webrtc-direct on the shared port" || bad "webrtc-direct ping on the shared port"
timeout 20 "$flare" ping "$q" --json 2>&1 | grep -q '"event":"ping"' &&
    ok "ping over QUIC on the shared port" || bad "QUIC ping on the shared port"
timeout 10 "$flare" stun "127.0.0.1:$port" 2>&1 | grep -q "mapped address 127.0.0.1:" &&
    ok "STUN answered on the shared port" || bad "no STUN answer on the shared port"
finish
