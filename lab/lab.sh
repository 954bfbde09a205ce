#!/usr/bin/env bash
# flare NAT lab: network namespaces, nftables NAT routers, delayed links.
#
#   lab.sh up [--a-nat eim|sym|fw] [--b-nat eim|sym|fw] [--inbound drop|reset]
#             [--a-inbound drop|reset] [--b-inbound drop|reset]
#             [--delay-ms MS] [--a-delay-ms MS] [--b-delay-ms MS] [--relay-delay-ms MS]
#             [--loss-pct P] [--a-loss-pct P] [--b-loss-pct P] [--loss-seed N]
#             [--ipv6]   dual stack: IPv6 (2001:db8::/32) next to IPv4; each
#                        router is a stateful IPv6 firewall (no NAT66) with
#                        the same inbound policy as its IPv4 side
#   lab.sh down [--all]        remove this prefix's lab (or every flr-* lab)
#   lab.sh linkstats a|b       a delay link's counters (JSON: forwarded, lost)
#   lab.sh loss a|b PCT [SEED] restart a delay link with another loss rate
#   lab.sh exec NODE CMD...    run CMD in NODE's namespace
#   lab.sh env | json          print the topology of the running lab
#   lab.sh nft NODE            print a router's nftables ruleset
#
# Environment: FLARE_LAB_PREFIX (default "flr-", must start with "flr-"),
# FLARE_LAB_STATE (default /run/flare-lab/<prefix>), FLARE_DELAYLINK (path
# to the flare-delaylink binary; built with cc into the state dir if unset).
# Exit code 77 means "cannot run here" (not root, no netns): ctest skips.
# Only TEST-NET and RFC1918 addresses, only inside namespaces created here.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
P=${FLARE_LAB_PREFIX:-flr-}
STATE=${FLARE_LAB_STATE:-/run/flare-lab/${P%-}}

die() { echo "lab.sh: $*" >&2; exit 1; }
skip() { echo "lab.sh: SKIP: $*" >&2; exit 77; }

