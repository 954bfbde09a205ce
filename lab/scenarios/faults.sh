#!/usr/bin/env bash
# Scenario: faults. flare must never crash and never lose stream data
# silently: every fault ends in a completed transfer (byte for byte), a
# fallback to the relay, or a clear error event.
#   relay (public, data limit 4 MiB) <- B (behind rb) keeps a reservation and
#   serves /echo/1.0.0; A (behind ra) dials B's /p2p-circuit address.
# Cases (CASES="loss flush restart", the default, runs all three):
#   loss     rb's link drops 10 % of IP packets each way: B's reservation, A's
#            relayed connection, a 300 KB echo (byte for byte) and the hole
#            punch complete, or fail with an error event
#   flush    A and B are directly connected (punched); rb's conntrack table
#            is flushed (`conntrack -F`, loose pickup off, so the old flows'
#            packets are dropped as invalid, as on a rebooted NAT): A and B
#            see the connections die (yamux ping timeout), B re-reserves, A
#            reaches B again through the relay and punches again
#   restart  A holds a relayed (then direct) connection to B; B is killed
#            (SIGKILL) and started again with the same key: A sees the
#            connection end, a new dial reaches the restarted B, echo and
#            punch; plus a kill in the middle of an echo: A must report an
#            error or the complete payload, never a short one
# The relay killed mid-punch is tests/lab/test_lab_holepunch.sh (KILL_RELAY=1
# lab/scenarios/holepunch.sh); not repeated here.
# Usage: faults.sh [lab.sh up options] (default: eim/eim, 10 ms per link,
# 10 % loss on rb's link, which the later cases turn off).
# Env: FLARE_BIN, CASES, PAYLOAD_KB (default 300), LOSS (default 10: rb's loss
# in the default lab, and during the echo that B's kill interrupts),
# LOSS_STRICT=0 (the loss case also passes on a clear error, not only on a
# completed echo and punch: for heavy loss).
# shellcheck disable=SC2154 # FLARE_LAB_* come from lab_up (the topology)
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
CASES=${CASES:-loss flush restart}
LOSS=${LOSS:-10}
[ $# -gt 0 ] || set -- --a-nat eim --b-nat eim --delay-ms 10 --b-loss-pct "$LOSS"
lab_up "$@" || exit $?
L=$LAB_LOGS

seed() { printf "$1%.0s" $(seq 32); }
seed_r=$(seed a1) seed_b=$(seed b2) seed_a=$(seed c3)
pid_of() { lab_json "$("$flare" id --seed "$1" --json)" peerId; }
rid=$(pid_of "$seed_r") bid=$(pid_of "$seed_b") aid=$(pid_of "$seed_a")
# Keepalive 15 s (default 30): the flush case finds dead connections by the
# yamux ping, due 15 s after the last frame received, plus its 10 s timeout.
common=(--allow-testnet --keepalive 15 --json)
raddr=/ip4/$FLARE_LAB_IP_relay/tcp/4001/p2p/$rid
payload=$L/payload.bin
# Printable (base64) random bytes: the echo event stays valid JSON.
head -c $((${PAYLOAD_KB:-300} * 768)) /dev/urandom | base64 -w0 | head -c $((${PAYLOAD_KB:-300} * 1024)) >"$payload"
psize=$(stat -c %s "$payload")
psum=$(sha256sum <"$payload" | cut -c1-16)
T0=$(date +%s.%N)
el() { python3 -c "import time; print('%.1f' % (time.time() - $1))"; }

# ---- helpers -------------------------------------------------------------------------------
start_relay() {
    lab_start relay relay "$flare" relay --listen "/ip4/$FLARE_LAB_IP_relay/tcp/4001" \
        --seed "$seed_r" --relay-data 4194304 "${common[@]}"
    lab_wait_event "$L/relay.log" listening 20 >/dev/null
}
# start_b NAME: B, the private listener (always the same key).
start_b() {
    lab_start b "$1" "$flare" listen --listen /ip4/0.0.0.0/tcp/4001 --relay "$raddr" \
        --seed "$seed_b" --echo /echo/1.0.0 "${common[@]}"
}
# rsv_count LOG: how many reservations LOG has.
rsv_count() { lab_q "$1" 'len(ev("reservation"))'; }
baddr() { lab_q "$1" 'ev("reservation")[-1]["addr"]'; }
# A's processes each listen (and dial from) their own port: a new process
# reusing the last one's 4-tuple to the relay could meet its TIME_WAIT.
aport=4000
next_port() { aport=$((aport + 1)); }
# dial_echo NAME WAIT: A dials B through the relay, echoes the payload and
# waits up to WAIT s for the punch (foreground); status in $L/NAME.rc.
dial_echo() {
    next_port
    lab_exec a timeout 60 "$flare" dial "$(baddr "$L/$bname.log")" --listen "/ip4/0.0.0.0/tcp/$aport" \
        --seed "$seed_a" --echo /echo/1.0.0 --message-file "$payload" --wait-holepunch "$2" \
        "${common[@]}" >"$L/$1.log" 2>"$L/$1.err"
    echo $? >"$L/$1.rc"
}
echo_bytes() { lab_q "$L/$1.log" '([e.get("bytes") for e in ev("echo")] or [None])[-1]'; }
echo_ok() { [ "$(lab_q "$L/$1.log" 'any(e["ok"] and e["bytes"] == '"$psize"' for e in ev("echo"))')" = True ]; }
punched() { [ "$(lab_q "$L/$1.log" 'any(e["result"] == "direct" for e in ev("holepunch"))')" = True ]; }
# errors LOG: the error events / failure reasons in LOG, one line.
errors() {
    lab_q "$1" '"; ".join(sorted(set([e["where"] + ": " + e["error"] for e in ev("error")] +
        ["holepunch: " + str(e.get("reason")) for e in ev("holepunch") if e["result"] != "direct"] +
        ["disconnected: " + e["reason"] for e in ev("disconnected") if e["reason"] != "closed"]))) or "none"'
}

