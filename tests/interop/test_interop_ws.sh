#!/usr/bin/env bash
# Interop over WebSocket: flare <-> js-libp2p (@libp2p/websockets) on
# loopback, /ws and /tls/ws (a test CA), both ways:
#  1. flare listens, js dials: identify (js sees flare's /ws and /tls/ws
#     listen addresses), ping, a 1 KiB echo; over ws and over wss.
#  2. js listens, flare dials: echo and ping over ws and over wss.
#  3. A flare relay on wss + TCP: a js node reaches a flare node that holds
#     its reservation over TCP, through the relay's wss address.
# Exit 0 pass, 1 fail, 77 skip (no npm registry, no certtool).
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
source "$root/tests/support/make-certs.sh"
make_test_certs "$tmp" || { echo "skip: certtool (gnutls-bin) missing"; exit 77; }
export NODE_EXTRA_CA_CERTS=$tmp/ca.pem
msg=$(head -c 1024 /dev/zero | tr '\0' k)

# 1. flare listens on ws and wss, js dials.
timeout 90 "$flare" listen --listen /ip4/127.0.0.1/tcp/0/ws --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --echo /echo/1.0.0 --no-holepunch --json \
    >"$tmp/f1.out" 2>"$tmp/f1.err" &
pids+=($!)
for _ in $(seq 100); do [ "$(grep -c '"event":"listening"' "$tmp/f1.out")" -ge 2 ] && break; sleep 0.1; done
fws=$(field "$tmp/f1.out" listening 'e["addr"]')
fwss=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get('event')=='listening' and '/tls/ws' in e['addr']: print(e['addr']); break" "$tmp/f1.out")
for kind in ws wss; do
    addr=$fws
    [ $kind = wss ] && addr=$fwss
    timeout 30 "$node" "$peer" --websockets --dial "$addr" --ping --ping-count 2 --echo-send /echo/1.0.0 \
        --message "$msg" >"$tmp/js1$kind.out" 2>"$tmp/js1$kind.err"
    echo "{\"event\":\"exit\",\"status\":$?}" >>"$tmp/js1$kind.out"
    check "js->flare over $kind: exits 0" "$tmp/js1$kind.out" 'ev("exit")[-1]["status"] == 0'
    check "js->flare over $kind: connected over /$kind" "$tmp/js1$kind.out" \
        "any(e['remoteAddr'].find('/tls/ws' if '$kind' == 'wss' else '/ws') > 0 and e['multiplexer'] == '/yamux/1.0.0' for e in ev('connected'))"
    check "js->flare over $kind: identify lists flare's ws and wss addresses" "$tmp/js1$kind.out" \
        'any(any(a.endswith("/ws") and "/tls/" not in a for a in e["listenAddrs"]) and any(a.endswith("/tls/ws") for a in e["listenAddrs"]) for e in ev("identify"))'
    check "js->flare over $kind: ping x2" "$tmp/js1$kind.out" 'len(ev("ping")) >= 2'
    check "js->flare over $kind: 1 KiB echo" "$tmp/js1$kind.out" \
        "any(e['bytes'] == 1024 for e in ev('echo-reply'))"
done

# 2. js listens on ws and wss, flare dials.
FLARE_JS_TLS_CERT=$tmp/cert.pem FLARE_JS_TLS_KEY=$tmp/key.pem timeout 90 "$node" "$peer" --websockets \
    --listen /ip4/127.0.0.1/tcp/0/ws --listen /ip4/127.0.0.1/tcp/0/tls/ws --echo /echo/1.0.0 \
    --exit-after-ms 80000 >"$tmp/js2.out" 2>"$tmp/js2.err" &
pids+=($!)
wait_line "$tmp/js2.out" listening || { echo "js listener did not start"; cat "$tmp/js2.err"; exit 1; }
jsws=$(field "$tmp/js2.out" listening '[a for a in e["listenAddrs"] if "/tls/" not in a and "/ws" in a][0]')
jswss=$(field "$tmp/js2.out" listening '[a for a in e["listenAddrs"] if "/tls/ws" in a][0]')
for kind in ws wss; do
    addr=$jsws
    [ $kind = wss ] && addr=$jswss
    timeout 20 "$flare" dial "$addr" --echo /echo/1.0.0 --message "$msg" --tls-ca "$tmp/ca.pem" \
        --no-holepunch --json >"$tmp/f2$kind.out" 2>"$tmp/f2$kind.err"
    check "flare->js over $kind ($addr): 1 KiB echo" "$tmp/f2$kind.out" \
        "any(e['ok'] and len(e['reply']) == 1024 for e in ev('echo'))"
    timeout 20 "$flare" ping "$addr" -c 2 --tls-ca "$tmp/ca.pem" --json >"$tmp/f2p$kind.out" 2>&1
    check "flare->js over $kind: ping x2" "$tmp/f2p$kind.out" 'len(ev("ping")) == 2'
done

# 3. flare relay on wss + TCP; flare node reserves over TCP; js dials it
# through the relay's wss address.
timeout 90 "$flare" relay --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --json >"$tmp/r.out" 2>"$tmp/r.err" &
pids+=($!)
for _ in $(seq 100); do [ "$(grep -c '"event":"listening"' "$tmp/r.out")" -ge 2 ] && break; sleep 0.1; done
rtcp=$(field "$tmp/r.out" listening 'e["addr"]')
rwss=$(python3 -c "import json,sys
for l in open(sys.argv[1]):
    e=json.loads(l)
    if e.get('event')=='listening' and '/tls/ws' in e['addr']: print(e['addr']); break" "$tmp/r.out")
timeout 90 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$rtcp" --echo /echo/1.0.0 \
    --no-holepunch --json >"$tmp/b.out" 2>"$tmp/b.err" &
pids+=($!)
wait_line "$tmp/b.out" reservation || { echo "no reservation"; cat "$tmp/b.err"; }
bid=$(field "$tmp/b.out" listening 'e["peerId"]')
timeout 30 "$node" "$peer" --websockets --dial "$rwss/p2p-circuit/p2p/$bid" --echo-send /echo/1.0.0 \
    --message "$msg" >"$tmp/js3.out" 2>"$tmp/js3.err"
echo "{\"event\":\"exit\",\"status\":$?}" >>"$tmp/js3.out"
check "js over wss -> flare relay -> flare over TCP: 1 KiB echo" "$tmp/js3.out" \
    "ev('exit')[-1]['status'] == 0 and any(e['bytes'] == 1024 for e in ev('echo-reply'))"
finish