case $P in flr-*) ;; *) die "FLARE_LAB_PREFIX must start with flr- (got '$P')" ;; esac
[ ${#P} -le 12 ] || die "FLARE_LAB_PREFIX too long (max 12 chars)"

require_root() {
    [ "$(id -u)" -eq 0 ] || skip "needs root (network namespaces, veth, nftables)"
    command -v ip >/dev/null || skip "iproute2 'ip' not found"
    command -v nft >/dev/null || skip "nftables 'nft' not found"
    ip netns list >/dev/null 2>&1 || skip "'ip netns' unavailable"
}

# --- topology constants -----------------------------------------------------
# internet: bridge 203.0.113.0/24 for public hosts; one /30 per router uplink
# (198.51.100.0/30 for A, .4/30 for B); fw LANs are routed TEST-NET-1 /28s.
declare -A PUB_IP=([relay]=203.0.113.10 [pub1]=203.0.113.11 [pub2]=203.0.113.12
    [pub3]=203.0.113.13)
declare -A WAN_INET=([a]=198.51.100.1 [b]=198.51.100.5)
declare -A WAN_IP=([a]=198.51.100.2 [b]=198.51.100.6)
declare -A NAT_LAN=([a]=10.0.1 [b]=10.0.2)          # /24, router .1, host .2
declare -A FW_LAN=([a]=192.0.2.0 [b]=192.0.2.16)    # /28, router +1, host +2
PUB_NODES="relay pub1 pub2 pub3"
# IPv6 (--ipv6): internet 2001:db8::/64, uplinks 2001:db8:ff0X::/64, site
# LANs 2001:db8:X::/64 routed to their routers (firewalls, no NAT66).
declare -A PUB_IP6=([relay]=2001:db8::10 [pub1]=2001:db8::11 [pub2]=2001:db8::12
    [pub3]=2001:db8::13)
PRIV_NODES="a b"

ns() { echo "${P}$1"; }
nsx() { local n=$1; shift; ip netns exec "$(ns "$n")" "$@"; }
plus() { local a=${1%.*} l=${1##*.}; echo "$a.$((l + $2))"; }

# --- down -------------------------------------------------------------------
kill_ns_pids() { # processes inside our namespaces were all started by the lab
    local n=$1 pids
    pids=$(ip netns pids "$n" 2>/dev/null || true)
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -TERM $pids 2>/dev/null || true
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$n" 2>/dev/null || true)
        [ -z "$pids" ] && return 0
        sleep 0.1
    done
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
}

lab_down() {
    local pat=$P n
    [ "${1:-}" = "--all" ] && pat=flr-
    for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
        case $n in "$pat"*) kill_ns_pids "$n"; ip netns del "$n" 2>/dev/null || true ;; esac
    done
    # veths are created inside the namespaces, but a crash could in theory
    # leave one in the root namespace: remove only our own flr-* names.
    for n in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
        case $n in flr-*) ip link del "$n" 2>/dev/null || true ;; esac
    done
    if [ "${1:-}" = "--all" ]; then rm -rf /run/flare-lab; else rm -rf "$STATE"; fi
}

# --- up ---------------------------------------------------------------------
mkns() {
    local n; n=$(ns "$1")
    ip netns add "$n"
    nsx "$1" ip link set lo up
    # Without --ipv6 no IPv6 at all; with it, static addresses only (no DAD
    # delay, no router solicitations or autoconfiguration).
    if [ -d /proc/sys/net/ipv6 ] && [ "${IPV6:-0}" = 1 ]; then
        nsx "$1" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.all.accept_ra=0 net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.all.autoconf=0 net.ipv6.conf.default.autoconf=0
    elif [ -d /proc/sys/net/ipv6 ]; then
        nsx "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
}

# veth NODE1 IF1 NODE2 IF2: a pair created inside NODE1's namespace.
veth() {
    ip -n "$(ns "$1")" link add "$2" type veth peer name "$4" netns "$(ns "$3")"
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$3")" link set "$4" up
}

find_delaylink() {
    if [ -n "${FLARE_DELAYLINK:-}" ]; then echo "$FLARE_DELAYLINK"; return; fi
    local b
    for b in "$LAB_DIR/../build/lab/flare-delaylink" "$STATE/flare-delaylink"; do
        [ -x "$b" ] && { echo "$b"; return; }
    done
    cc -std=c11 -O2 -D_GNU_SOURCE -o "$STATE/flare-delaylink" "$LAB_DIR/tools/flare-delaylink.c" \
        || die "cannot build flare-delaylink"
    echo "$STATE/flare-delaylink"
}

start_delaylink() { # router-id delay_ms loss_pct
    local r=$1 d=$2 loss=$3 bin log="$STATE/delaylink-$1.log" seed
    bin=$(find_delaylink)
    # One seed per link, so the two links do not drop in lockstep.
    seed=$((LOSS_SEED * 2 + $([ "$r" = a ] && echo 0 || echo 1)))
    nsx "dl$r" setsid "$bin" flr-dl0 flr-dl1 "$d" --loss-pct "$loss" --seed "$seed" \
        >"$log" 2>&1 </dev/null &
    for _ in $(seq 50); do
        grep -q '"event":"ready"' "$log" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$log" >&2
    die "flare-delaylink for router $r did not start"
}

# nft ruleset of a router: NAT mode, inbound policy, LAN prefix.
router_rules() {
    local nat=$1 inbound=$2 lan=$3 masq="" tcp_in udp_in
    case $nat in
    eim) masq="oifname \"flr-wan\" ip saddr $lan masquerade" ;;
    sym) masq="oifname \"flr-wan\" ip saddr $lan masquerade fully-random" ;;
    fw) ;;
    esac
    if [ "$inbound" = reset ]; then
        tcp_in="reject with tcp reset"
        udp_in="reject with icmp type port-unreachable"
    else
        tcp_in=drop
        udp_in=drop
    fi
    cat <<NFT
table ip flare {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        $masq
    }
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        iifname "flr-lan" oifname "flr-wan" accept
        iifname "flr-wan" meta l4proto tcp $tcp_in
        iifname "flr-wan" meta l4proto udp $udp_in
    }
    chain input {
        type filter hook input priority filter; policy accept;
        ct state established,related accept
        ct state invalid drop
        iifname "flr-wan" meta l4proto tcp $tcp_in
        iifname "flr-wan" meta l4proto udp $udp_in
    }
}
NFT
    [ "${IPV6:-0}" = 1 ] || return 0
    # IPv6: a stateful firewall, whatever the IPv4 side does (no NAT66).
    [ "$inbound" = reset ] && udp_in="reject with icmpv6 type port-unreachable"
    cat <<NFT
table ip6 flare6 {
    chain forward {
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        ct state invalid drop
        meta l4proto ipv6-icmp accept
        iifname "flr-lan" oifname "flr-wan" accept
        iifname "flr-wan" meta l4proto tcp $tcp_in
        iifname "flr-wan" meta l4proto udp $udp_in
    }
}
NFT
}

