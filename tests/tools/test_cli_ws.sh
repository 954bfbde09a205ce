#!/usr/bin/env bash
# WebSocket transports from the CLI on loopback (real sockets): flare listen
# on /ws and /tls/ws (a test CA and certificate made by certtool), flare
# dial and ping over both, a /dns4 name resolved and sent as SNI, a wss dial
# that does not trust the CA failing, a bad upgrade refused in HTTP while
# the listener keeps serving, and a relay on wss + TCP carrying a circuit
# from a wss client to a node that reserved over TCP.
source "$(dirname "$0")/lib.sh"
command -v certtool >/dev/null || { echo "skip: certtool (gnutls-bin) missing"; exit 77; }

source "$root/tests/support/make-certs.sh"
make_test_certs "$tmp" && ok "test certificate made" || { bad "certtool"; finish; }

timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/0/tls/ws >"$tmp/nocert.log" 2>&1
[ $? -eq 1 ] && grep -q "cannot listen" "$tmp/nocert.log" && ok "wss listen without a certificate refused" ||
    bad "wss listen without a certificate: $(cat "$tmp/nocert.log")"
timeout 5 "$flare" listen --tls-cert "$tmp/cert.pem" >/dev/null 2>&1
[ $? -eq 2 ] && ok "--tls-cert without --tls-key: exit 2" || bad "--tls-cert alone accepted"

seed_b=$(printf 'b7%.0s' $(seq 32))
"$flare" listen --listen /ip4/127.0.0.1/tcp/0/ws --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --seed "$seed_b" --echo /echo/1.0.0 \
    --no-holepunch --json >"$tmp/b.log" 2>&1 &
pids+=($!)
wait_for "$tmp/b.log" 'e.get("event") == "listening" and e["addr"].find("/tls/ws") > 0' >/dev/null
ws=$(wait_for "$tmp/b.log" 'e.get("event") == "listening" and "/tls/" not in e["addr"]') &&
    ws=$(field "$ws" addr)
wss=$(wait_for "$tmp/b.log" 'e.get("event") == "listening" and "/tls/ws" in e["addr"]') &&
    wss=$(field "$wss" addr)
[ -n "$ws" ] && [ -n "$wss" ] && ok "listening on $ws and $wss" || { bad "listen: $(cat "$tmp/b.log")"; finish; }

msg=$(head -c 1024 /dev/zero | tr '\0' w)
echo_over() { # NAME ADDR [FLAGS...]
    local name=$1 addr=$2
    shift 2
    timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message "$msg" --no-holepunch --json "$@" \
        >"$tmp/$name.log" 2>&1
}
echo_over ws "$ws" && grep -q '"event":"echo".*"ok":true' "$tmp/ws.log" &&
    ok "1 KiB echo over ws" || bad "echo over ws: $(tail -3 "$tmp/ws.log")"
echo_over wss "$wss" --tls-ca "$tmp/ca.pem" && grep -q '"event":"echo".*"ok":true' "$tmp/wss.log" &&
    ok "1 KiB echo over wss" || bad "echo over wss: $(tail -3 "$tmp/wss.log")"
