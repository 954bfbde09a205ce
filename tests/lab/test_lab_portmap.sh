#!/usr/bin/env bash
# NAT lab, port mapping (root; skipped with 77 otherwise, or without
# miniupnpd): router a runs miniupnpd (UPnP IGD, NAT-PMP, PCP); see
# lab/scenarios/portmap.sh. Cases:
#   eim NAT, default protocols (PCP answers first)
#   symmetric NAT (masquerade fully-random): PCP, NAT-PMP only, UPnP only
#   symmetric NAT without --port-map: the control (private, unreachable)
# Pass: every case holds (mapping, AutoNAT public, dials to the mapped
# address from pub3 and from behind router b, which has the same NAT type,
# the mapping deleted at shutdown; the control stays private).
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" pm
command -v miniupnpd >/dev/null || { echo "skip: miniupnpd not installed (miniupnpd-nftables)"; exit 77; }
sc=$root/lab/scenarios/portmap.sh
pass=0 fail=0
run() { # NAME ARGS...
    local name=$1 rc
    shift
    echo "== $name"
    QUIET=0 timeout 120 "$sc" "$@"
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name (rc $rc)"
    fi
}
t0=$(date +%s)
run "eim NAT, port mapping on (PCP first)" --nat eim
run "symmetric NAT, PCP" --nat sym --protocols pcp
run "symmetric NAT, NAT-PMP only" --nat sym --protocols nat-pmp
run "symmetric NAT, UPnP IGD only" --nat sym --protocols upnp
run "symmetric NAT, no port mapping (control)" --nat sym --protocols off
echo "lab portmap: $(($(date +%s) - t0)) s, $pass passed, $fail failed"
[ $fail -eq 0 ]
