# shellcheck shell=bash
# What the browser tests share (sourced first, by test_browser_ws.sh and
# webrtc-lib.sh):
#   root bdir flare tmp pids   (processes in pids are stopped on exit)
#   browser_setup              npm packages for the browser side: sets node,
#                              run (run.mjs); exit 77 where npm is unreachable
#   listening LOG PYEXPR       the first flare listening address matching
#   wait_event LOG EVENT       waits up to 15 s for an event line
#   field LOG EVENT PYEXPR(e)  of the first such event
# The EXIT trap stops every process in pids (SIGTERM, then SIGKILL to what is
# left in the network namespace $ns where the caller set one), deletes that
# namespace and its peer "$ns-p", and removes tmp, also on failure.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bdir=${FLARE_BINARY_DIR:-$root/build}
flare=${FLARE_BIN:-$bdir/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
tmp=$(mktemp -d)
pids=()
ns=''
browser_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for _ in $(seq 30); do
        local left=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ $left -eq 0 ] && break
        sleep 0.1
    done
    # Whatever is left in the namespace was started by this script
    # (Chromium's helpers after a timeout, a process that ignores SIGTERM).
    if [ -n "$ns" ]; then
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    fi
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "$ns" ]; then
        ip netns del "$ns" 2>/dev/null
        ip netns del "$ns-p" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap browser_cleanup EXIT

browser_setup() {
    local paths rc
    paths=$(timeout 1200 "$root/scripts/browser-setup.sh" "$bdir")
    rc=$?
    [ $rc -eq 77 ] && exit 77
    [ $rc -ne 0 ] && { echo "browser-setup.sh failed ($rc)" >&2; exit 1; }
    node=$(sed -n 1p <<<"$paths")
    run=$(sed -n 2p <<<"$paths")/run.mjs
}
listening() { # LOG PYEXPR: the first flare listening address matching
    for _ in $(seq 100); do
        python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("event") == "listening":
        a = e.get("addr") or ""
        if eval(sys.argv[2]): print(a); sys.exit(0)
sys.exit(1)' "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
wait_event() { # LOG EVENT
    for _ in $(seq 150); do grep -q "\"event\": *\"$2\"" "$1" 2>/dev/null && return 0; sleep 0.1; done
    return 1
}
field() { # LOG EVENT PYEXPR(e): of the first such event
    python3 -c "import json,sys
for l in open(sys.argv[1]):
    try: e=json.loads(l)
    except ValueError: continue
    if e.get('event')==sys.argv[2]: print(eval(sys.argv[3])); break" "$1" "$2" "$3"
}
