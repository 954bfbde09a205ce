#!/usr/bin/env bash
# Scenario: bring the lab up with the given options (default: a eim, b sym,
# 25 ms per router link) and report, as JSON lines, what the probes see:
# the mappings of a and b towards pub1/pub2 and the RTTs to pub1.
# It is also the template for flare scenarios: start nodes with lab_start,
# wait for their JSON events with lab_wait_event, judge, exit 0/1.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
[ $# -gt 0 ] || set -- --a-nat eim --b-nat sym --delay-ms 25
lab_up "$@"

lab_start pub1 echo1 python3 "$LAB_PROBE" echo-server --port 7000
lab_start pub2 echo2 python3 "$LAB_PROBE" echo-server --port 7000
lab_wait_event "$LAB_LOGS/echo1.log" listening 10 >/dev/null
lab_wait_event "$LAB_LOGS/echo2.log" listening 10 >/dev/null

rc=0
for node in a b; do
    for proto in udp tcp; do
        line=$(lab_probe "$node" mapping --servers 203.0.113.11:7000,203.0.113.12:7000 \
            --proto "$proto" --lport 4001)
        echo "{\"node\":\"$node\",\"nat\":\"$(eval echo "\$FLARE_LAB_NAT_$node")\",\"probe\":$line}"
        [ -n "$line" ] || rc=1
    done
    echo "{\"node\":\"$node\",\"probe\":$(lab_probe "$node" rtt 203.0.113.11 7000 --count 5)}"
done
exit $rc
