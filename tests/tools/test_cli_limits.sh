#!/usr/bin/env bash
# The resource manager's --max-* flags: bad values exit 2; good ones start
# a node; --max-conns-per-peer 1 keeps a second connection of one peer out.
source "$(dirname "$0")/lib.sh"

for args in "--max-conns abc" "--max-conns -1" "--max-mem 5T" "--max-mem 1KB" "--max-frob 1" \
    "--max-conns-per-ip" "--max-mem-per-conn 99999999999999999999G" "--max-conns 99999999999999999999"; do
    # shellcheck disable=SC2086
    timeout 5 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 $args >/dev/null 2>&1
    [ $? -eq 2 ] && ok "relay $args: exit 2" || bad "relay $args accepted"
done
timeout 2 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 --max-conns 64 --max-conns-per-ip 0 \
    --max-mem 256M --max-mem-per-conn 64K --max-handshakes 4 >/dev/null 2>&1
[ $? -eq 124 ] && ok "relay runs with good --max-* values" || bad "relay with good values exited"

seed_t=$(printf 'a1%.0s' $(seq 32))
seed_c=$(printf 'c3%.0s' $(seq 32))
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed_t" --max-conns-per-peer 1 --json \
    >"$tmp/t.log" 2>&1 &
pids+=($!)
addr=$(listening_addr "$tmp/t.log" 50)
for i in 1 2; do
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed_c" --connect "$addr" \
        >/dev/null 2>&1 &
    pids+=($!)
    sleep 1
done
sleep 1
c=$(grep -c '"event":"connected"' "$tmp/t.log")
f=$(grep -c '"event":"incoming_failed".*resource limit exceeded' "$tmp/t.log")
[ "$c" -eq 1 ] && [ "$f" -ge 1 ] && ok "--max-conns-per-peer 1: one kept, the second refused" ||
    bad "connected $c, refused $f"
finish
