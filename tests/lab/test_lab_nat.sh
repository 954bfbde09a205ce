#!/usr/bin/env bash
# shellcheck disable=SC2154 # FLARE_LAB_* come from the topology that lab_up sources
# Self-test of the flare NAT lab: for each NAT type, the external mapping
# seen by two servers, the answer to unsolicited inbound traffic, TCP
# simultaneous open (what DCUtR relies on) and the RTT over delay links.
# Exit 0 pass, 1 fail, 77 skipped (not root / no netns). Every wait is bounded.
set -uo pipefail

SRC=${FLARE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
[ "$(id -u)" -eq 0 ] || { echo "SKIP: needs root"; exit 77; }
for tool in ip nft python3 timeout flock; do
    command -v $tool >/dev/null || { echo "SKIP: needs $tool"; exit 77; }
done

# A prefix of our own, so parallel runs (other worktrees) never collide; and a
# lock so they do not compete for CPU and blur the RTT measurements.
export FLARE_LAB_PREFIX="flr-t$(($$ % 100000))-"
ip netns add "${FLARE_LAB_PREFIX}chk" 2>/dev/null || { echo "SKIP: 'ip netns add' fails"; exit 77; }
ip netns del "${FLARE_LAB_PREFIX}chk"
exec 9>/run/lock/flare-lab.lock
flock -w 300 9 || echo "warning: lab lock busy for 300 s, running anyway"

# shellcheck source=../../lab/lib.sh
source "$SRC/lab/lib.sh"
FAILS=0
ok() { echo "ok   - $*"; }
bad() { echo "FAIL - $*"; FAILS=$((FAILS + 1)); }
check() { # check DESC EXPECTED ACTUAL
    if [ "$2" = "$3" ]; then ok "$1 ($3)"; else bad "$1: expected '$2', got '$3'"; fi
}
SERVERS=203.0.113.11:7000,203.0.113.12:7000

start_echo() {
    lab_start pub1 echo1 python3 "$LAB_PROBE" echo-server --port 7000
    lab_start pub2 echo2 python3 "$LAB_PROBE" echo-server --port 7000
    lab_wait_event "$LAB_LOGS/echo1.log" listening 10 >/dev/null || bad "echo server pub1"
    lab_wait_event "$LAB_LOGS/echo2.log" listening 10 >/dev/null || bad "echo server pub2"
}

# mapping NODE PROTO LPORT -> "seen1 seen2"
mapping() {
    local line
    line=$(lab_probe "$1" mapping --servers "$SERVERS" --proto "$2" --lport "$3")
    python3 -c 'import json,sys; print(*json.loads(sys.argv[1])["seen"])' "$line" 2>/dev/null
}

# expect_mapping NODE PROTO LPORT KIND: KIND eim|fw (same ip:port, known) or sym.
expect_mapping() {
    local node=$1 proto=$2 lport=$3 kind=$4 s1 s2 pub
    read -r s1 s2 <<<"$(mapping "$node" "$proto" "$lport")"
    pub=$(eval echo "\$FLARE_LAB_PUBIP_$node")
    case $kind in
    eim | fw)
        check "$kind $node/$proto: pub1 sees the preserved port" "$pub:$lport" "$s1"
        check "$kind $node/$proto: pub2 sees the same mapping" "$s1" "$s2"
        ;;
    sym)
        if [ -n "$s1" ] && [ -n "$s2" ] && [ "${s1%:*}" = "$pub" ] && [ "${s2%:*}" = "$pub" ] \
            && [ "$s1" != "$s2" ]; then
            ok "sym $node/$proto: a port per destination ($s1 vs $s2)"
        else
            bad "sym $node/$proto: expected two different $pub ports, got '$s1' '$s2'"
        fi
        ;;
    esac
}

# unsolicited NODE PROTO PORT EXPECT: pub1 contacts NODE's public address.
unsolicited() {
    local node=$1 proto=$2 port=$3 want=$4 line pub
    pub=$(eval echo "\$FLARE_LAB_PUBIP_$node")
    line=$(lab_probe pub1 connect "$pub" "$port" --proto "$proto" --timeout 2)
    check "unsolicited $proto to $node ($pub:$port)" "$want" "$(lab_json "$line" result)"
}

# simopen: a and b dial each other's public ip:port from their bound ports
# at the same wall-clock instant. Prints "resA resB".
simopen() {
    local pa=$1 pb=$2 at la lb
    at=$(python3 -c 'import time; print(time.time() + 1.5)')
    lab_probe a simopen --lport "$pa" --peer "$FLARE_LAB_PUBIP_b:$pb" --at "$at" \
        >"$LAB_LOGS/simopen-a.log" &
    local pid=$!
    lb=$(lab_probe b simopen --lport "$pb" --peer "$FLARE_LAB_PUBIP_a:$pa" --at "$at")
    wait "$pid"
    la=$(cat "$LAB_LOGS/simopen-a.log")
    echo "$(lab_json "$la" result) $(lab_json "$lb" result)"
}

