# shellcheck shell=bash
# The shared start of the flare lab tests:  source "$(dirname "$0")/preamble.sh" TAG
# Skips (77) without root or network namespaces; sets root and FLARE_BIN
# (exported), a per-run FLARE_LAB_PREFIX built from TAG (lab.sh allows at
# most 12 characters), and takes the lab lock so that lab runs never overlap
# (they would compete for CPU and blur the timings). Provides punch for the
# hole punching tests.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "skip: the NAT lab needs root"; exit 77; }
ip netns add "flr-probe-$$" 2>/dev/null || { echo "skip: no network namespaces"; exit 77; }
ip netns del "flr-probe-$$"
export FLARE_BIN=${FLARE_BIN:-${FLARE_BINARY_DIR:-$root/build}/flare}
[ -x "$FLARE_BIN" ] || { echo "no flare binary at $FLARE_BIN"; exit 1; }
export FLARE_LAB_PREFIX="flr-${1:?lab test tag}$(($$ % 100000))-"
exec 9>/run/lock/flare-lab.lock
flock -w 600 9 || echo "warning: lab lock busy, running anyway"

# punch NAME EXPECT lab-args...: one lab/scenarios/holepunch.sh run that
# must end EXPECT (direct or relayed), bounded to PUNCH_TIMEOUT seconds
# (default 240); counted in pass or fail.
punch() {
    local name=$1 expect=$2
    shift 2
    if EXPECT=$expect timeout "${PUNCH_TIMEOUT:-240}" "$root/lab/scenarios/holepunch.sh" "$@"; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name"
    fi
}
