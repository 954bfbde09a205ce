#!/usr/bin/env bash
# flare stun against a flare node on loopback (no coturn needed; the coturn
# interop is tests/interop/test_interop_stun.sh): the node's QUIC port and
# its --stun-listen port answer with 127.0.0.1 and a port; JSON events
# `stun` and `stun_listening`; a silent server times out with exit 1;
# --no-stun-server keeps the QUIC port silent; bad SERVER is a usage error.
source "$(dirname "$0")/lib.sh"

"$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --stun-listen /ip4/127.0.0.1/udp/0 --json \
    >"$tmp/l" 2>"$tmp/l.err" &
pids+=($!)
qaddr=$(listening_addr "$tmp/l") || { bad "no listening event"; finish; }
qport=$(echo "$qaddr" | cut -d/ -f5)
line=$(wait_for "$tmp/l" 'e.get("event") == "stun_listening"') || { bad "no stun_listening"; finish; }
saddr=$(field "$line" addr)
[[ $saddr == 127.0.0.1:* ]] && ok "stun_listening on $saddr" || bad "stun_listening: $line"

for s in "127.0.0.1:$qport" "/ip4/127.0.0.1/udp/$qport" "$saddr"; do
    out=$(timeout 10 "$flare" stun "$s" --json)
    rc=$?
    line=$(grep '"event":"stun"' <<<"$out")
    [ $rc = 0 ] && [[ $(field "$line" mapped) == 127.0.0.1:* ]] &&
        python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert 0 <= e["rtt_ms"] < 5000' "$line" &&
        ok "flare stun $s: $(field "$line" mapped)" || bad "flare stun $s: rc $rc, $out"
done
human=$(timeout 10 "$flare" stun "127.0.0.1:$qport")
[[ $human == "mapped address 127.0.0.1:"* ]] && ok "human output: $human" || bad "human output: $human"

# IPv6: a node on [::1] answers with our [::1] address.
"$flare" listen --listen /ip6/::1/udp/0/quic-v1 --json >"$tmp/l6" 2>&1 &
pids+=($!)
if a6=$(listening_addr "$tmp/l6"); then
    line=$(timeout 10 "$flare" stun "[::1]:$(echo "$a6" | cut -d/ -f5)" --json | grep '"event":"stun"')
    [[ $(field "$line" mapped) == "[::1]:"* ]] && ok "IPv6: $(field "$line" mapped)" || bad "IPv6: $line"
else
    echo "note: no IPv6 loopback here; IPv6 case skipped"
fi

# A port nobody answers on: timeout, exit 1, an error event.
dead=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(timeout 10 "$flare" stun "127.0.0.1:$dead" --timeout 0.8 --json)
rc=$?
[ $rc = 1 ] && grep -q '"event":"error","ts":[0-9.]*,"where":"stun"' <<<"$out" &&
    ok "no answer: exit 1 with an error event" || bad "no answer: rc $rc, $out"

"$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --no-stun-server --json >"$tmp/q" 2>&1 &
pids+=($!)
q2=$(listening_addr "$tmp/q") || { bad "no listening event (--no-stun-server)"; finish; }
timeout 10 "$flare" stun "127.0.0.1:$(echo "$q2" | cut -d/ -f5)" --timeout 0.8 --json >/dev/null
[ $? = 1 ] && ok "--no-stun-server: no answer" || bad "--no-stun-server still answers"

timeout 5 "$flare" stun /ip4/127.0.0.1/tcp/1 >/dev/null 2>&1
[ $? = 2 ] && ok "a TCP multiaddr is a usage error" || bad "tcp multiaddr accepted"
timeout 5 "$flare" stun >/dev/null 2>&1
[ $? = 2 ] && ok "no SERVER is a usage error" || bad "no SERVER accepted"
finish