setup_inet() {
    mkns inet
    nsx inet sysctl -qw net.ipv4.ip_forward=1
    nsx inet ip link add flr-br0 type bridge
    nsx inet ip addr add 203.0.113.1/24 dev flr-br0
    nsx inet ip link set flr-br0 up
    local h
    for h in $PUB_NODES; do
        mkns "$h"
        if [ "$h" = relay ] && [ "$RELAY_DELAY" -gt 0 ]; then # the relay behind a delayed link
            mkns dlrelay
            veth "$h" flr-eth0 dlrelay flr-dl0
            veth inet "flr-$h" dlrelay flr-dl1
            start_delaylink relay "$RELAY_DELAY" 0
        else
            veth inet "flr-$h" "$h" flr-eth0
        fi
        nsx inet ip link set "flr-$h" master flr-br0
        nsx "$h" ip addr add "${PUB_IP[$h]}/24" dev flr-eth0
        nsx "$h" ip route add default via 203.0.113.1
        if [ "${IPV6:-0}" = 1 ]; then
            nsx "$h" ip -6 addr add "${PUB_IP6[$h]}/64" dev flr-eth0 nodad
            nsx "$h" ip -6 route add default via 2001:db8::1
        fi
    done
    if [ "${IPV6:-0}" = 1 ]; then
        nsx inet sysctl -qw net.ipv6.conf.all.forwarding=1
        nsx inet ip -6 addr add 2001:db8::1/64 dev flr-br0 nodad
    fi
}

setup_site6() { # id: the site's IPv6 uplink, LAN and routes
    local r=$1
    nsx "r$r" sysctl -qw net.ipv6.conf.all.forwarding=1
    nsx inet ip -6 addr add "2001:db8:ff0$r::1/64" dev "flr-r$r" nodad
    nsx "r$r" ip -6 addr add "2001:db8:ff0$r::2/64" dev flr-wan nodad
    nsx "r$r" ip -6 route add default via "2001:db8:ff0$r::1"
    nsx inet ip -6 route add "2001:db8:$r::/64" via "2001:db8:ff0$r::2"
    nsx "r$r" ip -6 addr add "2001:db8:$r::1/64" dev flr-lan nodad
    nsx "$r" ip -6 addr add "2001:db8:$r::2/64" dev flr-eth0 nodad
    nsx "$r" ip -6 route add default via "2001:db8:$r::1"
    SITE_IP6[$r]=2001:db8:$r::2
}

setup_site() { # id nat inbound delay loss
    local r=$1 nat=$2 inbound=$3 delay=$4 loss=$5 lan_net rip hip prefix_len
    mkns "r$r"
    mkns "$r"
    nsx "r$r" sysctl -qw net.ipv4.ip_forward=1
    if [ "$delay" -gt 0 ] || [ "$loss" != 0 ]; then
        mkns "dl$r"
        veth "r$r" flr-wan "dl$r" flr-dl0
        veth inet "flr-r$r" "dl$r" flr-dl1
        if [ "$loss" != 0 ]; then
            # No GSO super-frames into a lossy link: one drop = one packet.
            ip -n "$(ns "r$r")" link set flr-wan gso_max_segs 1
            ip -n "$(ns inet)" link set "flr-r$r" gso_max_segs 1
        fi
        start_delaylink "$r" "$delay" "$loss"
    else
        veth "r$r" flr-wan inet "flr-r$r"
    fi
    nsx inet ip addr add "${WAN_INET[$r]}/30" dev "flr-r$r"
    nsx "r$r" ip addr add "${WAN_IP[$r]}/30" dev flr-wan
    nsx "r$r" ip route add default via "${WAN_INET[$r]}"
    if [ "$nat" = fw ]; then
        lan_net="${FW_LAN[$r]}/28"
        rip=$(plus "${FW_LAN[$r]}" 1)
        hip=$(plus "${FW_LAN[$r]}" 2)
        nsx inet ip route add "$lan_net" via "${WAN_IP[$r]}"
        prefix_len=28
    else
        lan_net="${NAT_LAN[$r]}.0/24"
        rip="${NAT_LAN[$r]}.1"
        hip="${NAT_LAN[$r]}.2"
        prefix_len=24
    fi
    veth "r$r" flr-lan "$r" flr-eth0
    nsx "r$r" ip addr add "$rip/$prefix_len" dev flr-lan
    nsx "$r" ip addr add "$hip/$prefix_len" dev flr-eth0
    nsx "$r" ip route add default via "$rip"
    [ "${IPV6:-0}" = 1 ] && setup_site6 "$r"
    router_rules "$nat" "$inbound" "$lan_net" >"$STATE/nft-r$r.conf"
    nsx "r$r" nft -f "$STATE/nft-r$r.conf"
    SITE_IP[$r]=$hip
    if [ "$nat" = fw ]; then SITE_PUB[$r]=$hip; else SITE_PUB[$r]=${WAN_IP[$r]}; fi
}

