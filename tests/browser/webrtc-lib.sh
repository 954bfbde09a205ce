# shellcheck shell=bash
# The shared start of the browser WebRTC test and benchmark:
#   source tests/browser/webrtc-lib.sh
# Installs the npm packages (browser side, and the js-libp2p peers used as
# controls), takes the lab lock and builds a network namespace in which
# everything then runs: Chromium offers no WebRTC candidates on loopback, so
# the namespace gets a veth with an address ($ip) whose other end sits in a
# second, empty namespace. Nothing leaves the machine (no STUN server is
# configured anywhere). The EXIT trap (browser-lib.sh) stops every process
# started here and deletes both namespaces, also on failure.
# Sets: root flare node run jsnode jsdir (empty without the interop peer)
#       tmp ns ip; functions nsrun, start, browser_json and browser-lib.sh's
#       listening, field, wait_event.
# Exit 77 (skip): no root, namespaces, chromium or npm.
# shellcheck source=browser-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/browser-lib.sh"
[ "$(id -u)" -eq 0 ] || { echo "skip: the browser WebRTC runs need root (network namespaces)"; exit 77; }
ns=fbw$(($$ % 100000))
ip netns add "$ns-probe" 2>/dev/null || { echo "skip: no network namespaces"; exit 77; }
ip netns del "$ns-probe"

browser_setup
jsnode='' jsdir=''
if interop=$(timeout 1200 "$root/scripts/interop-setup.sh" "$bdir"); then
    jsnode=$(sed -n 1p <<<"$interop")
    jsdir=$(dirname "$(sed -n 2p <<<"$interop")")
fi

ip=10.213.0.1

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
# browser_json OUT ARGS...: Chromium in the namespace (run.mjs with
# page-webrtc.js) on each --addr of ARGS; one JSON line per address in OUT.
browser_json() {
    local out=$1
    shift
    ip netns exec "$ns" timeout 150 "$node" "$run" --chromium "$(command -v chromium)" \
        --page page-webrtc.js "$@" >"$out" 2>"$out.err"
}
