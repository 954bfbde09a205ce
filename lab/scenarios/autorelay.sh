#!/usr/bin/env bash
# Scenario: AutoRelay. A private flare node finds relays by itself among the
# public peers it keeps connected (--connect), holds 2 reservations and
# replaces a relay that dies.
#   relay, pub1, pub2: flare relays R1, R2, R3 (port 4001)
#   pub3: a plain flare node P (4001, no hop), a relay Z (4002) with room for
#         1 reservation, taken by a filler node F (4003): Z refuses everyone else
#   b: B = flare listen --auto-relay --connect R1 R2 R3 P Z --echo /echo/1.0.0
#   a: A dials B through B's relayed addresses
# Steps: (a) AutoNAT says private, B reserves on exactly 2 relays, never on
# P; (b) A dials B through one of them, echo; (c) the first of B's relays is
# stopped: B reports `replaced` and reserves on the remaining good relay
# within 20 s, A reaches B through the new address; (d) the other original
# relay is stopped too, so Z is the only candidate left (if it was not tried
# already): Z refuses, B puts it in backoff and does not try it again.
# Usage: autorelay.sh [lab.sh up options]
#   (default: --a-nat sym --b-nat eim --b-inbound reset --delay-ms 10).
# Env: FLARE_BIN (default build/flare). Prints a per-step table; exit 0 when
# every step passed.
set -uo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
[ $# -gt 0 ] || set -- --a-nat sym --b-nat eim --b-inbound reset --delay-ms 10
lab_up "$@" || exit $?

REPLACE_S=20 QUIET_S=6
seed() { printf "$1%.0s" $(seq 32); }
pid_of() { lab_json "$("$flare" id --seed "$1" --json)" peerId; }
declare -A SEED=([r1]=$(seed 11) [r2]=$(seed 12) [r3]=$(seed 13) [p]=$(seed 14) [z]=$(seed 15)
    [f]=$(seed 16) [b]=$(seed 17) [a]=$(seed 18))
declare -A HOST=([r1]=relay [r2]=pub1 [r3]=pub2 [p]=pub3 [z]=pub3 [f]=pub3)
declare -A PORT=([r1]=4001 [r2]=4001 [r3]=4001 [p]=4001 [z]=4002 [f]=4003)
declare -A ID=() ADDR=() NAME=()
for n in r1 r2 r3 p z f b a; do
    ID[$n]=$(pid_of "${SEED[$n]}")
    NAME[${ID[$n]}]=$n
    if [ -n "${HOST[$n]:-}" ]; then
        ADDR[$n]=/ip4/$(eval echo "\$FLARE_LAB_IP_${HOST[$n]}")/tcp/${PORT[$n]}/p2p/${ID[$n]}
    fi
done
common=(--allow-testnet --json --no-holepunch)
L=$LAB_LOGS

# ---- helpers (scenario-local, as in relay.sh) -------------------------------------------
names() { # "ID ..." -> their scenario names
    local i ids out=()
    read -ra ids <<<"$*"
    for i in "${ids[@]}"; do out+=("${NAME[$i]:-?}"); done
    echo "${out[*]}"
}
# B's relays with a granted reservation, in the order first granted.
granted() { lab_q "$L/b.log" '" ".join(dict.fromkeys(e["relay"] for e in ev("reservation")))'; }
# echo_dial LOGNAME ADDR MESSAGE: flare in A dials ADDR, echo; 0 when the reply matched.
echo_dial() {
    lab_exec a timeout 25 "$flare" dial "$2" --echo /echo/1.0.0 --message "$3" \
        --seed "${SEED[a]}" "${common[@]}" >"$L/$1.log" 2>"$L/$1.err"
    [ "$(lab_q "$L/$1.log" 'any(e["ok"] for e in ev("echo")) and
        any("/p2p-circuit" in e["addr"] for e in ev("connected"))')" = True ]
}
start() { # NAME CMD-ARGS...: flare on NAME's host and port
    local n=$1
    shift
    lab_start "${HOST[$n]}" "$n" "$flare" "$@" --listen \
        "/ip4/$(eval echo "\$FLARE_LAB_IP_${HOST[$n]}")/tcp/${PORT[$n]}" --seed "${SEED[$n]}" \
        --allow-testnet --json
}

# ---- public side ---------------------------------------------------------------------------
for n in r1 r2 r3; do start $n relay; done
start p listen
start z relay --relay-max-reservations 1
for n in r1 r2 r3 p z; do
    lab_wait_event "$L/$n.log" listening 20 >/dev/null || { echo "$n did not start"; exit 1; }
done
start f listen --relay "${ADDR[z]}" --no-holepunch
lab_wait_event "$L/f.log" reservation 20 >/dev/null || { echo "filler got no reservation"; exit 1; }

# ---- B ---------------------------------------------------------------------------------------
t0=$(date +%s.%N)
lab_start b b "$flare" listen --listen /ip4/0.0.0.0/tcp/4001 --auto-relay --autonat-boot-delay 2000 \
    --connect "${ADDR[r1]}" --connect "${ADDR[r2]}" --connect "${ADDR[r3]}" \
    --connect "${ADDR[p]}" --connect "${ADDR[z]}" --seed "${SEED[b]}" --echo /echo/1.0.0 \
    "${common[@]}"

# (a) private -> 2 reservations, never on P.
since() { lab_q "$L/b.log" "'%.1f' % ($1 - $t0)"; }
if lab_wait_q 40 "$L/b.log" 'any(e["state"] == "private" for e in ev("reachability")) and
        len(ar("start")) > 0 and len({e["relay"] for e in ev("reservation")}) >= 2'; then
    sleep 3 # a third reservation would show up here
    t_priv=$(since 'ev("reachability")[0]["ts"]')
    rs=$(granted)
    t_two=$(since 'sorted(e["ts"] for e in ev("reservation"))[1]')
    onp=$(lab_q "$L/b.log" 'len([e for e in ev("autorelay") + ev("reservation")
        if e.get("relay") == "'"${ID[p]}"'"])')
    if [ "$(wc -w <<<"$rs")" -eq 2 ] && [ "$onp" -eq 0 ] &&
        [ "$(lab_q "$L/b.log" 'ev("reachability")[0]["state"]')" = private ]; then
        lab_result "(a) private, B reserves on exactly 2 relays" ok \
            "private at ${t_priv} s, reserved on $(names "$rs") by ${t_two} s; P untouched"
    else
        lab_result "(a) private, B reserves on exactly 2 relays" FAIL \
            "relays: $(names "$rs"), $onp events for P, see $L/b.log"
    fi
else
    rs=$(granted)
    lab_result "(a) private, B reserves on exactly 2 relays" FAIL "relays: $(names "$rs"), see $L/b.log"
fi
read -r first second _ <<<"$rs"
[ -n "${second:-}" ] || {
    echo "B has fewer than 2 relays, cannot go on"
    LAB_FAILS=$((LAB_FAILS + 1))
}

# (b) A -> first relay -> B.
addr_on() { lab_q "$L/b.log" '[e["addr"] for e in ev("reservation") if e["relay"] == "'"$1"'"][-1]'; }
if [ -n "${second:-}" ]; then
    if echo_dial a1 "$(addr_on "$first")" "hello via $(names "$first")"; then
        lab_result "(b) A dials B through B's relayed address, echo" ok "via $(names "$first")"
    else
        lab_result "(b) A dials B through B's relayed address, echo" FAIL "see $L/a1.log"
    fi
fi

# (c) stop the first relay: replaced by the remaining good one (Z may be
# tried on the way: it refuses).
third=""
for n in r1 r2 r3; do
    [ "${ID[$n]}" != "${first:-}" ] && [ "${ID[$n]}" != "${second:-}" ] && third=${ID[$n]}
done
if [ -n "${second:-}" ]; then
    lab_stop "${NAME[$first]}"
    t_kill=$(date +%s.%N)
    rep='any(e["relay"] == "'"$first"'" for e in ar("replaced"))'
    new='any(e["relay"] == "'"$third"'" for e in ev("reservation"))'
    if lab_wait_q $REPLACE_S "$L/b.log" "$rep and $new"; then
        t_rep=$(lab_q "$L/b.log" "'%.1f' % ([e['ts'] for e in ar('replaced')][0] - $t_kill)")
        t_new=$(lab_q "$L/b.log" "'%.1f' % ([e['ts'] for e in ev('reservation')
            if e['relay'] == '$third'][0] - $t_kill)")
        lab_result "(c) $(names "$first") stopped: replaced by $(names "$third")" ok \
            "replaced after ${t_rep} s, reserved on $(names "$third") after ${t_new} s"
        if echo_dial a2 "$(addr_on "$third")" "hello via $(names "$third")"; then
            lab_result "(c) A dials B through the new relayed address" ok "via $(names "$third")"
        else
            lab_result "(c) A dials B through the new relayed address" FAIL "see $L/a2.log"
        fi
    else
        lab_result "(c) $(names "$first") stopped: replaced by $(names "$third")" FAIL \
            "replaced: $(lab_q "$L/b.log" "$rep"), new reservation: $(lab_q "$L/b.log" "$new"), see $L/b.log"
    fi
