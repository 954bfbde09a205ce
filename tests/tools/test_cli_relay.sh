#!/usr/bin/env bash
# flare relay's limit flags on loopback (no root): bad values are refused
# (exit 2); a relay with --relay-data 16384 serves a small echo through a
# circuit, and ends a circuit that carries more with "resource limit
# exceeded" on the relay and on both ends, then still serves.
source "$(dirname "$0")/lib.sh"

for args in "--relay-ttl abc" "--relay-data -5" "--relay-duration 4294967296" "--relay-frob 1" \
    "--relay-ttl"; do
    # shellcheck disable=SC2086
    timeout 5 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 $args >/dev/null 2>&1
    [ $? -eq 2 ] && ok "relay $args: exit 2" || bad "relay $args accepted"
done
timeout 5 "$flare" listen --relay-ttl 5 >/dev/null 2>&1
[ $? -eq 2 ] && ok "listen refuses relay-server flags" || bad "listen --relay-ttl accepted"

seed_r=$(printf 'a1%.0s' $(seq 32))
seed_b=$(printf 'b2%.0s' $(seq 32))
seed_a=$(printf 'c3%.0s' $(seq 32))
"$flare" relay --listen /ip4/127.0.0.1/tcp/0 --seed "$seed_r" --json --relay-data 16384 \
    --relay-ttl 60 --relay-duration 30 --relay-max-reservations 4 --relay-max-per-ip 2 \
    --relay-max-circuits 8 --relay-circuits-per-peer 4 >"$tmp/relay.log" 2>&1 &
pids+=($!)
raddr=$(listening_addr "$tmp/relay.log") || { bad "relay did not start"; exit 1; }
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$raddr" --seed "$seed_b" --echo /echo/1.0.0 \
    --no-holepunch --json >"$tmp/b.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/b.log" 'e["event"] == "reservation"') || { bad "no reservation"; exit 1; }
baddr=$(field "$line" addr)
ok "reserved on a relay with every limit flag set"

timeout 10 "$flare" dial "$baddr" --echo /echo/1.0.0 --message small --seed "$seed_a" \
    --no-holepunch --json >"$tmp/a1.log" 2>&1
grep -q '"event":"echo".*"ok":true' "$tmp/a1.log" && ok "echo under the data limit" || bad "small echo"

big=$(head -c 40000 /dev/zero | tr '\0' x)
timeout 10 "$flare" dial "$baddr" --echo /echo/1.0.0 --message "$big" --seed "$seed_a" \
    --no-holepunch --json >"$tmp/a2.log" 2>&1
rc=$?
lim='"reason": *"resource limit exceeded"'
[ $rc -eq 1 ] && grep -qE "\"event\":\"disconnected\".*$lim" "$tmp/a2.log" &&
    ok "dialer: connection ended at the data limit" || bad "dialer: rc $rc $(grep disconnected "$tmp/a2.log")"
wait_for "$tmp/relay.log" 'e["event"] == "relay_circuit_closed" and e["reason"] == "resource limit exceeded"' \
    >/dev/null && ok "relay: circuit closed for the limit" || bad "relay: no limit close"
wait_for "$tmp/b.log" 'e["event"] == "disconnected" and e["reason"] == "resource limit exceeded"' \
    >/dev/null && ok "listener: connection ended at the data limit" || bad "listener: $(grep disconnected "$tmp/b.log")"
timeout 10 "$flare" dial "$baddr" --echo /echo/1.0.0 --message again --seed "$seed_a" \
    --no-holepunch --json >"$tmp/a3.log" 2>&1
grep -q '"event":"echo".*"ok":true' "$tmp/a3.log" && ok "a new circuit after the limit" || bad "echo after limit"
# The per-IP cap (2): B holds one slot, C takes the second, D is refused and
# its event names the relay's status.
for n in c d; do
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$raddr" --seed "$(printf "${n}4%.0s" $(seq 32))" \
        --no-holepunch --json >"$tmp/$n.log" 2>&1 &
    pids+=($!)
done
loser=
for _ in $(seq 100); do
    grep -q '"event":"reservation"' "$tmp/c.log" && { loser=d; break; }
    grep -q '"event":"reservation"' "$tmp/d.log" && { loser=c; break; }
    sleep 0.1
done
if [ -n "$loser" ]; then
    line=$(wait_for "$tmp/$loser.log" 'e["event"] == "reservation_failed"')
    [ "$(field "${line:-{\}}" status 2>/dev/null)" = RESERVATION_REFUSED ] &&
        ok "per-IP cap: refused with status RESERVATION_REFUSED" || bad "per-IP cap: '$line'"
else
    bad "per-IP cap: neither C nor D reserved"
fi
finish