start_relay || { echo "relay did not start"; exit 1; }
bname=b
start_b b
if ! lab_wait_event "$L/b.log" reservation 30 >/dev/null; then
    lab_result "B reserves on the relay" FAIL "see $L/b.log"
    echo "faults scenario: B has no reservation"
    exit 1
fi

# ---- loss: packet loss on the router links (rb's 10 % by default) ---------------------------
# The links' loss as set by lab.sh up; the later cases turn it off.
loss0_a=$FLARE_LAB_LOSS_PCT_a loss0_b=$FLARE_LAB_LOSS_PCT_b
has_link() { [ "$(eval echo "\$FLARE_LAB_DELAY_MS_$1")" != 0 ] || [ "$(eval echo "\$loss0_$1")" != 0 ]; }
set_loss() { # set_loss ROUTER PCT: restart the router's link with that loss (if it has a link)
    if has_link "$1"; then "$LAB_SH" loss "$1" "$2" >/dev/null; fi
}
case_loss() {
    local t s rc st r what="loss a/b $loss0_a/$loss0_b %" soft=FAIL
    # Under heavy loss a clear error is an acceptable outcome (LOSS_STRICT=0).
    [ "${LOSS_STRICT:-1}" = 0 ] && soft=ok
    if [ "$loss0_a" = 0 ] && [ "$loss0_b" = 0 ]; then
        lab_result "loss: no lossy link (lab.sh up --a-loss-pct/--b-loss-pct)" skip ""
        return
    fi
    t=$(lab_q "$L/b.log" '"%.1f" % (ev("reservation")[0]["ts"] - ev("listening")[0]["ts"])')
    lab_result "$what: B reserves" ok "${t} s after B's start"
    s=$(date +%s.%N)
    dial_echo loss 30
    rc=$(cat "$L/loss.rc")
    if echo_ok loss; then
        lab_result "$what: relayed echo, byte for byte" ok \
            "$(echo_bytes loss) B back (sha256 ${psum}…) $(lab_q "$L/loss.log" '"%.2f s after the relayed connection" % (ev("echo")[-1]["ts"] - [e["ts"] for e in ev("connected") if "/p2p-circuit" in e["addr"]][0])')"
    elif [ "$rc" -ne 0 ] && [ "$(errors "$L/loss.log")" != none ]; then
        lab_result "$what: relayed echo, byte for byte" "$soft" \
            "error (rc $rc): $(errors "$L/loss.log")"
    else
        lab_result "$what: relayed echo, byte for byte" FAIL \
            "SILENT: rc $rc, $(echo_bytes loss) bytes"
    fi
    if punched loss && [ "$rc" -eq 0 ]; then
        lab_result "$what: hole punch (${FLARE_LAB_NAT_a}/${FLARE_LAB_NAT_b})" ok \
            "direct, attempt $(lab_q "$L/loss.log" 'ev("holepunch")[-1]["attempt"]'), $(el "$s") s for dial+echo+punch+ping"
    elif [ "$rc" -ne 0 ] && [ "$(errors "$L/loss.log")" != none ]; then
        lab_result "$what: hole punch (${FLARE_LAB_NAT_a}/${FLARE_LAB_NAT_b})" "$soft" \
            "clear error (rc $rc): $(errors "$L/loss.log")"
    else
        lab_result "$what: hole punch (${FLARE_LAB_NAT_a}/${FLARE_LAB_NAT_b})" FAIL "rc $rc, no error event"
    fi
    for r in a b; do
        [ "$(eval echo "\$loss0_$r")" = 0 ] && continue
        st=$("$LAB_SH" linkstats "$r")
        lab_result "$what: link $r drops (all traffic so far)" ok \
            "$(lab_q <(echo "$st") '"%d/%d frames out, %d/%d in" % (ev("stats")[0]["lost_ab"], ev("stats")[0]["lost_ab"] + ev("stats")[0]["fwd_ab"], ev("stats")[0]["lost_ba"], ev("stats")[0]["lost_ba"] + ev("stats")[0]["fwd_ba"])')"
    done
}