fi

# (d) stop the second original relay: only Z is left to try (unless it was
# already tried in (c)); it refuses, goes to backoff and is not tried again.
if [ -n "${second:-}" ]; then
    lab_stop "${NAME[$second]}"
    zb='[e for e in ar("backoff") if e["relay"] == "'"${ID[z]}"'"]'
    zc='[e for e in ar("candidate") if e["relay"] == "'"${ID[z]}"'"]'
    zr='[e for e in ev("reservation") if e["relay"] == "'"${ID[z]}"'"]'
    if lab_wait_q $REPLACE_S "$L/b.log" "len($zb) > 0" &&
        lab_wait_q $REPLACE_S "$L/b.log" 'any(e["relay"] == "'"$second"'" for e in ar("replaced"))'; then
        sleep $QUIET_S
        err=$(lab_q "$L/b.log" "${zb}[0].get('error', '')")
        nb=$(lab_q "$L/b.log" "len($zb)") nc=$(lab_q "$L/b.log" "len($zc)") nr=$(lab_q "$L/b.log" "len($zr)")
        still=$(lab_q "$L/b.log" 'any(e["relay"] == "'"$third"'" for e in ar("replaced"))')
        if [ "$nb" = 1 ] && [ "$nc" = 1 ] && [ "$nr" = 0 ] && [ "$still" = False ]; then
            lab_result "(d) Z (full) refuses: backoff, not retried" ok \
                "backoff ($err), 1 try; B keeps $(names "$third")"
        else
            lab_result "(d) Z (full) refuses: backoff, not retried" FAIL \
                "$nc tries, $nb backoffs, $nr reservations on Z, $(names "$third") replaced: $still"
        fi
    else
        lab_result "(d) Z (full) refuses: backoff, not retried" FAIL "no backoff for Z, see $L/b.log"
    fi
fi

lab_stop_all # their shutdown (leak reports) is checked too
if grep -qiE "sanitizer|segmentation|abort" "$L"/*.err; then
    lab_result "no crash (stderr of every node)" FAIL "$(grep -liE 'sanitizer|segmentation|abort' "$L"/*.err)"
fi
echo "autorelay scenario ($*):"
printf '  %s\n' "${LAB_ROWS[@]}"
echo "  $LAB_FAILS failed"
[ "$LAB_FAILS" -eq 0 ]
