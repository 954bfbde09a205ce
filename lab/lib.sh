# shellcheck shell=bash
# flare lab helper library for scenario scripts. Source it, then:
#
#   lab_up --a-nat eim --b-nat sym --delay-ms 25   # lab.sh up + load topology
#   lab_start NODE NAME CMD...    background CMD in NODE; stdout -> $LAB_LOGS/NAME.log
#   lab_wait_event LOG EVENT SECS prints the first JSON line with "event":EVENT
#   lab_json LINE KEY             prints LINE's value for KEY (python3 stdlib)
#   lab_exec NODE CMD...          foreground CMD in NODE
#   lab_stop NAME / lab_stop_all  TERM (then KILL) what lab_start started; the exit
#                                 status goes to LAB_STATUS[NAME]
#   lab_crashes                   names of processes that crashed (stderr report or signal)
#   lab_down [STATUS]             lab_stop_all + lab.sh down (the EXIT trap; logs are
#                                 removed after a passing run unless LAB_LOGS was set)
#
# After lab_up, topology variables are set: FLARE_LAB_IP_<node>,
# FLARE_LAB_PUBIP_<node>, FLARE_LAB_NS_<node>, ... (see lab.sh env).
LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LAB_SH=$LAB_DIR/lab.sh
LAB_PROBE=$LAB_DIR/probe.py
# Logs go to $LAB_LOGS; a directory made here is removed when the run passes.
if [ -z "${LAB_LOGS:-}" ]; then
    LAB_LOGS=$(mktemp -d /tmp/flare-lab-logs.XXXXXX)
    LAB_LOGS_AUTO=1
fi
declare -gA LAB_PIDS=() LAB_STATUS=()

lab_up() {
    "$LAB_SH" up "$@" >"$LAB_LOGS/topology.env" || return $?
    # shellcheck disable=SC1091
    source "$LAB_LOGS/topology.env"
    trap 'lab_down $?' EXIT
    trap 'exit 130' INT TERM
}

lab_down() { # lab_down [EXIT_STATUS]
    lab_stop_all
    "$LAB_SH" down >/dev/null 2>&1 || true
    if [ "${1:-1}" -eq 0 ] && [ "${LAB_LOGS_AUTO:-0}" = 1 ]; then
        rm -rf "$LAB_LOGS"
    elif [ $# -gt 0 ]; then
        echo "lab: logs kept in $LAB_LOGS" >&2
    fi
}

lab_exec() {
    local node=$1
    shift
    "$LAB_SH" exec "$node" "$@"
}

lab_start() {
    local node=$1 name=$2
    shift 2
    "$LAB_SH" exec "$node" "$@" >"$LAB_LOGS/$name.log" 2>"$LAB_LOGS/$name.err" </dev/null &
    LAB_PIDS[$name]=$!
}

lab_stop() {
    local pid=${LAB_PIDS[$1]:-}
    [ -z "$pid" ] && return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 20); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    local st=0
    wait "$pid" 2>/dev/null || st=$?
    LAB_STATUS[$1]=$st
    unset "LAB_PIDS[$1]"
}

# lab_crashes: the names (one line) of lab_start'ed processes that crashed:
# a sanitizer/abort/segfault report in NAME.err, or ended by SIGILL, SIGABRT,
# SIGBUS, SIGFPE, SIGSEGV or SIGPIPE (TERM and KILL are lab_stop's). Call after lab_stop_all.
lab_crashes() {
    local f n out=""
    for f in "$LAB_LOGS"/*.err; do
        [ -f "$f" ] || continue
        n=$(basename "$f" .err)
        if grep -qiE "sanitizer|segmentation|abort" "$f" ||
            [[ " 132 134 135 136 139 141 " == *" ${LAB_STATUS[$n]:-0} "* ]]; then
            out="$out $n"
        fi
    done
    echo "${out# }"
}

lab_stop_all() {
    local n
    for n in "${!LAB_PIDS[@]}"; do lab_stop "$n"; done
}

# lab_wait_event LOG EVENT TIMEOUT_S: bounded poll for {"event": EVENT} in LOG.
lab_wait_event() {
    local log=$1 ev=$2 secs=$3 line end
    end=$(($(date +%s%N) + secs * 1000000000))
    while [ "$(date +%s%N)" -lt "$end" ]; do
        line=$(grep -m1 -E "\"event\": *\"$ev\"" "$log" 2>/dev/null || true)
        if [ -n "$line" ]; then
            echo "$line"
            return 0
        fi
        sleep 0.1
    done
    echo "lab_wait_event: no '$ev' in $log after ${secs}s" >&2
    return 1
}

# lab_json LINE KEY: a top-level value; lists/objects come back as JSON.
lab_json() {
    python3 -c 'import json,sys
v = json.loads(sys.argv[1]).get(sys.argv[2])
print(v if isinstance(v, (str, int, float)) else json.dumps(v))' "$1" "$2"
}

# lab_probe NODE ARGS...: run the probe in NODE, print its last JSON line.
lab_probe() {
    local node=$1
    shift
    timeout 30 "$LAB_SH" exec "$node" python3 "$LAB_PROBE" "$@" | tail -n1
}

# ---- step results and queries over JSON event logs (scenario scripts) ----------------
# lab_result NAME ok|FAIL|skip DETAIL: one row of the final table (LAB_ROWS);
# FAIL counts in LAB_FAILS. lab_print_results prints the table and returns 1
# if any step failed.
declare -ga LAB_ROWS=()
LAB_FAILS=0
lab_result() {
    LAB_ROWS+=("$(printf '%-4s  %-54s %s' "$2" "$1" "$3")")
    [ "$2" = FAIL ] && LAB_FAILS=$((LAB_FAILS + 1))
    echo "[$(date +%T)] $2 $1: $3" >&2
}
# lab_q LOG EXPR: evaluates a python expression over LOG's JSON events and
# prints it; ev(NAME) lists the events called NAME, ar(REASON) the autorelay
# events with that reason. EXPR may span lines.
lab_q() {
    python3 - "$1" "$2" <<'PY'
import json, sys
evs = []
try:
    for line in open(sys.argv[1]):
        try: evs.append(json.loads(line))
        except ValueError: pass
except OSError: pass
def ev(name): return [e for e in evs if e.get("event") == name]
def ar(reason): return [e for e in ev("autorelay") if e.get("reason") == reason]
print(eval("(" + sys.argv[2] + ")"))
PY
}
# lab_wait_q SECS LOG EXPR: polls until lab_q prints True (status 1 on timeout).
lab_wait_q() {
    local end=$(($(date +%s) + $1))
    while :; do
        [ "$(lab_q "$2" "$3")" = True ] && return 0
        # Checked at least once, also when a loaded machine spent the budget
        # before the first look.
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.2
    done
}
