#!/usr/bin/env bash
# Strict CLI parsing (no root, loopback only): numeric flags must be whole
# numbers in range (exit 2, a message naming the flag), an --echo protocol
# over FLARE_PROTOCOL_MAX is refused, listen errors keep errno's meaning, and
# a key file readable by others loads with a warning.
source "$(dirname "$0")/lib.sh"
# refused "DESC" FLAG-IN-MESSAGE CMD...: exit 2 and stderr names the flag.
refused() {
    local desc=$1 flag=$2
    shift 2
    timeout 5 "$flare" "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q -- "$flag" "$tmp/err"; then ok "$desc: exit 2"; else
        bad "$desc: exit $rc, stderr: $(head -c 200 "$tmp/err")"; fi
}
peer=12D3KooWGC6TvWhfapngX6wvJHMYvKpDMXPb3ZnCZ6dMoaMtimQ5
t=/ip4/127.0.0.1/tcp/9/p2p/$peer
refused "ping -c abc" -c ping "$t" -c abc
refused "ping -c -5" -c ping "$t" -c -5
refused "ping -c 0" -c ping "$t" -c 0
refused "ping -c 3x" -c ping "$t" -c 3x
refused "ping --count 99999999999999999999" --count ping "$t" --count 99999999999999999999
refused "dial --wait-holepunch -1" --wait-holepunch dial "$t" --wait-holepunch -1
refused "dial --wait-holepunch ' 5'" --wait-holepunch dial "$t" --wait-holepunch " 5"
refused "listen --autonat-boot-delay x" --autonat-boot-delay listen --autonat-boot-delay x
refused "relay --relay-data 2^64" --relay-data relay --listen /ip4/127.0.0.1/tcp/0 \
    --relay-data 18446744073709551616
refused "relay --relay-ttl +5" --relay-ttl relay --listen /ip4/127.0.0.1/tcp/0 --relay-ttl +5
refused "relay --relay-ttl 0" --relay-ttl relay --listen /ip4/127.0.0.1/tcp/0 --relay-ttl 0
refused "demo --delay-ms -3" --delay-ms demo --delay-ms -3
refused "demo --seed abc" --seed demo --seed abc
refused "autonat --timeout nan" --timeout autonat "$t" --timeout nan
refused "autonat --timeout -1" --timeout autonat "$t" --timeout -1
long=/$(head -c 300 /dev/zero | tr '\0' a)
refused "listen --echo (300 bytes)" --echo listen --listen /ip4/127.0.0.1/tcp/0 --echo "$long"
refused "listen --echo without /" --echo listen --listen /ip4/127.0.0.1/tcp/0 --echo echo

# Listen errors say what errno said.
timeout 5 "$flare" listen --listen /ip4/192.0.2.1/tcp/0 >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "cannot assign requested address" "$tmp/err" &&
    ok "listen on an address we lack: 'cannot assign requested address', exit 1" ||
    bad "listen on 192.0.2.1: exit $rc, $(cat "$tmp/err")"
if [ "$(id -u)" != 0 ]; then
    timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/1 >/dev/null 2>"$tmp/err"
    grep -q "permission denied" "$tmp/err" && ok "privileged port: 'permission denied'" ||
        bad "privileged port: $(cat "$tmp/err")"
fi
python3 -c 'import socket,time,sys
s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True)
time.sleep(5)' >"$tmp/port" &
busy=$!
for _ in $(seq 50); do [ -s "$tmp/port" ] && break; sleep 0.1; done
# flare listens with SO_REUSEPORT; a plain socket holding the port still wins.
timeout 5 "$flare" listen --listen "/ip4/127.0.0.1/tcp/$(cat "$tmp/port")" >/dev/null 2>"$tmp/err"
grep -q "address in use" "$tmp/err" && ok "port taken: 'address in use'" ||
    bad "port taken: $(cat "$tmp/err")"
kill $busy 2>/dev/null
wait $busy 2>/dev/null

# Key files: created 0600; one readable by others loads with a warning.
"$flare" id --key "$tmp/k" >/dev/null 2>"$tmp/err"
[ "$(stat -c %a "$tmp/k")" = 600 ] && ! grep -q warning "$tmp/err" &&
    ok "new key file 0600, no warning" || bad "new key file: $(stat -c %a "$tmp/k") $(cat "$tmp/err")"
chmod 644 "$tmp/k"
out=$("$flare" id --key "$tmp/k" --json 2>"$tmp/err")
rc=$?
[ $rc -eq 0 ] && grep -q "readable by others" "$tmp/err" && ok "0644 key: warning on stderr" ||
    bad "0644 key: exit $rc, stderr: $(cat "$tmp/err")"
grep -q '"event":"warning".*"mode":"0644"' <<<"$out" && ok "0644 key: JSON warning event" ||
    bad "0644 key: no JSON warning: $out"
chmod 600 "$tmp/k"
"$flare" id --key "$tmp/k" >/dev/null 2>"$tmp/err"
! grep -q warning "$tmp/err" && ok "0600 key: no warning" || bad "0600 key warned"

# Good values still work.
timeout 5 "$flare" demo --delay-ms 5 --seed 3 >/dev/null 2>&1 && ok "demo with numeric flags runs" ||
    bad "demo --delay-ms 5 --seed 3"
finish
