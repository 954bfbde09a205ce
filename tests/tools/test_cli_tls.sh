#!/usr/bin/env bash
# libp2p TLS between two flare processes on loopback: --security chooses and
# orders the security protocols (the dialer proposes in its order, the
# listener accepts any it lists), the connected event names the one used,
# a TLS-only listener refuses a Noise-only dialer, a wrong peer ID fails the
# TLS handshake, and bad --security values exit 2.
source "$(dirname "$0")/lib.sh"

# start NAME ARGS...: a listener on loopback with an echo; sets addr.
start() {
    local name=$1
    shift
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 --json "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    addr=$(listening_addr "$tmp/$name.log") || { bad "$name: no listener"; return 1; }
}
# dial NAME ARGS...: an echo round trip to $addr; the log is $tmp/NAME.out.
dial() {
    local name=$1
    shift
    timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message "hi tls" --json "$@" \
        >"$tmp/$name.out" 2>&1
}
security_of() { wait_for "$1" 'e["event"] == "connected"' 10 | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["security"])'; }

start tls-only --security tls
if dial a --security tls && [ "$(security_of "$tmp/a.out")" = /tls/1.0.0 ] &&
    grep -q '"reply":"hi tls"' "$tmp/a.out"; then
    ok "tls <-> tls: echo over /tls/1.0.0"
else bad "tls <-> tls: $(cat "$tmp/a.out")"; fi
wait_for "$tmp/tls-only.log" 'e["event"] == "connected" and e["security"] == "/tls/1.0.0"' >/dev/null &&
    ok "the listener reports /tls/1.0.0" || bad "listener: $(cat "$tmp/tls-only.log")"
dial b --security noise,tls && [ "$(security_of "$tmp/b.out")" = /tls/1.0.0 ] &&
    ok "noise,tls dialer falls back to tls" || bad "noise,tls -> tls: $(cat "$tmp/b.out")"
dial c && bad "a noise-only dialer connected to a tls-only listener" ||
    { grep -q 'protocol negotiation failed' "$tmp/c.out" && ok "noise-only dialer: negotiation fails" ||
        bad "noise-only dialer: $(cat "$tmp/c.out")"; }
# The listener's address with another peer ID: the certificate does not match.
other=$("$flare" id --seed "$(printf '3c%.0s' $(seq 32))" --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["peerId"])')
good=$addr
addr=${good%/p2p/*}/p2p/$other
dial d --security tls && bad "wrong peer ID connected" ||
    { grep -q 'peer id mismatch' "$tmp/d.out" && ok "wrong peer ID: the TLS handshake fails" ||
        bad "wrong peer ID: $(cat "$tmp/d.out")"; }
addr=$good

start both --security noise,tls
dial e --security tls,noise && [ "$(security_of "$tmp/e.out")" = /tls/1.0.0 ] &&
    ok "the dialer's preference wins (tls,noise -> tls)" || bad "tls,noise: $(cat "$tmp/e.out")"
dial f && [ "$(security_of "$tmp/f.out")" = /noise ] &&
    ok "default dialer uses noise" || bad "default: $(cat "$tmp/f.out")"

for v in "" "ssl" "noise,,tls" "tls,quic"; do
    timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --security "$v" >/dev/null 2>"$tmp/err"
    [ $? -eq 2 ] && ok "--security '$v': exit 2" || bad "--security '$v' accepted: $(cat "$tmp/err")"
done
timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --security tls,tls >/dev/null 2>"$tmp/err"
[ $? -ne 0 ] && ok "--security tls,tls refused" || bad "--security tls,tls accepted"
finish
