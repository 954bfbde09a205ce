#!/usr/bin/env bash
# Scenario: port mapping in the NAT lab. Router a runs miniupnpd (UPnP IGD,
# NAT-PMP and PCP) next to its nftables NAT; a `flare listen --port-map`
# node behind it gets a mapping, the flare AutoNAT servers on pub1 and pub2
# dial the mapped address back (verdict: public), and a node on pub3 and one
# behind router b (same NAT type as a, no port mapping) dial it. Stopping
# the node deletes the mapping.
#   miniupnpd refuses to map while its WAN address is reserved (TEST-NET
#   included), so router a's uplink is re-addressed to 11.0.0.2/30 (inside
#   the lab's namespaces only; nothing leaves them).
# Usage: portmap.sh [--nat eim|sym] [--protocols LIST|off]
#   LIST is --port-map-protocols' (default: all, i.e. PCP first); "off" is
#   the control: no --port-map, so the node must stay private and
#   unreachable.
# Env: FLARE_BIN (default build/flare), WINDOW (default 30 s), QUIET=1.
# Prints the timeline and a result line; exits 0 when everything held,
# 77 when miniupnpd is missing.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
window=${WINDOW:-30}
nat=eim protocols=""
while [ $# -gt 0 ]; do
    case $1 in
    --nat) nat=$2; shift ;;
    --protocols) protocols=$2; shift ;;
    *) echo "portmap.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
command -v miniupnpd >/dev/null || { echo "skip: miniupnpd not installed (miniupnpd-nftables)"; exit 77; }

WAN=11.0.0.2 WAN_GW=11.0.0.1
lab_up --a-nat "$nat" --a-inbound drop --b-nat "$nat" --b-inbound drop
inet=${FLARE_LAB_PREFIX}inet
ra=$FLARE_LAB_ROUTER_a
# A public-looking uplink for router a.
ip -n "$inet" addr add "$WAN_GW/30" dev flr-ra
ip -n "$ra" addr flush dev flr-wan
ip -n "$ra" addr add "$WAN/30" dev flr-wan
ip -n "$ra" route replace default via "$WAN_GW"
# miniupnpd's chains (its own table), and the router lets in what they map.
ip netns exec "$ra" nft -f - <<'NFT'
table inet flare_upnp {
    chain forward { type filter hook forward priority -10; policy accept; jump miniupnpd; }
    chain miniupnpd { }
    chain prerouting { type nat hook prerouting priority dstnat; policy accept; jump prerouting_miniupnpd; }
    chain postrouting { type nat hook postrouting priority srcnat - 10; policy accept; jump postrouting_miniupnpd; }
    chain prerouting_miniupnpd { }
    chain postrouting_miniupnpd { }
}
NFT
ip netns exec "$ra" nft insert rule ip flare forward ct status dnat accept
cat >"$LAB_LOGS/miniupnpd.conf" <<EOF2
ext_ifname=flr-wan
listening_ip=flr-lan
port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
upnp_table_name=flare_upnp
upnp_nat_table_name=flare_upnp
min_lifetime=120
max_lifetime=86400
uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07d
allow 1024-65535 10.0.1.0/24 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF2
lab_start ra miniupnpd miniupnpd -f "$LAB_LOGS/miniupnpd.conf" -d -P "$LAB_LOGS/miniupnpd.pid"
sleep 0.5

seed_of() { printf '%s' "$1" | sha256sum | cut -c1-64; }
connect=()
for s in pub1 pub2; do
    seed=$(seed_of "portmap-$s")
    lab_start "$s" "srv-$s" "$flare" listen --listen "/ip4/$(eval echo "\$FLARE_LAB_IP_$s")/tcp/4001" \
        --seed "$seed" --allow-testnet --json
    pid=$(lab_json "$("$flare" id --seed "$seed" --json)" peerId)
    connect+=(--connect "/ip4/$(eval echo "\$FLARE_LAB_IP_$s")/tcp/4001/p2p/$pid")
done
for s in pub1 pub2; do
    lab_wait_event "$LAB_LOGS/srv-$s.log" listening 20 >/dev/null
done
pm=(--port-map)
[ -n "$protocols" ] && pm=(--port-map-protocols "$protocols")
control=0
[ "$protocols" = off ] && pm=() && control=1
node_seed=$(seed_of portmap-node)
node_id=$(lab_json "$("$flare" id --seed "$node_seed" --json)" peerId)
t0=$(date +%s.%N)
lab_start a node "$flare" listen --listen /ip4/0.0.0.0/tcp/4001 "${connect[@]}" "${pm[@]}" \
    --seed "$node_seed" --autonat-boot-delay 2000 --allow-testnet --json

