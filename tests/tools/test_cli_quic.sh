#!/usr/bin/env bash
# QUIC over loopback with the real (libuv) driver: a node listening on TCP
# and QUIC at once; ping, dial with an echo, and a JSON `connected` event
# naming quic-v1 and tls on both ends; a wrong peer ID fails the dial.
source "$(dirname "$0")/lib.sh"

seed=$(printf '0a%.0s' $(seq 32))
"$flare" listen --seed "$seed" --listen /ip4/127.0.0.1/udp/0/quic-v1 --listen /ip4/127.0.0.1/tcp/0 \
    --echo /echo/1 --json >"$tmp/l" 2>"$tmp/l.err" &
pids+=($!)
addr=$(listening_addr "$tmp/l") || { bad "no listening event"; finish; }
qaddr=$(wait_for "$tmp/l" 'e.get("event") == "listening" and "/quic-v1" in e["addr"]' |
    python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["addr"])')
[[ $qaddr == /ip4/127.0.0.1/udp/*/quic-v1/p2p/12D3KooW* ]] && ok "listening on QUIC ($qaddr)" ||
    bad "QUIC listen address: $qaddr"
wait_for "$tmp/l" 'e.get("event") == "listening" and "/tcp/" in e["addr"]' >/dev/null &&
    ok "TCP listener alongside" || bad "no TCP listener"

ping_stack "$qaddr" QUIC "$tmp/l" quic-v1 tls quic
grep -q '"event":"identify"' "$tmp/p" && ok "identify over QUIC" || bad "no identify"

out=$(timeout 20 "$flare" dial "$qaddr" --echo /echo/1 --message "hello quic" 2>&1)
grep -q "echo reply: hello quic (matches)" <<<"$out" && ok "echo over a QUIC stream" ||
    bad "echo: $out"

other=$("$flare" id --seed "$(printf '0b%.0s' $(seq 32))" --json | python3 -c \
    'import json,sys; print(json.loads(sys.stdin.readline())["peerId"])')
wrong=${qaddr%/p2p/*}/p2p/$other
timeout 20 "$flare" dial "$wrong" --json >"$tmp/w" 2>&1
[ $? -ne 0 ] && grep -q "mismatch" "$tmp/w" && ok "wrong peer ID refused by the TLS handshake" ||
    bad "wrong peer id: $(cat "$tmp/w")"
finish
