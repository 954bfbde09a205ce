#!/usr/bin/env bash
# Interop: flare <-> js-libp2p over loopback TCP + Noise + yamux, both ways:
#  1. js listens (echo), flare dials: identify (flare sees js's protocols and
#     listen address, and an observed address), an echo round trip, ping.
#  2. flare listens (echo), js dials: identify (js sees flare's protocols and
#     its observed address), ping, an echo round trip.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# 0. Same seed, same peer ID (keys and peer ID encoding agree).
seed=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
timeout 20 "$node" "$peer" --id-only --seed "$seed" >"$tmp/jsid.out" 2>&1
"$flare" id --seed "$seed" --json >"$tmp/fid.out" 2>&1
jsid=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['peerId'])" "$tmp/jsid.out")
check "flare and js derive the same peer id from a seed" "$tmp/fid.out" "ev('id')[0]['peerId'] == '$jsid'"

# 1. js listener, flare dialer
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --exit-after-ms 50000 \
    >"$tmp/js1.out" 2>"$tmp/js1.err" &
pids+=($!)
wait_line "$tmp/js1.out" listening || { echo "js listener did not start"; cat "$tmp/js1.err"; exit 1; }
jsaddr=$(addr_of "$tmp/js1.out")
timeout 20 "$flare" dial "$jsaddr" --echo /echo/1.0.0 --message "hello from flare" --json \
    >"$tmp/f1.out" 2>"$tmp/f1.err"
echo "flare dial exit $?" >>"$tmp/f1.out"
check "flare->js connected with yamux" "$tmp/f1.out" \
    'any(e["muxer"] == "/yamux/1.0.0" for e in ev("connected"))'
check "flare->js identify: js protocols" "$tmp/f1.out" \
    'any("/echo/1.0.0" in e["protocols"] and "/ipfs/ping/1.0.0" in e["protocols"] for e in ev("identify"))'
check "flare->js identify: js listen addr" "$tmp/f1.out" \
    'any(any(a.startswith("/ip4/127.0.0.1/tcp/") for a in e["listenAddrs"]) for e in ev("identify"))'
check "flare->js observed address" "$tmp/f1.out" \
    'any(e["addr"].startswith("/ip4/127.0.0.1/tcp/") for e in ev("observed_addr"))'
check "flare->js echo round trip" "$tmp/f1.out" \
    'any(e["ok"] and e["reply"] == "hello from flare" for e in ev("echo"))'
timeout 20 "$flare" ping "$jsaddr" -c 2 --json >"$tmp/f1p.out" 2>&1
check "flare->js ping x2" "$tmp/f1p.out" 'len(ev("ping")) == 2'
check "js saw flare's identify" "$tmp/js1.out" \
    'any(e["agentVersion"].startswith("flare/") and "/ipfs/ping/1.0.0" in e["protocols"] for e in ev("identify"))'

# 2. flare listener, js dialer
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --json \
    >"$tmp/f2.out" 2>"$tmp/f2.err" &
pids+=($!)
wait_line "$tmp/f2.out" listening || { echo "flare listener did not start"; cat "$tmp/f2.err"; exit 1; }
faddr=$(addr_of "$tmp/f2.out")
timeout 30 "$node" "$peer" --dial "$faddr" --ping --ping-count 2 --echo-send /echo/1.0.0 \
    --message "hello from js" >"$tmp/js2.out" 2>"$tmp/js2.err"
echo "{\"event\":\"exit\",\"status\":$?}" >>"$tmp/js2.out"
check "js->flare exits 0" "$tmp/js2.out" 'ev("exit")[-1]["status"] == 0'
check "js->flare noise+yamux" "$tmp/js2.out" \
    'any(e["encryption"] == "/noise" and e["multiplexer"] == "/yamux/1.0.0" for e in ev("connected"))'
check "js->flare identify: flare protocols, observed addr" "$tmp/js2.out" \
    'any("/echo/1.0.0" in e["protocols"] and (e["observedAddr"] or "").startswith("/ip4/127.0.0.1/tcp/") and e["agentVersion"].startswith("flare/") for e in ev("identify"))'
check "js->flare ping" "$tmp/js2.out" 'len(ev("ping")) >= 2'
check "js->flare echo" "$tmp/js2.out" 'any(e["message"] == "hello from js" for e in ev("echo-reply"))'
sleep 0.3
check "flare listener saw js (identify + echo stream)" "$tmp/f2.out" \
    'len(ev("identify")) >= 1 and len(ev("echo_stream")) == 1'

finish
