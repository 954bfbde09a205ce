#!/usr/bin/env bash
# One IP takes every connection slot: 1,100 idle TCP connections from
# 127.0.0.1 against a real `flare relay`. The per-IP limit refuses all but a
# few, so honest peers dialing from 127.0.1.1 and 127.0.2.1 (other /24s)
# still connect (and ping) while the flood holds. Fails without the limits:
# the flood fills max_connections (1,024) and every other peer is refused.
. "$(dirname "$0")/lib.sh"

start_node "$tmp/relay.log" relay --listen /ip4/127.0.0.1/tcp/0 --seed "$(printf 'a1%.0s' $(seq 32))"
relay_addr=$addr
coproc ATK { python3 "$attacker" idle 127.0.0.1 "$port" 1100 20; }
pids+=($ATK_PID)
read -r -t 20 ready <&"${ATK[0]}" || { bad "attacker did not finish connecting"; finish; }
echo "attacker: $ready"
honest_ping 127.0.1.1 honest && grep -q '"event":"ping"' "$tmp/honest.log" &&
    ok "honest peer from 127.0.1.1 pings during the flood" ||
    bad "honest ping during the flood: $(tail -3 "$tmp/honest.log")"
# A second honest peer, well before the flood's handshakes time out (15 s).
start_node "$tmp/other.log" listen --listen /ip4/127.0.2.1/tcp/0 --connect "$relay_addr" \
    --seed "$(printf 'b2%.0s' $(seq 32))"
wait_for "$tmp/other.log" 'e["event"] == "connected"' 50 >/dev/null &&
    ok "a second honest peer (127.0.2.1) connects during the flood" || bad "second honest peer"
echo >&"${ATK[1]}" # stop holding
read -r -t 10 alive <&"${ATK[0]}"
echo "attacker: $alive"
n=${alive#alive }
[ -n "$n" ] && [ "$n" -le 16 ] && ok "at most 16 (conns_per_ip) attacker connections kept ($n)" ||
    bad "attacker kept $n connections"
finish
