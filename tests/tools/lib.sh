# Shared by the shell tests (tests/tools/test_cli*.sh, tests/attack/lib.sh):
# paths, a scratch directory removed on exit with the background nodes
# stopped, ok/bad counters and JSON helpers. Sourced. The flare binary comes
# from $FLARE_BINARY_DIR (test_cli_events.sh swaps in a wrapper there).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${FLARE_BINARY_DIR:-$root/build}
flare=$bin/flare
tmp=$(mktemp -d)
pids=() # background nodes, stopped on exit
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
# finish: prints the counts and exits, non-zero if anything failed.
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
# wait_for FILE PYEXPR [TENTHS]: up to TENTHS/10 s (default 10 s) for a JSON
# line e with PYEXPR true; prints it.
wait_for() {
    for _ in $(seq "${3:-100}"); do
        python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if eval(sys.argv[2]): print(l.strip()); sys.exit(0)
sys.exit(1)' "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# field JSON KEY: one value of a JSON object.
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# listening_addr LOG [TENTHS]: the address of LOG's "listening" event.
listening_addr() {
    local line
    line=$(wait_for "$1" 'e.get("event") == "listening"' "${2:-100}") || return 1
    field "$line" addr
}
# ping_stack ADDR NAME LISTENLOG TRANSPORT SECURITY MUXER: two pings to ADDR
# (their JSON lines in $tmp/p), the dialer's `connected` event naming
# TRANSPORT, SECURITY and MUXER, and an inbound one naming TRANSPORT and
# SECURITY in the listener's LISTENLOG.
ping_stack() {
    local addr=$1 name=$2 llog=$3 tr=$4 sec=$5 mux=$6 line
    timeout 20 "$flare" ping "$addr" -c 2 --json >"$tmp/p" 2>"$tmp/p.err"
    [ "$(grep -c '"event":"ping"' "$tmp/p")" = 2 ] && ok "two pings over $name" ||
        bad "ping over $name: $(cat "$tmp/p" "$tmp/p.err")"
    line=$(wait_for "$tmp/p" 'e.get("event") == "connected"' 1)
    [ "$(field "$line" transport)" = "$tr" ] && [ "$(field "$line" security)" = "$sec" ] &&
        [ "$(field "$line" muxer)" = "$mux" ] && ok "dialer: connected over $tr / $sec / $mux" ||
        bad "dialer connected event: $line"
    line=$(wait_for "$llog" 'e.get("event") == "connected" and e.get("direction") == "inbound"')
    [ "$(field "$line" transport)" = "$tr" ] && [ "$(field "$line" security)" = "$sec" ] &&
        ok "listener: inbound over $tr / $sec" || bad "listener connected event: $line"
}
