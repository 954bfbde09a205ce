#!/usr/bin/env bash
# NAT lab, IPv6 and dual stack with real flare processes (root; skipped with
# 77 otherwise). Routers are stateful IPv6 firewalls (no NAT66) and, for
# IPv4, cone NATs:
#   IPv6 only, firewall/firewall          -> direct over IPv6
#   dual stack (NAT + firewall), TCP      -> direct (either family; the
#                                            holepunch event names it)
#   dual stack, TCP and QUIC at once      -> direct
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" d
export QUIET=1
sc=$root/lab/scenarios/holepunch.sh
pass=0 fail=0
run() { # NAME env... -- lab-args...
    local name=$1 envs=()
    shift
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    if env "${envs[@]}" timeout 240 "$sc" "$@"; then
        pass=$((pass + 1)); echo "ok   $name"
    else
        fail=$((fail + 1)); echo "FAIL $name"
    fi
}
run "v6 firewalls: direct over IPv6" FAMILY=v6 WON=ip6 -- --a-nat eim --b-nat eim --delay-ms 25
run "dual stack, TCP: direct" FAMILY=dual -- --a-nat eim --b-nat eim --delay-ms 25
run "dual stack, TCP and QUIC: direct" FAMILY=dual TRANSPORT=both -- \
    --a-nat eim --b-nat eim --delay-ms 25
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