write_topology() {
    local env="$STATE/topology.env" json="$STATE/topology.json" h first=1
    {
        echo "FLARE_LAB_PREFIX=$P"
        echo "FLARE_LAB_STATE=$STATE"
        echo "FLARE_LAB_NODES=\"$PUB_NODES $PRIV_NODES\""
        for h in $PUB_NODES; do
            echo "FLARE_LAB_NS_$h=$(ns "$h")"
            echo "FLARE_LAB_IP_$h=${PUB_IP[$h]}"
            [ "${IPV6:-0}" = 1 ] && echo "FLARE_LAB_IP6_$h=${PUB_IP6[$h]}"
            echo "FLARE_LAB_PUBIP_$h=${PUB_IP[$h]}"
        done
        for h in $PRIV_NODES; do
            echo "FLARE_LAB_NS_$h=$(ns "$h")"
            echo "FLARE_LAB_IP_$h=${SITE_IP[$h]}"
            [ "${IPV6:-0}" = 1 ] && echo "FLARE_LAB_IP6_$h=${SITE_IP6[$h]}"
            echo "FLARE_LAB_PUBIP_$h=${SITE_PUB[$h]}"
            echo "FLARE_LAB_NAT_$h=${NAT[$h]}"
            echo "FLARE_LAB_INBOUND_$h=${INB[$h]}"
            echo "FLARE_LAB_DELAY_MS_$h=${DELAY[$h]}"
            echo "FLARE_LAB_LOSS_PCT_$h=${LOSS[$h]}"
            echo "FLARE_LAB_ROUTER_$h=$(ns "r$h")"
        done
    } >"$env"
    {
        printf '{"prefix":"%s","state":"%s","nodes":{' "$P" "$STATE"
        for h in $PUB_NODES; do
            [ $first = 1 ] || printf ','
            first=0
            printf '"%s":{"ns":"%s","ip":"%s","public_ip":"%s","nat":"none"}' \
                "$h" "$(ns "$h")" "${PUB_IP[$h]}" "${PUB_IP[$h]}"
        done
        for h in $PRIV_NODES; do
            printf ',"%s":{"ns":"%s","ip":"%s","public_ip":"%s","nat":"%s","inbound":"%s",' \
                "$h" "$(ns "$h")" "${SITE_IP[$h]}" "${SITE_PUB[$h]}" "${NAT[$h]}" "${INB[$h]}"
            printf '"delay_ms":%s,"loss_pct":%s,"router_ns":"%s","router_wan_ip":"%s"}' \
                "${DELAY[$h]}" "${LOSS[$h]}" "$(ns "r$h")" "${WAN_IP[$h]}"
        done
        printf '}}\n'
    } >"$json"
}