expect_simopen() { # expect_simopen ok|fail TRIES DESC
    local want=$1 tries=$2 desc=$3 i r
    for i in $(seq "$tries"); do
        r=$(simopen $((5000 + i * 10)) $((5001 + i * 10)))
        if [ "$r" = "ok ok" ]; then
            [ "$want" = ok ] && { ok "$desc: simultaneous open succeeded (try $i)"; return; }
            bad "$desc: simultaneous open succeeded but must fail"
            return
        fi
        echo "     try $i: $r"
    done
    if [ "$want" = fail ]; then
        ok "$desc: simultaneous open failed $tries times, as it must"
    else
        bad "$desc: simultaneous open never succeeded in $tries tries"
    fi
}

# expect_rtt NODE WANT_MS: median UDP RTT to pub1 within +-10 ms.
expect_rtt() {
    local line med
    line=$(lab_probe "$1" rtt 203.0.113.11 7000 --count 10)
    med=$(lab_json "$line" median_ms)
    if python3 -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 10)' \
        "$med" "$2" 2>/dev/null; then
        ok "rtt $1 -> pub1: configured $2 ms, measured median $med ms ($line)"
    else
        bad "rtt $1 -> pub1: configured $2 ms, measured '$med' ($line)"
    fi
}

fw_inbound() { # fw_inbound NODE PROTO PORT EXPECT: the filter, not the host, answers
    local node=$1 proto=$2 port=$3 want=$4
    lab_start "$node" "listen-$node-$proto" python3 "$LAB_PROBE" listen --port "$port" \
        --proto "$proto" --timeout 8
    lab_wait_event "$LAB_LOGS/listen-$node-$proto.log" listening 10 >/dev/null
    unsolicited "$node" "$proto" "$port" "$want"
    if grep -q inbound "$LAB_LOGS/listen-$node-$proto.log"; then
        bad "fw $node/$proto: the listener saw unsolicited traffic"
    fi
    lab_stop "listen-$node-$proto"
}

scenario() {
    echo "# scenario: $*"
    lab_stop_all
    "$LAB_SH" down >/dev/null 2>&1
    lab_up "$@" || { bad "lab.sh up $*"; return 1; }
    start_echo
}

T0=$(date +%s)
"$LAB_SH" down >/dev/null 2>&1 # leftovers of a crashed run with this prefix

# 1. Both eim (port preservation), a drops and b resets unsolicited inbound.
if scenario --a-nat eim --b-nat eim --a-inbound drop --b-inbound reset \
    --a-delay-ms 25 --b-delay-ms 50; then
    expect_mapping a udp 4001 eim
    expect_mapping a tcp 4002 eim
    expect_mapping b udp 4001 eim
    expect_mapping b tcp 4002 eim
    unsolicited a tcp 4002 timeout
    unsolicited a udp 4001 timeout
    unsolicited b tcp 4002 refused
    unsolicited b udp 4001 refused
    expect_rtt a 50
    expect_rtt b 100
    expect_simopen ok 4 "eim/eim"
fi

# 2. Both symmetric: a port per destination; hole punching must fail.
if scenario --a-nat sym --b-nat sym --a-inbound reset --b-inbound drop --delay-ms 10; then
    expect_mapping a udp 4001 sym
    expect_mapping a tcp 4002 sym
    expect_mapping b udp 4001 sym
    unsolicited a tcp 4002 refused
    unsolicited a udp 4001 refused
    unsolicited b tcp 4002 timeout
    expect_rtt a 20
    expect_simopen fail 2 "sym/sym"
fi

# 3. Firewall only: public addresses, stateful filter.
if scenario --a-nat fw --b-nat fw --a-inbound drop --b-inbound reset --delay-ms 15; then
    expect_mapping a udp 4001 fw
    expect_mapping a tcp 4002 fw
    fw_inbound a tcp 6000 timeout
    fw_inbound a udp 6001 timeout
    fw_inbound b tcp 6000 refused
    fw_inbound b udp 6001 refused
    expect_simopen ok 4 "fw/fw"
fi

lab_down
left=$(ip netns list | grep -c "^$FLARE_LAB_PREFIX" || true)
check "lab.sh down removed every namespace" 0 "$left"
echo "# $FAILS failure(s) in $(($(date +%s) - T0)) s"
[ "$FAILS" -eq 0 ]
