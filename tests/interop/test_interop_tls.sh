#!/usr/bin/env bash
# Interop: flare <-> js-libp2p (@libp2p/tls) over loopback TCP + libp2p TLS
# 1.3 + yamux (chosen inside the handshake by ALPN), both ways:
#  1. js listens (TLS only), flare dials: identify, an echo round trip, ping;
#     js sees the connection as /tls/1.0.0.
#  2. flare listens (TLS only), js dials: identify, ping, echo.
#  3. Both offer noise and tls, each dialer preferring tls: tls is used.
#  4. flare dials js under another peer ID: the TLS handshake fails.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# 1. js listener, flare dialer
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --security tls \
    --exit-after-ms 50000 >"$tmp/js1.out" 2>"$tmp/js1.err" &
pids+=($!)
wait_line "$tmp/js1.out" listening || { echo "js listener did not start"; cat "$tmp/js1.err"; exit 1; }
jsaddr=$(addr_of "$tmp/js1.out")
timeout 20 "$flare" dial "$jsaddr" --echo /echo/1.0.0 --message "hello over tls" --security tls \
    --json >"$tmp/f1.out" 2>"$tmp/f1.err"
check "flare->js connected over /tls/1.0.0 with yamux" "$tmp/f1.out" \
    'any(e["security"] == "/tls/1.0.0" and e["muxer"] == "/yamux/1.0.0" for e in ev("connected"))'
check "flare->js identify: js protocols" "$tmp/f1.out" \
    'any("/echo/1.0.0" in e["protocols"] and "/ipfs/ping/1.0.0" in e["protocols"] for e in ev("identify"))'
check "flare->js echo round trip" "$tmp/f1.out" \
    'any(e["ok"] and e["reply"] == "hello over tls" for e in ev("echo"))'
timeout 20 "$flare" ping "$jsaddr" -c 2 --security tls --json >"$tmp/f1p.out" 2>&1
check "flare->js ping x2" "$tmp/f1p.out" 'len(ev("ping")) == 2'
check "js saw flare over /tls/1.0.0 and its identify" "$tmp/js1.out" \
    'any(e["encryption"] == "/tls/1.0.0" for e in ev("inbound")) and any(e["agentVersion"].startswith("flare/") for e in ev("identify"))'

# 4. the wrong peer ID (js's address, another key's ID)
other=$("$flare" id --seed "$(printf '3c%.0s' $(seq 32))" --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["peerId"])')
timeout 20 "$flare" dial "${jsaddr%/p2p/*}/p2p/$other" --security tls --json >"$tmp/f4.out" 2>&1
jsid=${jsaddr##*/p2p/}
check "flare->js under another peer ID fails the handshake, naming both IDs" "$tmp/f4.out" \
    'any("peer id mismatch" in e["error"] for e in ev("dial_failed")) and any(e.get("expected") == "'"$other"'" and e.get("answered") == "'"$jsid"'" for e in ev("error"))'

# 2. flare listener, js dialer
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --security tls --json \
    >"$tmp/f2.out" 2>"$tmp/f2.err" &
pids+=($!)
wait_line "$tmp/f2.out" listening || { echo "flare listener did not start"; cat "$tmp/f2.err"; exit 1; }
faddr=$(addr_of "$tmp/f2.out")
timeout 30 "$node" "$peer" --dial "$faddr" --ping --ping-count 2 --echo-send /echo/1.0.0 \
    --message "hello from js over tls" --security tls >"$tmp/js2.out" 2>"$tmp/js2.err"
echo "{\"event\":\"exit\",\"status\":$?}" >>"$tmp/js2.out"
check "js->flare exits 0" "$tmp/js2.out" 'ev("exit")[-1]["status"] == 0'
check "js->flare tls+yamux" "$tmp/js2.out" \
    'any(e["encryption"] == "/tls/1.0.0" and e["multiplexer"] == "/yamux/1.0.0" for e in ev("connected"))'
check "js->flare identify: flare protocols" "$tmp/js2.out" \
    'any("/echo/1.0.0" in e["protocols"] and e["agentVersion"].startswith("flare/") for e in ev("identify"))'
check "js->flare ping" "$tmp/js2.out" 'len(ev("ping")) >= 2'
check "js->flare echo" "$tmp/js2.out" 'any(e["message"] == "hello from js over tls" for e in ev("echo-reply"))'
sleep 0.3
check "flare listener saw js over tls (identify + echo stream)" "$tmp/f2.out" \
    'any(e["security"] == "/tls/1.0.0" for e in ev("connected")) and len(ev("identify")) >= 1 and len(ev("echo_stream")) == 1'

# 3. both offer both; the dialers prefer tls
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --security noise,tls \
    --json >"$tmp/f3.out" 2>"$tmp/f3.err" &
pids+=($!)
wait_line "$tmp/f3.out" listening || { echo "flare listener did not start"; cat "$tmp/f3.err"; exit 1; }
faddr=$(addr_of "$tmp/f3.out")
timeout 30 "$node" "$peer" --dial "$faddr" --ping --security tls,noise >"$tmp/js3.out" 2>"$tmp/js3.err"
check "js (tls,noise) -> flare (noise,tls): tls" "$tmp/js3.out" \
    'any(e["encryption"] == "/tls/1.0.0" for e in ev("connected")) and len(ev("ping")) >= 1'
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --security noise,tls --exit-after-ms 30000 \
    >"$tmp/js5.out" 2>"$tmp/js5.err" &
pids+=($!)
wait_line "$tmp/js5.out" listening || { echo "js listener did not start"; cat "$tmp/js5.err"; exit 1; }
timeout 20 "$flare" ping "$(addr_of "$tmp/js5.out")" -c 1 --security tls,noise --json >"$tmp/f5.out" 2>&1
check "flare (tls,noise) -> js (noise,tls): tls" "$tmp/f5.out" \
    'any(e["security"] == "/tls/1.0.0" for e in ev("connected")) and len(ev("ping")) == 1'

finish