lab_up() {
    declare -gA NAT=([a]=eim [b]=eim) INB=([a]=drop [b]=drop) DELAY=([a]=0 [b]=0)
    declare -gA LOSS=([a]=0 [b]=0) SITE_IP=() SITE_PUB=() SITE_IP6=()
    LOSS_SEED=1
    IPV6=0
    RELAY_DELAY=0
    while [ $# -gt 0 ]; do
        case $1 in
        --a-nat | --b-nat) NAT[${1:2:1}]=$2; shift ;;
        --inbound) INB[a]=$2; INB[b]=$2; shift ;;
        --a-inbound | --b-inbound) INB[${1:2:1}]=$2; shift ;;
        --delay-ms) DELAY[a]=$2; DELAY[b]=$2; shift ;;
        --a-delay-ms | --b-delay-ms) DELAY[${1:2:1}]=$2; shift ;;
        --relay-delay-ms) RELAY_DELAY=$2; shift ;;
        --loss-pct) LOSS[a]=$2; LOSS[b]=$2; shift ;;
        --a-loss-pct | --b-loss-pct) LOSS[${1:2:1}]=$2; shift ;;
        --loss-seed) LOSS_SEED=$2; shift ;;
        --ipv6) IPV6=1 ;;
        *) die "up: unknown option $1" ;;
        esac
        shift
    done
    [[ $RELAY_DELAY =~ ^[0-9]+$ ]] && [ "$RELAY_DELAY" -le 10000 ] || die "bad relay delay '$RELAY_DELAY'"
    local r
    for r in a b; do
        case ${NAT[$r]} in eim | sym | fw) ;; *) die "bad NAT type '${NAT[$r]}' (eim|sym|fw)" ;; esac
        case ${INB[$r]} in drop | reset) ;; *) die "bad inbound '${INB[$r]}' (drop|reset)" ;; esac
        if ! [[ ${DELAY[$r]} =~ ^[0-9]+$ ]] || [ "${DELAY[$r]}" -gt 10000 ]; then
            die "bad delay '${DELAY[$r]}' (0-10000 ms)"
        fi
        if ! [[ ${LOSS[$r]} =~ ^[0-9]{1,3}(\.[0-9]{1,4})?$ ]] ||
            ! awk -v p="${LOSS[$r]}" 'BEGIN { exit !(p <= 100) }'; then
            die "bad loss '${LOSS[$r]}' (0-100 %)"
        fi
        if awk -v p="${LOSS[$r]}" 'BEGIN { exit !(p == 0) }'; then LOSS[$r]=0; fi
    done
    [[ $LOSS_SEED =~ ^[0-9]{1,15}$ ]] || die "bad loss seed '$LOSS_SEED'"
    if ip netns list | awk '{print $1}' | grep -q "^$P"; then
        die "a lab with prefix $P exists: run 'lab.sh down' first"
    fi
    # shellcheck disable=SC2154 # rc is assigned inside the trap
    trap 'rc=$?; if [ $rc -ne 0 ]; then echo "lab.sh: up failed, cleaning up" >&2; lab_down; fi; exit $rc' EXIT
    trap 'exit 130' INT TERM
    mkdir -p "$STATE"
    setup_inet
    for r in $PRIV_NODES; do
        setup_site "$r" "${NAT[$r]}" "${INB[$r]}" "${DELAY[$r]}" "${LOSS[$r]}"
    done
    write_topology
    trap - EXIT INT TERM
    cat "$STATE/topology.env"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case $cmd in
up) require_root; lab_up "$@" ;;
down) require_root; lab_down "$@" ;;
exec)
    require_root
    [ $# -ge 2 ] || die "usage: lab.sh exec NODE CMD..."
    n=$1; shift
    exec ip netns exec "$(ns "$n")" "$@"
    ;;
env) cat "$STATE/topology.env" ;;
json) cat "$STATE/topology.json" ;;
nft) require_root; nsx "${1:?router node, e.g. ra}" nft list ruleset ;;
loss)
    # Restarts router r's delay link (same delay) with another loss rate; the
    # frames queued in the link at that moment are lost.
    require_root
    r=${1:?a or b}
    pct=${2:?loss percent}
    [ -f "$STATE/delaylink-$r.log" ] || die "router $r has no delay link (up with a delay or a loss)"
    if ! [[ $pct =~ ^[0-9]{1,3}(\.[0-9]{1,4})?$ ]] || ! awk -v p="$pct" 'BEGIN { exit !(p <= 100) }'; then
        die "bad loss '$pct' (0-100 %)"
    fi
    # shellcheck disable=SC1091
    source "$STATE/topology.env"
    d=$(eval echo "\$FLARE_LAB_DELAY_MS_$r")
    LOSS_SEED=${3:-1}
    kill_ns_pids "$(ns "dl$r")"
    if awk -v p="$pct" 'BEGIN { exit !(p > 0) }'; then
        ip -n "$(ns "r$r")" link set flr-wan gso_max_segs 1
        ip -n "$(ns inet)" link set "flr-r$r" gso_max_segs 1
    fi
    start_delaylink "$r" "$d" "$pct"
    sed -i "s/^FLARE_LAB_LOSS_PCT_$r=.*/FLARE_LAB_LOSS_PCT_$r=$pct/" "$STATE/topology.env"
    ;;
linkstats)
    # SIGUSR1 makes the link print its counters (it keeps running).
    require_root
    r=${1:?a or b}
    log="$STATE/delaylink-$r.log"
    [ -f "$log" ] || die "router $r has no delay link (no delay, no loss)"
    pids=$(ip netns pids "$(ns "dl$r")" 2>/dev/null || true)
    [ -n "$pids" ] || die "no delay link process for router $r"
    before=$(grep -c '"event":"stats"' "$log" || true)
    # shellcheck disable=SC2086
    kill -USR1 $pids
    for _ in $(seq 20); do
        [ "$(grep -c '"event":"stats"' "$log" || true)" -gt "$before" ] && break
        sleep 0.05
    done
    grep '"event":"stats"' "$log" | tail -n1
    ;;
*) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; [ -z "$cmd" ] || exit 2 ;;
esac
