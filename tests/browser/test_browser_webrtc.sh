#!/usr/bin/env bash
# A real browser (Debian's Chromium, headless, js-libp2p with @libp2p/webrtc
# bundled by esbuild) reaching flare over WebRTC, in a network namespace with
# a veth address (webrtc-lib.sh):
#  1. browser -> public flare node over /webrtc-direct/certhash/... (the
#     address of its `listening` event): identify, ping, a 1 KiB, a 256 KiB
#     and a 4 MiB echo, byte for byte (4 MiB: more than the send and
#     receive buffers, so both sides wait for room while the other reads);
#  2. browser -> private node over /p2p-circuit/webrtc: the browser reaches
#     a flare relay over ws, the private node holds a reservation on it (over
#     TCP); the browser's dial signals over the relayed connection and gets a
#     WebRTC connection that is not limited: identify, ping, a 1 KiB, a
#     256 KiB and a 4 MiB echo on it (more than the relay's 128 KiB circuit
#     limit, so they cannot have crossed the relay). The private node is a
#     flare node and, as the control, a js-libp2p node
#     (webrtc-p2p-listener.mjs). One browser run dials all three.
# Exit 0 pass, 1 fail, 77 skip (no root/namespaces, chromium or npm registry).
# shellcheck source=webrtc-lib.sh
source "$(dirname "$0")/webrtc-lib.sh"

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# judge NAME OUT KIND AGENT_PREFIX SIZES: the browser's line for one address.
# KIND direct: a webrtc-direct connection; p2p: the /p2p-circuit/webrtc one,
# unlimited, next to the limited relayed one it was signalled over.
judge() {
    local name=$1 out=$2 kind=$3 agent=$4 sizes=$5 line
    line=$(grep -m1 '"event":"browser"' "$out")
    if [ -z "$line" ]; then
        bad "$name: no result from the browser"
        tail -20 "$out.err"
        return
    fi
    if python3 - "$line" "$kind" "$agent" "$sizes" <<'EOF'; then
import json, sys
e, kind, agent = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
sizes = [int(x) for x in sys.argv[4].split(",")]
want = ["connected", "identify", "ping", "echo"]
why = []
if not e["ok"] or e.get("error"): why.append("error: %s" % e.get("error"))
if e["steps"] != want: why.append("steps %s" % e["steps"])
if [(x["size"], x["ok"]) for x in e.get("echoes", [])] != [(n, True) for n in sizes]:
    why.append("echoes %s" % e.get("echoes"))
if not str(e.get("agentVersion")).startswith(agent): why.append("agent %s" % e.get("agentVersion"))
if e.get("limited") is not False: why.append("limited")
ra = e.get("remoteAddr", "")
if kind == "direct" and "/webrtc-direct/certhash/" not in ra: why.append("remote " + ra)
if kind == "p2p":
    if "/p2p-circuit/webrtc/" not in ra: why.append("remote " + ra)
    if e.get("connStatus") != "open": why.append("connection %s" % e.get("connStatus"))
if why:
    print("; ".join(why) + "\n" + json.dumps(e)[:3000])
    sys.exit(1)
EOF
        ok "$name: $(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print("identify (%s), ping %d ms, echoes %s KiB, dial %d ms%s" % (e["agentVersion"][:24], e["rttMs"], "+".join(str(x["size"] // 1024) for x in e["echoes"]), e["dialMs"], (", relayed->webrtc %d ms" % e["relayedToWebrtcMs"]) if "relayedToWebrtcMs" in e else ""))' "$line")"
    else
        bad "$name"
    fi
}
alive() { # NAME PID
    if kill -0 "$2" 2>/dev/null; then ok "$1 still running"; else bad "$1 exited"; fi
}

logged() { # LOG EVENT PYEXPR(e): some such event matches
    python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("event") == sys.argv[2] and eval(sys.argv[3]): sys.exit(0)
sys.exit(1)' "$@"
}

# The nodes: a public flare node on webrtc-direct; a flare relay (ws for the
# browser, TCP for the private nodes); a flare private node and a js-libp2p
# one (the control), both reserving on the relay. One browser run then
# dials them all, each from a fresh page.
start "$tmp/pub.log" "$flare" listen --listen "/ip4/$ip/udp/0/webrtc-direct" --echo /echo/1.0.0 \
    --no-holepunch --json
