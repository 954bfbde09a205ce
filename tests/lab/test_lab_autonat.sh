#!/usr/bin/env bash
# NAT lab, AutoNAT verdicts with real flare processes (root; skipped with 77
# otherwise). Two topologies, every case of one topology in parallel (see
# lab/scenarios/autonat.sh):
#   a=eim/drop, b=sym/reset, public pub3: flare servers (3, and 1), js-libp2p
#     v2 servers, js-libp2p v1 servers with the TEST-NET hook, stock
#     js-libp2p v1 servers (refuse)
#   a=fw/drop, b=fw/reset, public pub3: flare servers, js v2 servers, js v1
#     servers with the hook
# Pass: with flare servers and with js v2 servers every node reaches the
# right verdict within 30 s (public on pub3, private behind a router); with
# js v1 servers no wrong verdict; with stock js v1 servers none at all, and
# the servers did refuse.
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" n
export QUIET=0
sc=$root/lab/scenarios/autonat.sh
pass=0 fail=0 skipped=0
run() { # NAME SERVERS PUBLIC lab-args...
    local name=$1 servers=$2 public=$3 rc
    shift 3
    echo "== $name"
    SERVERS=$servers PUBLIC=$public timeout 150 "$sc" "$@"
    rc=$?
    if [ $rc -eq 0 ]; then
        pass=$((pass + 1)); echo "ok   $name"
    elif [ $rc -eq 77 ]; then
        skipped=$((skipped + 1)); echo "skip $name"
    else
        fail=$((fail + 1)); echo "FAIL $name"
    fi
}
t0=$(date +%s)
run "eim/drop + sym/reset + public: flare, one flare, js v2, js v1, stock js v1 servers" \
    "flare flare-one js-v2 js js-stock" 1 \
    --a-nat eim --a-inbound drop --b-nat sym --b-inbound reset --delay-ms 10
run "fw/drop + fw/reset + public: flare, js v2 and js v1 servers" "flare js-v2 js" 1 \
    --a-nat fw --a-inbound drop --b-nat fw --b-inbound reset --delay-ms 10
echo "lab autonat: $(($(date +%s) - t0)) s"
[ $pass -eq 0 ] && [ $fail -eq 0 ] && exit 77
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