# ---- flush: rb's NAT state flushed under a direct connection --------------------------------
case_flush() {
    local before s t
    set_loss a 0
    set_loss b 0
    next_port
    lab_start a held "$flare" dial "$(baddr "$L/$bname.log")" --listen "/ip4/0.0.0.0/tcp/$aport" \
        --seed "$seed_a" --keep-alive "${common[@]}"
    if ! lab_wait_q 30 "$L/held.log" 'any(e["result"] == "direct" for e in ev("holepunch"))'; then
        lab_result "flush: A and B punched (before the flush)" FAIL "$(errors "$L/held.log")"
        lab_stop held
        return
    fi
    # DCUtR closes the relayed connection about 2 s after the punch: from then
    # on, the direct one is the only connection between A and B.
    lab_wait_q 10 "$L/held.log" 'any(e["peerId"] == "'"$bid"'" and e["ts"] > ev("holepunch")[-1]["ts"] for e in ev("disconnected"))' || true
    before=$(rsv_count "$L/$bname.log")
    # Loose pickup off: a packet in the middle of a flow no longer creates a
    # fresh entry (and mapping); it is invalid and dropped, like after a NAT reboot.
    lab_exec rb sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0
    s=$(date +%s.%N)
    lab_exec rb conntrack -F >/dev/null 2>&1
    # The nodes notice by themselves: nothing arrives after the flush, so
    # yamux pings within 15 s (--keepalive) and gives up 10 s later.
    if lab_wait_q 40 "$L/held.log" 'any(e["peerId"] == "'"$bid"'" and e["ts"] > '"$s"' and e["reason"] != "closed" for e in ev("disconnected"))'; then
        t=$(lab_q "$L/held.log" '"%.1f s: %s" % [(e["ts"] - '"$s"', e["reason"]) for e in ev("disconnected") if e["peerId"] == "'"$bid"'"][-1]')
        lab_result "flush: A notices the dead connection to B" ok "$t"
    else
        lab_result "flush: A notices the dead connection to B" FAIL "no disconnected in 40 s"
    fi
    if lab_wait_q 10 "$L/$bname.log" 'any(e["peerId"] == "'"$aid"'" and e["ts"] > '"$s"' and e["reason"] != "closed" for e in ev("disconnected"))'; then
        t=$(lab_q "$L/$bname.log" '"%.1f s: %s" % [(e["ts"] - '"$s"', e["reason"]) for e in ev("disconnected") if e["peerId"] == "'"$aid"'"][-1]')
        lab_result "flush: B notices the dead connection to A" ok "$t"
    else
        lab_result "flush: B notices the dead connection to A" FAIL "no disconnected"
    fi
    if lab_wait_q 40 "$L/$bname.log" 'len(ev("reservation")) > '"$before"; then
        t=$(lab_q "$L/$bname.log" '"%.1f s (%s)" % (ev("reservation")[-1]["ts"] - '"$s"', "; ".join(set(e["error"] for e in ev("reservation_lost") if e["ts"] > '"$s"')))')
        lab_result "flush: B loses the relay connection, re-reserves" ok "reservation again after $t"
    else
        lab_result "flush: B loses the relay connection, re-reserves" FAIL "see $L/$bname.log"
    fi
    lab_exec rb sysctl -qw net.netfilter.nf_conntrack_tcp_loose=1
    lab_stop held
    dial_echo flush2 30
    if echo_ok flush2 && punched flush2 && [ "$(cat "$L/flush2.rc")" = 0 ]; then
        lab_result "flush: A reaches B again (relay, echo, punch)" ok "echo $psize B intact, direct"
    else
        lab_result "flush: A reaches B again (relay, echo, punch)" FAIL \
            "rc $(cat "$L/flush2.rc"): $(errors "$L/flush2.log")"
    fi
}

