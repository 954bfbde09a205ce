#!/usr/bin/env bash
# The connection gater and connection manager flags of flare listen/relay on
# loopback (no root): a denied peer's dial fails while another peer's works,
# --deny-ip refuses before the handshake, an --allow-ip list keeps others
# out, deny beats allow, bad values exit 2, and above high water the
# connection manager trims idle connections.
source "$(dirname "$0")/lib.sh"
pid_of() { "$flare" id --seed "$1" --json | python3 -c 'import json,sys; print(json.loads(sys.stdin.readline())["peerId"])'; }

seed_s=$(printf '5a%.0s' $(seq 32))
seed_x=$(printf '6b%.0s' $(seq 32))
seed_y=$(printf '7c%.0s' $(seq 32))
id_x=$(pid_of "$seed_x")
id_y=$(pid_of "$seed_y")

# start NAME ARGS...: a listener on loopback; sets addr.
start() {
    local name=$1
    shift
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed_s" --json "$@" >"$tmp/$name.log" 2>&1 &
    pids+=($!)
    addr=$(listening_addr "$tmp/$name.log") || { bad "$name: no listener"; return 1; }
}
dial_as() { timeout 10 "$flare" dial "$addr" --seed "$1" >/dev/null 2>&1; }

start deny-peer --deny-peer "$id_x"
dial_as "$seed_x" && bad "denied peer connected" || ok "--deny-peer: that peer's dial fails"
wait_for "$tmp/deny-peer.log" 'e["event"] == "incoming_failed" and e["error"] == "refused"' >/dev/null &&
    ok "--deny-peer: listener reports incoming_failed (refused)" || bad "no refusal event"
dial_as "$seed_y" && ok "--deny-peer: another peer connects" || bad "other peer refused"

start deny-ip --deny-ip 127.0.0.0/8
dial_as "$seed_y" && bad "denied IP connected" || ok "--deny-ip 127.0.0.0/8: dial fails"
if wait_for "$tmp/deny-ip.log" 'e["event"] == "incoming_failed" and e["error"] == "refused"' >/dev/null &&
    ! grep -q '"event":"connected"' "$tmp/deny-ip.log"; then
    ok "--deny-ip: refused before the handshake"
else bad "--deny-ip: $(cat "$tmp/deny-ip.log")"; fi

start allow-ip --allow-ip 10.0.0.0/8 --allow-ip ::1
dial_as "$seed_y" && bad "IP outside the allow list connected" || ok "--allow-ip: other IPs refused"

start allow-deny --allow-ip 127.0.0.1 --allow-peer "$id_x" --allow-peer "$id_y" --deny-peer "$id_x"
dial_as "$seed_x" && bad "deny did not beat allow" || ok "deny beats allow"
dial_as "$seed_y" && ok "an allowed peer on an allowed IP connects" || bad "allowed peer refused"

for args in "--deny-ip 1.2.3.4/33" "--deny-ip 1.2.3.4:80" "--allow-ip nonsense" "--deny-peer foo" \
    "--allow-peer" "--conn-high -1" "--conn-low x" "--conn-grace 1.5"; do
    # shellcheck disable=SC2086
    timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 $args >/dev/null 2>"$tmp/err"
    [ $? -eq 2 ] && ok "listen $args: exit 2" || bad "listen $args accepted: $(cat "$tmp/err")"
done
timeout 5 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 --deny-ip 10.0.0.0/8 --conn-low 50 \
    --conn-high 100 --conn-grace 5 --json >"$tmp/relay.log" 2>&1 &
pids+=($!)
wait_for "$tmp/relay.log" 'e["event"] == "listening"' >/dev/null && ok "relay takes the policy flags" ||
    bad "relay with policy flags: $(cat "$tmp/relay.log")"

# The connection manager on real sockets: five peers keep connections to a
# node with high water 3, low water 1 and no grace period; it trims the
# idle ones (they redial every 2 s, and are trimmed again).
start connmgr --conn-high 3 --conn-low 1 --conn-grace 0
for i in 1 2 3 4 5; do
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$(printf "c$i%.0s" $(seq 32))" \
        --connect "$addr" --json >"$tmp/client$i.log" 2>&1 &
    pids+=($!)
done
n=0
for _ in $(seq 80); do
    n=$(grep -c '"event":"disconnected"' "$tmp/connmgr.log")
    [ "$n" -ge 4 ] && break
    sleep 0.1
done
[ "$n" -ge 4 ] && ok "connection manager: above high water, idle connections are trimmed ($n)" ||
    bad "connection manager trimmed $n connections of 5 above high water 3"
finish
