#!/usr/bin/env bash
# Stream migration in the NAT lab (root; skipped with 77 otherwise):
# `flare dial --wait-holepunch --echo P --echo-bytes 1048576` opens one echo
# stream over the relay before the punch and keeps writing; after the punch
# the stream moves to the direct connection and every byte comes back, in
# order. The relay cuts a circuit after 128 KiB each way, so the stream
# could not finish on it. Over TCP, then over QUIC (TRANSPORT=quic).
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" mg
export QUIET=1 LAB_LOGS ECHO_BYTES=1048576
LAB_LOGS=$(mktemp -d /tmp/flare-migrate.XXXXXX)
trap 'rm -rf "$LAB_LOGS"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
for tp in tcp quic; do
    rm -f "$LAB_LOGS"/*.log
    TRANSPORT=$tp timeout 180 "$root/lab/scenarios/holepunch.sh" --a-nat eim --b-nat eim \
        --delay-ms 20 >"$LAB_LOGS/out.txt" 2>&1 && ok "$tp cone/cone: direct" ||
        bad "$tp holepunch.sh: $(tail -5 "$LAB_LOGS/out.txt")"
    python3 - "$LAB_LOGS" <<'PY' && ok "$tp: 1 MiB echo stream began relayed, moved, every byte back in order" || bad "$tp: see above"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1] + "/a.log") if l.startswith("{")]
echo = [e for e in ev if e["event"] == "echo"]
moved = [e for e in ev if e["event"] == "echo_moved"]
hp = [e for e in ev if e["event"] == "holepunch" and e.get("result") == "direct"]
assert echo, "no echo event"
e = echo[-1]
print("echo:", json.dumps(e))
assert e["ok"] and e["bytes"] == 1048576, "bytes missing or wrong"
assert e["startedRelayed"] and e["moved"] and e["relayed"] is False, "the stream did not move"
assert moved and "/p2p-circuit" not in moved[-1]["addr"], "no echo_moved event"
if hp:
    assert moved[-1]["ts"] >= hp[-1]["ts"] - 1, "moved before the punch"
PY
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