log=$LAB_LOGS/node.log
ok=1
step() { lab_result "$1" "$2" "$3"; [ "$2" = ok ] || ok=0; }
if [ $control = 1 ]; then
    # Without port mapping the same node is private, and nobody reaches it.
    if lab_wait_q "$window" "$log" 'any(e.get("family") == 4 for e in ev("reachability"))'; then
        v=$(lab_q "$log" '[e["state"] for e in ev("reachability") if e.get("family") == 4][0]')
        [ "$v" = private ] && step "control: autonat verdict" ok "$v" ||
            step "control: autonat verdict" FAIL "$v"
    else
        step "control: autonat verdict" FAIL "none within $window s"
    fi
    n=$(lab_q "$log" 'len(ev("portmap"))')
    [ "$n" = 0 ] && step "control: no mapping" ok "0 portmap events" ||
        step "control: no mapping" FAIL "$n portmap events"
    if timeout 20 "$LAB_SH" exec pub3 "$flare" ping "/ip4/$WAN/tcp/4001/p2p/$node_id" -c 1 \
        --json >/dev/null 2>&1; then
        step "control: dial from pub3" FAIL "reached the node"
    else
        step "control: dial from pub3" ok "unreachable"
    fi
else
    if lab_wait_q "$window" "$log" 'any(e.get("what") == "mapped" for e in ev("portmap"))'; then
        m=$(lab_q "$log" '[e for e in ev("portmap") if e.get("what") == "mapped"][0]')
        ext=$(python3 -c 'import ast,sys; print(ast.literal_eval(sys.argv[1])["external"])' "$m")
        proto=$(python3 -c 'import ast,sys; print(ast.literal_eval(sys.argv[1])["protocol"])' "$m")
        dt=$(python3 -c 'import ast,sys; print("%.2f" % (ast.literal_eval(sys.argv[1])["ts"] - float(sys.argv[2])))' "$m" "$t0")
        step "mapping" ok "$proto $ext after $dt s"
    else
        step "mapping" FAIL "no portmap event within $window s"
        ext=""
    fi
    if lab_wait_q "$window" "$log" 'any(e.get("state") == "public" and e.get("family") == 4 for e in ev("reachability"))'; then
        r=$(lab_q "$log" '[e for e in ev("reachability") if e.get("state") == "public"][0]["ts"]')
        step "autonat verdict" ok "public after $(python3 -c "print('%.2f' % ($r - $t0))") s"
    else
        step "autonat verdict" FAIL "$(lab_q "$log" '[e.get("state") for e in ev("reachability")]')"
    fi
    if [ -n "$ext" ]; then
        if out=$(timeout 20 "$LAB_SH" exec pub3 "$flare" ping "$ext/p2p/$node_id" -c 1 --json 2>&1); then
            step "dial the mapped address from pub3" ok "$(grep -o '"rtt[^,}]*' <<<"$out" | head -1)"
        else
            step "dial the mapped address from pub3" FAIL "$(tail -n2 <<<"$out" | tr '\n' ' ')"
        fi
        # From behind router b (the same NAT type, no port mapping): with two
        # symmetric NATs hole punching cannot work, the mapped port can.
        if out=$(timeout 20 "$LAB_SH" exec b "$flare" ping "$ext/p2p/$node_id" -c 1 --json 2>&1); then
            step "dial it from behind router b ($nat)" ok "$(grep -o '"rtt[^,}]*' <<<"$out" | head -1)"
        else
            step "dial it from behind router b ($nat)" FAIL "$(tail -n2 <<<"$out" | tr '\n' ' ')"
        fi
    fi
    rules() { ip netns exec "$ra" nft list chain inet flare_upnp prerouting_miniupnpd 2>/dev/null | grep -c dnat || true; }
    before=$(rules)
    # Stop the node and give it time to delete (UPnP: a SOAP call from the exit path).
    pid=${LAB_PIDS[node]}
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    lab_stop node
    sleep 0.5
    after=$(rules)
    if [ "$before" -ge 1 ] && [ "$after" -eq 0 ]; then
        step "deleted at shutdown" ok "router rules $before -> $after"
    else
        step "deleted at shutdown" FAIL "router rules $before -> $after"
    fi
fi
lab_stop_all
crashed=$(lab_crashes)
[ -z "$crashed" ] || step "no crash" FAIL "$crashed"
printf '%s\n' "${LAB_ROWS[@]}"
if [ "$ok" = 1 ]; then echo "result: OK"; exit 0; fi
echo "result: FAILED"
[ "${QUIET:-0}" = 1 ] || { echo "--- node"; tail -n 20 "$log"; echo "--- miniupnpd"; tail -n 20 "$LAB_LOGS/miniupnpd.err"; }
exit 1
