# shellcheck shell=bash
# The shared start of the browser WebRTC test and benchmark:
#   source tests/browser/webrtc-lib.sh
# Installs the npm packages (browser side, and the js-libp2p peers used as
# controls), takes the lab lock and builds a network namespace in which
# everything then runs: Chromium offers no WebRTC candidates on loopback, so
# the namespace gets a veth with an address ($ip) whose other end sits in a
# second, empty namespace. Nothing leaves the machine (no STUN server is
# configured anywhere). The EXIT trap stops every process started here and
# deletes both namespaces, also on failure.
# Sets: root flare node run jsnode jsdir (empty without the interop peer)
#       tmp ns ip; functions nsrun, start, listening, field, wait_event,
#       browser_json.  Exit 77 (skip): no root, namespaces, chromium or npm.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bdir=${FLARE_BINARY_DIR:-$root/build}
flare=${FLARE_BIN:-$bdir/flare}
[ -x "$flare" ] || { echo "no flare binary at $flare"; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "skip: the browser WebRTC runs need root (network namespaces)"; exit 77; }
ns=fbw$(($$ % 100000))
ip netns add "$ns-probe" 2>/dev/null || { echo "skip: no network namespaces"; exit 77; }
ip netns del "$ns-probe"

paths=$(timeout 1200 "$root/scripts/browser-setup.sh" "$bdir")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -ne 0 ] && { echo "browser-setup.sh failed ($rc)" >&2; exit 1; }
node=$(sed -n 1p <<<"$paths")
run=$(sed -n 2p <<<"$paths")/run.mjs
jsnode='' jsdir=''
if interop=$(timeout 1200 "$root/scripts/interop-setup.sh" "$bdir"); then
    jsnode=$(sed -n 1p <<<"$interop")
    jsdir=$(dirname "$(sed -n 2p <<<"$interop")")
fi

tmp=$(mktemp -d)
pids=()
ip=10.213.0.1
webrtc_cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for _ in $(seq 30); do
        local left=0
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left=1; done
        [ $left -eq 0 ] && break
        sleep 0.1
    done
    # Whatever is left in the namespace was started by this script
    # (Chromium's helpers after a timeout, a process that ignores SIGTERM).
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
    ip netns del "$ns-p" 2>/dev/null
    rm -rf "$tmp"
}
trap webrtc_cleanup EXIT

# Lab runs never overlap (they would compete for CPU and blur timings).
exec 9>/run/lock/flare-lab.lock
flock -w 600 9 || echo "warning: lab lock busy, running anyway"
ip netns add "$ns" && ip netns add "$ns-p" &&
    ip link add "${ns}a" type veth peer name "${ns}b" &&
    ip link set "${ns}a" netns "$ns" && ip link set "${ns}b" netns "$ns-p" &&
    ip -n "$ns" addr add "$ip/24" dev "${ns}a" && ip -n "$ns-p" addr add 10.213.0.2/24 dev "${ns}b" &&
    ip -n "$ns" link set lo up && ip -n "$ns" link set "${ns}a" up && ip -n "$ns-p" link set "${ns}b" up ||
    { echo "could not build the network namespace"; exit 1; }

nsrun() { ip netns exec "$ns" "$@"; }
# start LOG CMD...: runs CMD in the namespace in the background (stdout and
# stderr to LOG), bounded to 300 s.
start() {
    local log=$1
    shift
    ip netns exec "$ns" timeout 300 "$@" >"$log" 2>&1 &
    pids+=($!)
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
# browser_json OUT ARGS...: Chromium in the namespace (run.mjs with
# page-webrtc.js) on each --addr of ARGS; one JSON line per address in OUT.
browser_json() {
    local out=$1
    shift
    ip netns exec "$ns" timeout 150 "$node" "$run" --chromium "$(command -v chromium)" \
        --page page-webrtc.js "$@" >"$out" 2>"$out.err"
}