pubpid=${pids[-1]}
start "$tmp/relay.log" "$flare" relay --listen "/ip4/$ip/tcp/0" --listen "/ip4/$ip/tcp/0/ws" --json
rtcp=$(listening "$tmp/relay.log" '"/ws" not in a')
rws=$(listening "$tmp/relay.log" '"/ws" in a')
[ -n "$rtcp" ] && [ -n "$rws" ] || { bad "flare relay did not start"; cat "$tmp/relay.log"; }
start "$tmp/priv.log" "$flare" listen --listen "/ip4/$ip/tcp/0" --relay "$rtcp" --echo /echo/1.0.0 \
    --no-holepunch --json
privpid=${pids[-1]}
if [ -n "$jsnode" ]; then
    start "$tmp/jspriv.log" "$jsnode" "$jsdir/webrtc-p2p-listener.mjs" --reserve "$rtcp" --echo /echo/1.0.0
else
    echo "note: js-libp2p interop peer unavailable; the js control is skipped"
fi
addrs=() kinds=()
direct=$(listening "$tmp/pub.log" '"/webrtc-direct/certhash/" in a')
if [ -n "$direct" ]; then
    addrs+=("$direct")
    kinds+=(direct)
else
    bad "flare webrtc-direct listener: no address"
    cat "$tmp/pub.log"
fi
if wait_event "$tmp/priv.log" reservation; then
    addrs+=("$rws/p2p-circuit/webrtc/p2p/$(field "$tmp/priv.log" listening 'e["peerId"]')")
    kinds+=(flare)
else
    bad "flare private node: no reservation"
    tail -5 "$tmp/priv.log"
fi
if [ -n "$jsnode" ]; then
    if wait_event "$tmp/jspriv.log" reserved; then
        addrs+=("$(field "$tmp/jspriv.log" reserved '[a for a in e["addrs"] if "/ws/" in a and "/p2p-circuit/webrtc/" in a][0]')")
        kinds+=(js)
    else
        bad "js-libp2p private node: no reservation"
        tail -5 "$tmp/jspriv.log"
    fi
fi

if [ ${#addrs[@]} -gt 0 ]; then
    args=()
    for a in "${addrs[@]}"; do args+=(--addr "$a"); done
    sizes=1024,262144,4194304
    browser_json "$tmp/b.out" --sizes $sizes "${args[@]}"
    sleep 0.3
    for i in "${!addrs[@]}"; do
        out=$tmp/b.$i
        grep '"event":"browser"' "$tmp/b.out" | sed -n "$((i + 1))p" >"$out"
        cp "$tmp/b.out.err" "$out.err"
        case ${kinds[$i]} in
        direct)
            judge "browser -> flare /webrtc-direct" "$out" direct flare/ $sizes
            if logged "$tmp/pub.log" connected 'e["transport"] == "webrtc-direct" and e["direction"] == "inbound"'; then
                ok "flare node: inbound webrtc-direct connection"
            else
                bad "flare node saw no inbound webrtc-direct connection"
            fi
            alive "flare webrtc-direct node" "$pubpid"
            ;;
        js)
            judge "browser -> js-libp2p private node over /p2p-circuit/webrtc (control)" "$out" p2p \
                flare-interop-js-webrtc-p2p $sizes
            ;;
        flare)
            judge "browser -> flare private node over /p2p-circuit/webrtc" "$out" p2p flare/ $sizes
            # It announced the address (identify), and took a WebRTC connection.
            if python3 -c 'import json,sys
e = json.loads(open(sys.argv[1]).read())
want = e["addr"].rsplit("/p2p/", 1)[0]
sys.exit(0 if any(a.startswith(want) for a in e.get("listenAddrs", [])) else 1)' "$out"; then
                ok "flare private node announces its /p2p-circuit/webrtc address (identify)"
            else
                bad "flare private node does not announce $(tail -c 400 "$out")"
            fi
            if logged "$tmp/priv.log" connected \
                'e["transport"] == "webrtc" and e["security"] == "dtls" and e["direction"] == "inbound"'; then
                ok "flare private node: inbound webrtc connection (dtls)"
            else
                bad "flare private node saw no inbound webrtc connection"
            fi
            alive "flare private node" "$privpid"
            ;;
        esac
    done
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
