# shellcheck shell=bash
# Shared harness of the interop tests (sourced). Sets root, bdir, flare, tmp,
# node and peer (the js-libp2p reference peer); exits 77 when npm is
# unreachable. Provides:
#   check NAME FILE PYEXPR   PYEXPR over the JSON events of FILE (ev(name) lists
#                            them; v2("in"|"out", msg) the js AutoNAT v2 messages)
#   wait_line FILE EVENT     waits up to 15 s for an event line
#   field FILE EVENT PYEXPR  prints PYEXPR(e) of the first EVENT line
#   addr_of FILE             the first listening address (flare or js)
#   pids+=($!)               background processes killed on exit
# and prints "N passed, N failed" with finish.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bdir=${FLARE_BINARY_DIR:-$root/build}
flare=$bdir/flare
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT
[ -x "$flare" ] || { echo "no flare binary at $flare" >&2; exit 1; }
paths=$(timeout 1200 "$root/scripts/interop-setup.sh" "$bdir")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -ne 0 ] && { echo "interop-setup.sh failed ($rc)" >&2; exit 1; }
node=$(sed -n 1p <<<"$paths")
peer=$(sed -n 2p <<<"$paths")

pass=0 fail=0
check() {
    if python3 - "$2" "$3" <<'PY'
import json, sys
evs = []
for line in open(sys.argv[1], errors="replace"):
    try:
        evs.append(json.loads(line))
    except ValueError:
        pass
def ev(name):
    return [e for e in evs if e.get("event") == name]
def v2(d, msg):  # the js peer's AutoNAT v2 tap: messages of direction d
    return [e for e in ev("autonat-v2") if e.get("dir") == d and e.get("msg") == msg]
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
    then pass=$((pass + 1)); echo "ok   $1"
    else fail=$((fail + 1)); echo "FAIL $1"; echo "---- $2"; cut -c1-300 "$2"; fi
}
wait_line() {
    for _ in $(seq 150); do grep -q "\"event\":\"$2\"" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
field() {
    python3 -c "import json,sys
for l in open(sys.argv[1]):
    try: e=json.loads(l)
    except ValueError: continue
    if e.get('event')==sys.argv[2]: print(eval(sys.argv[3])); break" "$1" "$2" "$3"
}
addr_of() { field "$1" listening "e['addrs'][0] if 'addrs' in e else e['addr']"; }
finish() {
    echo "$pass passed, $fail failed"
    [ $fail -eq 0 ]
}
# AutoNAT v2 helpers (compatible additions).
#   js_addr_of FILE   the js peer's first listen address (with /p2p/), announced
#                     or not ("listenAddrs" of "listening"; js announces only
#                     verified addresses, so "addrs" can be empty)
#   jshook            public-cidrs.mjs: js refuses private addresses; run
#                     env FLARE_JS_PUBLIC_CIDRS=CIDRS "$node" --import "$jshook" "$peer" ...
#                     to count CIDRS (entries of js's private list) as public
js_addr_of() { field "$1" listening "e['listenAddrs'][0]"; }
jshook=$(dirname "$peer")/public-cidrs.mjs
