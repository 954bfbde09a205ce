#!/usr/bin/env bash
# A real browser (Debian's Chromium, headless, driven by playwright-core)
# running js-libp2p (bundled by esbuild) against flare over WebSocket:
#  1. browser -> public flare node over ws and over wss (a test certificate,
#     trusted through Chromium's --ignore-certificate-errors-spki-list):
#     connect, identify, ping, a 1 KiB echo;
#  2. browser -> private flare node through a flare relay: the relay listens
#     on wss and TCP, the node holds its reservation over TCP, the browser
#     dials the /p2p-circuit address over wss: a 1 KiB echo;
#  3. the same through the flare relay to a js-libp2p private node, and
#     through a js-libp2p relay (ws) to a flare private node.
# Exit 0 pass, 1 fail, 77 skip (no chromium, npm registry or certtool).
# shellcheck source=browser-lib.sh
source "$(dirname "$0")/browser-lib.sh"
browser_setup
source "$root/tests/support/make-certs.sh"
make_test_certs "$tmp" || { echo "skip: certtool (gnutls-bin) missing"; exit 77; }
spki=$(certtool -i --infile "$tmp/cert.pem" 2>/dev/null | grep -m1 -o 'pin-sha256:[^ ]*' | cut -d: -f2)

pass=0 fail=0
# browser NAME ADDR...: runs the browser on each address; each must echo.
browser() {
    local name=$1
    shift
    local args=()
    for a in "$@"; do args+=(--addr "$a"); done
    timeout 120 "$node" "$run" --chromium "$(command -v chromium)" --spki "$spki" "${args[@]}" \
        >"$tmp/$name.out" 2>"$tmp/$name.err"
    local rc=$?
    local n=0
    while read -r line; do
        n=$((n + 1))
        if python3 -c 'import json,sys; e=json.loads(sys.argv[1]); sys.exit(0 if e["ok"] and e["steps"] == ["connected","identify","ping","echo"] else 1)' "$line"; then
            pass=$((pass + 1))
            echo "ok   $name: $(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print(e["addr"][:60] + "... connect, identify (" + str(e["agentVersion"]) + "), ping " + str(round(e["rttMs"])) + " ms, 1 KiB echo" + (", limited" if e["limited"] else ""))' "$line")"
        else
            fail=$((fail + 1))
            echo "FAIL $name: $line"
        fi
    done <"$tmp/$name.out"
    if [ $n -ne $# ] || [ $rc -ne 0 ]; then
        [ $n -ne $# ] && { fail=$((fail + 1)); echo "FAIL $name: $n results for $# addresses (rc $rc)"; cat "$tmp/$name.err" | tail -20; }
    fi
}
# 1. A public flare node on ws and wss.
"$flare" listen --listen /ip4/127.0.0.1/tcp/0/ws --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --echo /echo/1.0.0 --no-holepunch --json \
    >"$tmp/pub.log" 2>&1 &
pids+=($!)
ws=$(listening "$tmp/pub.log" '"/tls/" not in a')
wss=$(listening "$tmp/pub.log" '"/tls/ws" in a')
browser public "$ws" "$wss"

# 2. A flare relay on wss + TCP, a flare private node reserving over TCP.
"$flare" relay --listen /ip4/127.0.0.1/tcp/0 --listen /ip4/127.0.0.1/tcp/0/tls/ws \
    --tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem" --json >"$tmp/relay.log" 2>&1 &
pids+=($!)
rtcp=$(listening "$tmp/relay.log" '"/ws" not in a')
rwss=$(listening "$tmp/relay.log" '"/tls/ws" in a')
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$rtcp" --echo /echo/1.0.0 --no-holepunch \
    --json >"$tmp/priv.log" 2>&1 &
pids+=($!)
wait_event "$tmp/priv.log" reservation || echo "no reservation: $(tail -3 "$tmp/priv.log")"
priv=$(field "$tmp/priv.log" listening 'e["peerId"]')

# 3. A js-libp2p private node on the flare relay, and a js-libp2p relay
# (ws + TCP) with a flare private node on it.
interop=$(timeout 1200 "$root/scripts/interop-setup.sh" "$bdir") || interop=
if [ -n "$interop" ]; then
    jsnode=$(sed -n 1p <<<"$interop")
    jspeer=$(sed -n 2p <<<"$interop")
    timeout 110 "$jsnode" "$jspeer" --reserve "$rtcp" --echo /echo/1.0.0 --exit-after-ms 100000 \
        >"$tmp/jspriv.log" 2>"$tmp/jspriv.err" &
    pids+=($!)
    timeout 110 "$jsnode" "$jspeer" --websockets --relay --listen /ip4/127.0.0.1/tcp/0 \
        --listen /ip4/127.0.0.1/tcp/0/ws --exit-after-ms 100000 >"$tmp/jsrelay.log" 2>"$tmp/jsrelay.err" &
    pids+=($!)
    wait_event "$tmp/jsrelay.log" listening
    jrtcp=$(field "$tmp/jsrelay.log" listening '[a for a in e["listenAddrs"] if "/ws" not in a][0]')
    jrws=$(field "$tmp/jsrelay.log" listening '[a for a in e["listenAddrs"] if "/ws" in a][0]')
    "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$jrtcp" --echo /echo/1.0.0 --no-holepunch \
        --json >"$tmp/priv2.log" 2>&1 &
    pids+=($!)
    wait_event "$tmp/jspriv.log" reserved || echo "js node: no reservation: $(tail -3 "$tmp/jspriv.err")"
    wait_event "$tmp/priv2.log" reservation || echo "no reservation on the js relay: $(tail -3 "$tmp/priv2.log")"
    jspriv=$(field "$tmp/jspriv.log" listening 'e["peerId"]')
    priv2=$(field "$tmp/priv2.log" listening 'e["peerId"]')
    browser relayed "$rwss/p2p-circuit/p2p/$priv" "$rwss/p2p-circuit/p2p/$jspriv" \
        "$jrws/p2p-circuit/p2p/$priv2"
else
    echo "note: js-libp2p interop peer unavailable; relayed runs with js nodes skipped"
    browser relayed "$rwss/p2p-circuit/p2p/$priv"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
