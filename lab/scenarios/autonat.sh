#!/usr/bin/env bash
# Scenario: AutoNAT verdicts in the NAT lab with real flare processes.
#   AutoNAT servers on the public hosts relay, pub1, pub2 (one set per kind:
#   "flare" = flare listen, v1+v2, port 4001; "js" = js-libp2p v1 with the
#   TEST-NET hook, port 4002; "js-stock" = js-libp2p v1 without it, 4003;
#   "js-v2" = js-libp2p AutoNAT v2 (@libp2p/autonat-v2) with the hook, 4004),
#   and per kind a `flare listen --connect` node behind router a, behind
#   router b and (PUBLIC=1) on the public host pub3, each connected to that
#   kind's three servers only ("flare-one": the flare server on relay only).
#   With flare servers every node must reach the right verdict (pub3:
#   public; a, b: private) within WINDOW s of its start; the same with
#   "js-v2" servers (real v2 dial-backs, dial data). js-libp2p v1
#   servers never really dial back (they reuse the requester's connection,
#   then close it before answering), so with "js" servers a node may stay
#   unknown but never reach a wrong verdict; with "js-stock" servers (they
#   refuse TEST-NET dial-backs: E_DIAL_REFUSED) no node may reach any.
# Usage: autonat.sh [lab.sh up options]   (default: a=eim/drop, b=sym/reset)
# Env: FLARE_BIN (default build/flare), SERVERS (default "flare js js-stock"),
#   PUBLIC (1: a node on pub3; default 1), WINDOW (default 30 s), BOOT_MS
#   (the nodes' --autonat-boot-delay; default 2000), QUIET=1 (no timeline).
# Prints one line per node (verdict, time), exits 0 when all are right.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
kinds=${SERVERS:-flare js js-stock}
window=${WINDOW:-30}
boot_ms=${BOOT_MS:-2000}
[ $# -gt 0 ] || set -- --a-nat eim --a-inbound drop --b-nat sym --b-inbound reset --delay-ms 10

declare -A PORT=([flare]=4001 [js]=4002 [js-stock]=4003 [js-v2]=4004 [flare-one]=4001)
declare -A NODE_PORT=([flare]=4101 [js]=4102 [js-stock]=4103 [flare-one]=4104 [js-v2]=4105)
servers="relay pub1 pub2"
sites="a b"
[ "${PUBLIC:-1}" = 1 ] && sites="a b pub3"

node_bin="" peer=""
if [[ " $kinds " == *" js"* ]]; then
    if paths=$("$root/scripts/interop-setup.sh" "$(dirname "$flare")" 2>/dev/null); then
        node_bin=$(sed -n 1p <<<"$paths")
        peer=$(sed -n 2p <<<"$paths")
    else
        echo "skip: js servers (the js-libp2p peer cannot be installed: no npm registry)"
        kinds=$(tr ' ' '\n' <<<"$kinds" | grep -v '^js' | tr '\n' ' ')
        [ -n "${kinds// /}" ] || exit 77
    fi
fi

lab_up "$@"
seed_of() { printf '%s' "$1" | sha256sum | cut -c1-64; } # deterministic server keys

srv_kinds=$(tr ' ' '\n' <<<"$kinds" | sed 's/^flare-one$/flare/' | sort -u | tr '\n' ' ')
srv_of() { if [ "$1" = flare-one ]; then echo relay; else echo "$servers"; fi; }
srv_kind() { if [ "$1" = flare-one ]; then echo flare; else echo "$1"; fi; }

# Servers: every public host runs one server of each kind.
for k in $srv_kinds; do
    for s in $servers; do
        seed=$(seed_of "$k-$s")
        listen=/ip4/$(eval echo "\$FLARE_LAB_IP_$s")/tcp/${PORT[$k]}
        case $k in
        flare)
            lab_start "$s" "srv-$k-$s" "$flare" listen --listen "$listen" --seed "$seed" \
                --allow-testnet --json
            ;;
        js)
            lab_start "$s" "srv-$k-$s" env DEBUG='libp2p:auto-nat*' \
                FLARE_JS_PUBLIC_CIDRS=203.0.113.0/24,198.51.100.0/24,192.0.2.0/24 \
                "$node_bin" --import "$(dirname "$peer")/public-cidrs.mjs" "$peer" --autonat \
                --listen "$listen" --seed "$seed" --exit-after-ms 240000
            ;;
        js-v2)
            # Its own v2 client asks our nodes about its addresses too;
            # harmless (flare serves v2) and it prints every v2 message.
            lab_start "$s" "srv-$k-$s" env DEBUG='libp2p:auto-nat-v2*' \
                FLARE_JS_PUBLIC_CIDRS=203.0.113.0/24,198.51.100.0/24,192.0.2.0/24 \
                "$node_bin" --import "$(dirname "$peer")/public-cidrs.mjs" "$peer" --autonat-v2 \
                --listen "$listen" --seed "$seed" --exit-after-ms 240000
            ;;
        js-stock)
            lab_start "$s" "srv-$k-$s" env DEBUG='libp2p:auto-nat*' "$node_bin" "$peer" --autonat \
                --listen "$listen" --seed "$seed" --exit-after-ms 240000
            ;;
        esac
    done
