#!/usr/bin/env bash
# Scenario: a flare relay on the lab's internet, with small limits, serving
# private nodes behind symmetric NATs (no hole punch can replace the relayed
# connections, and DCUtR is off anyway: --no-holepunch).
#   relay (public, data 64 KiB/direction, 20 s per circuit, TTL 15 s, 1 reservation per IP)
#   B (flare, behind rb) keeps a reservation and serves /echo/1.0.0
# Steps: (a) A (behind ra) dials B through the relay, echo; (b) js peers: a
# public js dialer echoes with B, a js peer behind ra reserves and a flare
# dialer behind rb echoes with it; (c) limits: a second reservation from B's
# IP is refused; A sends more than the data limit (the relay closes the
# circuit for the limit, A and B see the connection end, a new circuit
# works); a held circuit is closed at the duration limit; (d) B refreshes
# its reservation before the TTL and is reachable after 2 TTLs; (e) the relay
# restarts (same identity), B reserves again, A reaches B again.
# Usage: relay.sh [lab.sh up options] (default: sym/sym, 10 ms per link).
# Env: FLARE_BIN (default build/flare). Prints a per-step table; exit 0 when
# every step passed (js steps are skipped when npm is unreachable).
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
[ $# -gt 0 ] || set -- --a-nat sym --b-nat sym --delay-ms 10
lab_up "$@" || exit $?

TTL=15 DURATION=20 DATA=65536
seed() { printf "$1%.0s" $(seq 32); }
seed_r=$(seed a1) seed_b=$(seed b2) seed_a=$(seed c3) seed_d=$(seed d4) seed_f=$(seed e5)
seed_j=$(seed f6) seed_x=$(seed 07)
pid_of() { lab_json "$("$flare" id --seed "$1" --json)" peerId; }
rid=$(pid_of "$seed_r") bid=$(pid_of "$seed_b") did=$(pid_of "$seed_d") aid=$(pid_of "$seed_a")
common=(--allow-testnet --json --no-holepunch)
raddr=/ip4/$FLARE_LAB_IP_relay/tcp/4001/p2p/$rid
L=$LAB_LOGS

# ---- helpers (scenario-local) ------------------------------------------------------------
start_relay() { # NAME
    lab_start relay "$1" "$flare" relay --listen "/ip4/$FLARE_LAB_IP_relay/tcp/4001" \
        --seed "$seed_r" --allow-testnet --json --relay-data $DATA --relay-duration $DURATION \
        --relay-ttl $TTL --relay-max-per-ip 1
    lab_wait_event "$L/$1.log" listening 20 >/dev/null
}
# echo_dial LOGNAME MESSAGE [SEED]: flare in A dials B through the relay, echo.
echo_dial() {
    lab_exec a timeout 25 "$flare" dial "$baddr" --echo /echo/1.0.0 --message "$2" \
        --seed "${3:-$seed_a}" "${common[@]}" >"$L/$1.log" 2>"$L/$1.err"
}
echo_ok() { [ "$(lab_q "$L/$1.log" 'any(e["ok"] for e in ev("echo"))')" = True ]; }
# last_reason LOG PEER: why the last connection to PEER ended ("none").
last_reason() {
    lab_q "$1" '([e["reason"] for e in ev("disconnected") if e["peerId"] == "'"$2"'"] or ["none"])[-1]'
}
LIMIT="resource limit exceeded" # flare_strerror(FLARE_ERR_LIMIT)

# ---- relay, B ------------------------------------------------------------------------------
start_relay relay || { echo "relay did not start"; exit 1; }
lab_start b b "$flare" listen --listen /ip4/0.0.0.0/tcp/4001 --relay "$raddr" --seed "$seed_b" \
    --echo /echo/1.0.0 "${common[@]}"
line=$(lab_wait_event "$L/b.log" reservation 20) || { echo "B got no reservation"; exit 1; }
t_rsv=$(date +%s)
baddr=$(lab_json "$line" addr)
lab_result "B reserved on the relay" ok "…/p2p-circuit/p2p/${bid:0:12}…"

# (a) A -> relay -> B.
if echo_dial a1 "hello through the relay" && echo_ok a1; then
    lab_result "(a) A dials B through the relay, echo" ok "relayed (limited) connection, echo ok"
else
    lab_result "(a) A dials B through the relay, echo" FAIL "see $L/a1.log"
fi

# Held circuit for the duration limit (checked later, in parallel with the rest).
lab_start a dur "$flare" dial "$baddr" --keep-alive --seed "$seed_d" "${common[@]}"
lab_wait_q 15 "$L/dur.log" 'any("/p2p-circuit" in e["addr"] for e in ev("connected"))'
t_dur=$(date +%s)

# (b) js peers.
if paths=$("$root/scripts/interop-setup.sh" "$(dirname "$flare")" 2>"$L/interop-setup.err"); then
    node=$(sed -n 1p <<<"$paths") peer=$(sed -n 2p <<<"$paths")
    lab_exec pub1 timeout 30 "$node" "$peer" --dial "$baddr" --echo-send /echo/1.0.0 \
        --message "hi from js" --exit-after-ms 25000 >"$L/js1.log" 2>"$L/js1.err"
    if [ "$(lab_q "$L/js1.log" 'any(e["message"] == "hi from js" for e in ev("echo-reply"))')" = True ]; then
        lab_result "(b) js (public) dials B through the flare relay" ok "echo over a limited connection"
    else
        lab_result "(b) js (public) dials B through the flare relay" FAIL "see $L/js1.log"
    fi
    lab_start a jsb "$node" "$peer" --reserve "$raddr" --echo /echo/1.0.0 --seed "$seed_j" \
        --exit-after-ms 60000
    if lab_wait_event "$L/jsb.log" reserved 20 >/dev/null; then
        jaddr=$(lab_q "$L/jsb.log" '[a for e in ev("reserved") for a in e["addrs"]][0]')
        lab_exec b timeout 25 "$flare" dial "$jaddr" --echo /echo/1.0.0 --message "hi js" \
            --seed "$seed_f" "${common[@]}" >"$L/f2js.log" 2>"$L/f2js.err"
        if echo_ok f2js; then
            lab_result "(b) js (ra) reserves, flare (rb) dials it" ok "echo ok"
        else
            lab_result "(b) js (ra) reserves, flare (rb) dials it" FAIL "see $L/f2js.log"
        fi
    else
        lab_result "(b) js (behind ra) reserves on the flare relay" FAIL "no reservation, $L/jsb.log"
    fi
    lab_stop jsb
else
    lab_result "(b) js peers" skip "interop-setup: no npm registry"
fi

# (c) limits. A second reservation from B's IP (per-IP cap 1) is refused.
lab_start b x "$flare" listen --listen /ip4/0.0.0.0/tcp/4002 --relay "$raddr" --seed "$seed_x" \
    "${common[@]}"
if line=$(lab_wait_event "$L/x.log" reservation_failed 15); then
    lab_result "(c) per-IP reservation cap (1)" ok "2nd reservation from B's IP: $(lab_json "$line" error)"
else
    lab_result "(c) per-IP reservation cap (1)" FAIL "see $L/x.log"
fi
lab_stop x

# Data: 100 000 bytes > 64 KiB in one direction.
big=$(head -c 100000 /dev/zero | tr '\0' x)
echo_dial big "$big"
rc=$?
closed='[e for e in ev("relay_circuit_closed") if e["src"] == "'$aid'" and e["reason"] == "'$LIMIT'"]'
if [ $rc -ne 0 ] && lab_wait_q 5 "$L/relay.log" "len($closed) == 1"; then
    lab_wait_q 5 "$L/b.log" '"'"$aid"'" in [e["peerId"] for e in ev("disconnected")][-1:]'
    why=$(last_reason "$L/big.log" "$bid") whyb=$(last_reason "$L/b.log" "$aid")
    if [ "$why" = "$LIMIT" ] && [ "$whyb" = "$LIMIT" ]; then
        lab_result "(c) data limit (64 KiB): circuit closed" ok "relay, A and B: $LIMIT"
    else
        lab_result "(c) data limit (64 KiB): circuit closed" FAIL "A: $why, B: $whyb"
    fi
else
    lab_result "(c) data limit (64 KiB): circuit closed" FAIL "rc $rc, see $L/relay.log $L/big.log"
fi
if echo_dial a2 "after the limit" && echo_ok a2; then
    lab_result "(c) relay keeps serving after the limit" ok "new circuit, echo"
else
    lab_result "(c) relay keeps serving after the limit" FAIL "see $L/a2.log"
fi

# Duration: the held circuit ends DURATION s after it opened.
closed='[e for e in ev("relay_circuit_closed") if e["src"] == "'$did'"]'
if lab_wait_q $((t_dur + DURATION + 8 - $(date +%s))) "$L/relay.log" "len($closed) > 0"; then
    t=$(date +%s)
    reason=$(lab_q "$L/relay.log" "${closed}[0][\"reason\"]")
    lab_wait_q 5 "$L/dur.log" '"'"$bid"'" in [e["peerId"] for e in ev("disconnected")]'
    why=$(last_reason "$L/dur.log" "$bid") whyb=$(last_reason "$L/b.log" "$did")
    if [ "$reason" = "timed out" ] && [ "$why" = "$LIMIT" ] && [ "$whyb" = "$LIMIT" ] &&
        [ $((t - t_dur)) -ge $((DURATION - 2)) ]; then
        lab_result "(c) duration limit (${DURATION} s): circuit closed" ok \
            "after ~$((t - t_dur)) s; relay: $reason, A and B: $LIMIT"
    else
        lab_result "(c) duration limit (${DURATION} s): circuit closed" FAIL \
            "after $((t - t_dur)) s: relay: $reason, A: $why, B: $whyb"
    fi
else
    lab_result "(c) duration limit (${DURATION} s): circuit closed" FAIL "circuit still open, see $L/relay.log"
fi
lab_stop dur

# (d) refresh: 2 TTLs after the first reservation.
sleep $((t_rsv + 2 * TTL + 2 - $(date +%s))) 2>/dev/null || true
rsv='[e["ts"] for e in ev("relay_reservation") if e["peerId"] == "'$bid'"]'
n=$(lab_q "$L/relay.log" "len($rsv)")
gaps=$(lab_q "$L/relay.log" "' '.join('%.1f' % (b - a) for a, b in zip(${rsv}, ${rsv}[1:]))")
maxgap=$(lab_q "$L/relay.log" "max([b - a for a, b in zip(${rsv}, ${rsv}[1:])] or [0]) < $TTL")
lost=$(lab_q "$L/b.log" 'len(ev("reservation_lost")) + len(ev("reservation_failed"))')
if [ "$n" -ge 3 ] && [ "$maxgap" = True ] && [ "$lost" = 0 ] && echo_dial a3 "after two TTLs" &&
    echo_ok a3; then
    lab_result "(d) B refreshes before the ${TTL} s TTL" ok "renewals every $gaps s; reachable after 2 TTLs"
else
    lab_result "(d) B refreshes before the ${TTL} s TTL" FAIL "$n reservations (gaps $gaps s), $lost lost/failed"
fi

# (e) relay restart, same identity and port: SIGKILL (a crash), then start again.
before=$(lab_q "$L/b.log" 'len(ev("reservation"))')
kill -KILL "${LAB_PIDS[relay]}" 2>/dev/null
lab_stop relay
t_kill=$(date +%s.%N)
if lab_wait_event "$L/b.log" reservation_lost 10 >/dev/null && start_relay relay2 &&
    lab_wait_q 30 "$L/b.log" "len(ev(\"reservation\")) > $before" && echo_dial a4 "after the restart" &&
    echo_ok a4; then
    back=$(lab_q "$L/b.log" "'%.1f' % (ev(\"reservation\")[-1][\"ts\"] - $t_kill)")
    lab_result "(e) relay restart: B re-reserves, A reaches B" ok \
        "reserved again ${back} s after the kill ($(lab_q "$L/b.log" 'len(ev("reservation_failed"))') failed tries)"
else
    lab_result "(e) relay restart: B re-reserves, A reaches B" FAIL "see $L/b.log $L/a4.log"
fi

if grep -qiE "sanitizer|segmentation|abort" "$L"/*.err; then
    lab_result "no crash (stderr of every node)" FAIL "$(grep -liE 'sanitizer|segmentation|abort' "$L"/*.err)"
fi
echo "relay scenario ($*):"
printf '  %s\n' "${LAB_ROWS[@]}"
echo "  $LAB_FAILS failed"
[ "$LAB_FAILS" -eq 0 ]
