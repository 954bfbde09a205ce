#!/usr/bin/env bash
# Slow-loris handshakes: 1,100 connections from 110 loopback addresses in 11
# /24s, each trickling a multistream header one byte per second and never
# finishing the upgrade. The per-IP and per-subnet handshake limits cap what
# each source holds, the system handshake limit closes the oldest stalled
# ones to make room, and an honest peer (127.0.1.1) still connects and
# pings. Fails without these limits: the stalled handshakes fill
# max_connections until the 15 s handshake timeout.
. "$(dirname "$0")/lib.sh"

start_node "$tmp/relay.log" relay --listen /ip4/127.0.0.1/tcp/0 --seed "$(printf 'a1%.0s' $(seq 32))"
srcs=()
for net in $(seq 3 13); do
    for host in $(seq 1 10); do srcs+=("127.0.$net.$host"); done
done
coproc ATK { python3 "$attacker" loris 127.0.0.1 "$port" 1100 20 "${srcs[@]}"; }
pids+=($ATK_PID)
read -r -t 25 ready <&"${ATK[0]}" || { bad "attacker did not finish connecting"; finish; }
echo "attacker: $ready"
sleep 1
honest_ping 127.0.1.1 honest && grep -q '"event":"ping"' "$tmp/honest.log" &&
    ok "honest peer pings during the slow-loris" ||
    bad "honest ping during the slow-loris: $(tail -2 "$tmp/honest.log")"
echo >&"${ATK[1]}"
read -r -t 10 alive <&"${ATK[0]}"
echo "attacker: $alive"
n=${alive#alive }
[ -n "$n" ] && [ "$n" -le 128 ] && ok "at most 128 (handshakes) stalled connections kept ($n)" ||
    bad "attacker kept $n stalled connections"
finish