done
for k in $srv_kinds; do
    for s in $servers; do
        lab_wait_event "$LAB_LOGS/srv-$k-$s.log" listening 30 >/dev/null || {
            echo "server $k on $s did not start"
            cat "$LAB_LOGS/srv-$k-$s.err" >&2
            exit 1
        }
    done
done

# Nodes: one per site and kind, connected to that kind's servers only.
for k in $kinds; do
    connect=()
    for s in $(srv_of "$k"); do
        pid=$(lab_json "$("$flare" id --seed "$(seed_of "$(srv_kind "$k")-$s")" --json)" peerId)
        connect+=(--connect "/ip4/$(eval echo "\$FLARE_LAB_IP_$s")/tcp/${PORT[$k]}/p2p/$pid")
    done
    for site in $sites; do
        date +%s.%N >"$LAB_LOGS/node-$k-$site.t0"
        lab_start "$site" "node-$k-$site" "$flare" listen --listen "/ip4/0.0.0.0/tcp/${NODE_PORT[$k]}" \
            "${connect[@]}" --autonat-boot-delay "$boot_ms" --allow-testnet --json
    done
done

# Wait: until every node with a verdict to reach has one, then (for js and
# js-stock nodes, which may or must stay unknown) until the window has passed.
want_verdicts() {
    local k s n=0
    for k in $kinds; do
        case $k in js | js-stock) continue ;; esac
        for s in $sites; do
            grep -q '"event":"reachability"' "$LAB_LOGS/node-$k-$s.log" 2>/dev/null || n=$((n + 1))
        done
    done
    echo $n
}
end=$(($(date +%s) + window + 2))
while [ "$(date +%s)" -lt "$end" ] && [ "$(want_verdicts)" -gt 0 ]; do sleep 0.2; done
if [[ " $kinds " == *" js "* || " $kinds " == *" js-stock "* ]]; then
    while [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
fi
sleep 1 # a late contrary event would show up here

declare -A nat=([pub3]=public)
for s in a b; do
    nat[$s]="$(eval echo "\$FLARE_LAB_NAT_$s/\$FLARE_LAB_INBOUND_$s")"
done
python3 - "$LAB_LOGS" "$window" "${QUIET:-0}" "$kinds" "$sites" \
    "a=${nat[a]}" "b=${nat[b]}" "pub3=${nat[pub3]}" <<'PY'
import json, os, sys
logs, window, quiet = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
kinds, sites = sys.argv[4].split(), sys.argv[5].split()
nat = dict(a.split("=", 1) for a in sys.argv[6:])
def events(name):
    out = []
    try:
        for line in open(os.path.join(logs, name + ".log")):
            try: out.append(json.loads(line))
            except ValueError: pass
    except OSError: pass
    return out
def text(name):
    try: return open(os.path.join(logs, name)).read()
    except OSError: return ""
ok = True
print("autonat verdicts (window %.0f s from each node's start):" % window)
for k in kinds:
    srv = ["srv-%s-%s" % (k, s) for s in ("relay", "pub1", "pub2")]
    for site in sites:
        name = "node-%s-%s" % (k, site)
        t0 = float(text(name + ".t0") or 0)
        ev = [e for e in events(name) if e.get("event") == "reachability" and e.get("family") == 4]
        right = "public" if site == "pub3" else "private"
        want = {"js-stock": "unknown", "js": right + "|unknown"}.get(k, right)
        first = ev[0] if ev else None
        got = first["state"] if first else "unknown"
        dt = (first["ts"] - t0) if first else None
        flips = [e["state"] for e in ev]
        good = got in want.split("|") and (dt is None or dt <= window) and \
            all(s == got for s in flips)
        # Address level (v2): the verdict's address agrees, none contradicts.
        astates = [a["state"] for a in (first or {}).get("addrs", [])]
        if first and (k.startswith("flare") or k == "js-v2"):
            good &= got in astates and all(a in (got, "unknown") for a in astates)
        conns = len({e["peerId"] for e in events(name) if e.get("event") == "identify"})
        when = ("after %5.1f s" % dt) if dt is not None else "no verdict   "
        line = "  %-5s %-11s %-9s servers: %-7s %-13s (%d identified) expected %-14s %s" % (
            site, nat.get(site, "?"), k, got, when, conns, want, "OK" if good else "WRONG")
        print(line)
        if not quiet and first and first.get("addrs"):
            for a in first["addrs"]:
                print("          address %s: %s" % (a["addr"], a["state"]))
        if len(flips) > 1:
            print("          later changes: %s" % " -> ".join(flips))
        ok &= good
    if k == "js-stock":
        refused = sum("refused to dial all multiaddrs" in text(s + ".err") for s in srv)
        print("  js-stock servers that refused a dial-back (E_DIAL_REFUSED): %d of 3" % refused)
        ok &= refused > 0
    if k == "js-v2":
        # What the js v2 servers did, from their message tap (stdout).
        out = [e for s in srv for e in events(s) if e.get("event") == "autonat-v2"]
        backs = sum(1 for e in out if e["dir"] == "out" and e["msg"] == "dialBack")
        data = sum(1 for e in out if e["dir"] == "out" and e["msg"] == "dialDataRequest")
        resp = {}
        for e in out:
            if e["dir"] == "out" and e["msg"] == "dialResponse":
                key = "%s/%s" % (e["status"], e["dialStatus"])
                resp[key] = resp.get(key, 0) + 1
        print("  js-v2 servers: %d dial-backs delivered, %d dial data requests, responses %s"
              % (backs, data, " ".join("%s x%d" % kv for kv in sorted(resp.items())) or "none"))
        # pub3's public verdict needs a real dial-back with its nonce.
        ok &= backs > 0 or "pub3" not in sites
    if k == "js":
        # What the js servers did (DEBUG=libp2p:auto-nat): "successfully
        # dialed" after finding our existing connection, for nodes behind a
        # NAT too; then the reply fails on the closed stream.
        js_log = "".join(text(s + ".err") for s in srv)
        claims = [l for l in js_log.splitlines() if "successfully dialed" in l]
        behind = [l for l in claims if "/ip4/198.51.100." in l or "/ip4/192.0.2." in l]
        print("  js servers: %d 'successfully dialed' claims (%d for nodes behind a router), "
              "%d replies lost on a closed stream" % (len(claims), len(behind),
              js_log.count("Cannot write to a stream that is closed")))
crashed = [f for f in os.listdir(logs) if f.endswith(".err") and not f.startswith("srv-js")
           and any(w in text(f) for w in ("Sanitizer", "runtime error", "Segmentation"))]
if crashed:
    print("crash reports in: %s" % " ".join(sorted(crashed)))
    ok = False
print("result: %s" % ("OK" if ok else "WRONG VERDICTS"))
sys.exit(0 if ok else 1)
PY