port=$(echo "$wss" | sed -E 's|^/ip4/127.0.0.1/tcp/([0-9]+)/.*|\1|')
peer=${wss##*/p2p/}
echo_over dns "/dns4/localhost/tcp/$port/tls/ws/p2p/$peer" --tls-ca "$tmp/ca.pem" &&
    grep -q '"event":"echo".*"ok":true' "$tmp/dns.log" &&
    ok "/dns4/localhost/.../tls/ws: resolved, SNI localhost, echo" || bad "dns: $(tail -3 "$tmp/dns.log")"
wsp=$(echo "$ws" | sed -E 's|^/ip4/127.0.0.1/tcp/([0-9]+)/.*|\1|')
echo_over dnsws "/dns/localhost/tcp/$wsp/ws/p2p/$peer" && grep -q '"event":"echo".*"ok":true' "$tmp/dnsws.log" &&
    ok "/dns/localhost/.../ws: echo" || bad "dns ws: $(tail -3 "$tmp/dnsws.log")"
echo_over nxdomain "/dns4/no-such-host.invalid/tcp/$wsp/ws/p2p/$peer"
[ $? -eq 1 ] && grep -q '"event":"error"' "$tmp/nxdomain.log" && ok "a name that does not resolve: exit 1, an error" ||
    bad "nxdomain: $(tail -3 "$tmp/nxdomain.log")"
timeout 10 "$flare" ping "$wss" -c 2 --tls-ca "$tmp/ca.pem" --json >"$tmp/ping.log" 2>&1 &&
    [ "$(grep -c '"event":"ping"' "$tmp/ping.log")" -ge 2 ] && ok "ping over wss" ||
    bad "ping over wss: $(tail -3 "$tmp/ping.log")"
echo_over untrusted "$wss"
[ $? -ne 0 ] && ! grep -q '"event":"echo".*"ok":true' "$tmp/untrusted.log" &&
    ok "wss dial without the CA fails" || bad "untrusted wss dial succeeded"

# Bad upgrades are refused in HTTP; the listener keeps serving.
wsport=$(echo "$ws" | sed -E 's|^/ip4/127.0.0.1/tcp/([0-9]+)/.*|\1|')
python3 - "$wsport" >"$tmp/bad.out" <<'P'
import socket, sys
def ask(req):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(req)
    try: data = s.recv(200)
    except OSError: data = b""
    s.close()
    return data.split(b"\r\n")[0].decode()
print(ask(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
print(ask(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n"))
print(ask(b"GET / HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n"))
P
[ "$(sed -n 1p "$tmp/bad.out")" = "HTTP/1.1 426 Upgrade Required" ] &&
    [ "$(sed -n 2p "$tmp/bad.out")" = "HTTP/1.1 400 Bad Request" ] &&
    [ "$(sed -n 3p "$tmp/bad.out")" = "HTTP/1.1 431 Request Header Fields Too Large" ] &&
    ok "bad upgrades refused with 426, 400 and 431" || bad "bad upgrades: $(cat "$tmp/bad.out")"
echo_over ws2 "$ws" && grep -q '"event":"echo".*"ok":true' "$tmp/ws2.log" &&
    ok "echo over ws after the bad clients" || bad "echo after bad clients"

# A relay on wss and TCP: B2 reserves over TCP, a wss client reaches it.
seed_r=$(printf 'a7%.0s' $(seq 32))
"$flare" relay --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --seed "$seed_r" --json >"$tmp/relay.log" 2>&1 &
pids+=($!)
rtcp=$(wait_for "$tmp/relay.log" 'e.get("event") == "listening" and "/ws" not in e["addr"]') &&
    rtcp=$(field "$rtcp" addr)
rwss=$(wait_for "$tmp/relay.log" 'e.get("event") == "listening" and "/tls/ws" in e["addr"]') &&
    rwss=$(field "$rwss" addr)
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$rtcp" --seed "$(printf 'd7%.0s' $(seq 32))" \
    --echo /echo/1.0.0 --no-holepunch --json >"$tmp/b2.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/b2.log" 'e["event"] == "reservation"') && b2=$(field "$line" addr)
[ -n "${b2:-}" ] && ok "reservation over TCP" || { bad "no reservation: $(tail -3 "$tmp/b2.log")"; finish; }
circ="$rwss/p2p-circuit/p2p/${b2##*/p2p/}"
echo_over circ "$circ" --tls-ca "$tmp/ca.pem" && grep -q '"event":"echo".*"ok":true' "$tmp/circ.log" &&
    ok "1 KiB echo through the relay: wss in, TCP out" || bad "circuit over wss: $(tail -3 "$tmp/circ.log")"
finish