# ---- restart: B killed and started again ------------------------------------------------------
case_restart() {
    local s t rc
    set_loss a 0
    set_loss b 0
    next_port
    lab_start a held2 "$flare" dial "$(baddr "$L/$bname.log")" --listen "/ip4/0.0.0.0/tcp/$aport" \
        --seed "$seed_a" --keep-alive "${common[@]}"
    lab_wait_q 30 "$L/held2.log" 'len(ev("holepunch")) > 0' || true
    kill -KILL "${LAB_PIDS[$bname]}" 2>/dev/null
    s=$(date +%s.%N)
    lab_stop "$bname"
    if lab_wait_q 30 "$L/held2.log" 'any(e["peerId"] == "'"$bid"'" and e["ts"] > '"$s"' for e in ev("disconnected"))'; then
        t=$(lab_q "$L/held2.log" '"%.1f s: %s" % [(e["ts"] - '"$s"', e["reason"]) for e in ev("disconnected") if e["peerId"] == "'"$bid"'"][-1]')
        lab_result "restart: A sees its connection to the killed B end" ok "$t"
    else
        lab_result "restart: A sees its connection to the killed B end" FAIL "no disconnected in 30 s"
    fi
    lab_stop held2
    bname=b2
    start_b b2
    if lab_wait_event "$L/b2.log" reservation 30 >/dev/null; then
        lab_result "restart: B (same key) reserves again" ok \
            "$(lab_q "$L/b2.log" '"%.1f s after the kill" % (ev("reservation")[0]["ts"] - '"$s"')')"
    else
        lab_result "restart: B (same key) reserves again" FAIL "see $L/b2.log"
        return
    fi
    dial_echo restart2 30
    if echo_ok restart2 && punched restart2 && [ "$(cat "$L/restart2.rc")" = 0 ]; then
        lab_result "restart: A reaches the new B (relay, echo, punch)" ok "echo $psize B intact, direct"
    else
        lab_result "restart: A reaches the new B (relay, echo, punch)" FAIL \
            "rc $(cat "$L/restart2.rc"): $(errors "$L/restart2.log")"
    fi
    # B killed while the echo is in flight (the lossy link makes the transfer
    # last): the payload comes back whole or A fails loudly.
    set_loss b "$LOSS"
    local n0
    n0=$(grep -c '"event":"echo_stream"' "$L/b2.log")
    dial_echo midecho 30 &
    local dpid=$!
    for _ in $(seq 1000); do
        [ "$(grep -c '"event":"echo_stream"' "$L/b2.log")" -gt "$n0" ] && break
        sleep 0.02
    done
    kill -KILL "${LAB_PIDS[b2]}" 2>/dev/null
    lab_stop b2
    wait $dpid
    rc=$(cat "$L/midecho.rc")
    if echo_ok midecho; then
        lab_result "restart: B killed during an echo" ok "the echo had completed ($psize B) before the kill"
    elif [ "$rc" -ne 0 ] && [ "$(lab_q "$L/midecho.log" 'any(e["ok"] for e in ev("echo"))')" = False ] &&
        [ "$(errors "$L/midecho.log")" != none ]; then
        lab_result "restart: B killed during an echo" ok "A failed (rc $rc): $(errors "$L/midecho.log")"
    else
        lab_result "restart: B killed during an echo" FAIL "rc $rc, $(echo_bytes midecho) B, $(errors "$L/midecho.log")"
    fi
    bname=b3
    start_b b3
    if lab_wait_event "$L/b3.log" reservation 30 >/dev/null; then
        lab_result "restart: B (same key) reserves again, 2nd time" ok \
            "$(lab_q "$L/b3.log" '"%.1f s after the start" % (ev("reservation")[0]["ts"] - ev("listening")[0]["ts"])')"
    else
        lab_result "restart: B (same key) reserves again, 2nd time" FAIL "$(errors "$L/b3.log")"
    fi
}

for c in $CASES; do
    "case_$c"
    kill -0 "${LAB_PIDS[relay]}" 2>/dev/null || lab_result "$c: the relay still runs" FAIL "it exited"
done

relay_alive=0
kill -0 "${LAB_PIDS[relay]}" 2>/dev/null && relay_alive=1
lab_stop_all
[ $relay_alive = 1 ] || lab_result "the relay ran to the end" FAIL "exit status ${LAB_STATUS[relay]}"
# Foreground dials: their exit status is in NAME.rc (124: timeout's kill).
for f in "$L"/*.rc; do
    [ -f "$f" ] && LAB_STATUS[$(basename "$f" .rc)]=$(cat "$f")
done
crashes=$(lab_crashes)
hung=$(grep -lx 124 "$L"/*.rc 2>/dev/null | xargs -r -n1 basename | tr '\n' ' ')
if [ -n "$crashes" ]; then
    lab_result "no crash (exit status, stderr of every process)" FAIL "crashed: $crashes"
else
    errs=("$L"/*.err)
    lab_result "no crash (exit status, stderr of every process)" ok "${#errs[@]} processes"
fi
[ -z "$hung" ] || lab_result "no hung dialer" FAIL "killed by timeout: $hung"
echo "faults scenario ($*; payload $psize B; total $(el "$T0") s):"
printf '  %s\n' "${LAB_ROWS[@]}"
echo "  $LAB_FAILS failed"
[ "$LAB_FAILS" -eq 0 ]
