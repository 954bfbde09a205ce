#!/usr/bin/env bash
# Work after the punch, in the NAT lab (root; skipped with 77 otherwise):
# `flare dial --wait-holepunch --echo P --message M` sends M after the hole
# punch, over the direct connection, and its echo event says so; the relay
# sits behind a 40 ms link (lab.sh --relay-delay-ms), so the relayed RTT is
# visibly longer than the direct one.
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" pe
dl=${FLARE_BINARY_DIR:-$root/build}/lab/flare-delaylink
[ -x "$dl" ] && export FLARE_DELAYLINK=$dl
export QUIET=1 LAB_LOGS
LAB_LOGS=$(mktemp -d /tmp/flare-cli-punch.XXXXXX)
trap 'rm -rf "$LAB_LOGS"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
timeout 120 "$root/lab/scenarios/holepunch.sh" --a-nat eim --b-nat eim --delay-ms 20 \
    --relay-delay-ms 40 >"$LAB_LOGS/out.txt" 2>&1 && ok "cone/cone: direct" || bad "holepunch.sh: $(tail -5 "$LAB_LOGS/out.txt")"
python3 - "$LAB_LOGS" <<'PY' && ok "echo after the punch went direct; relay RTT > direct RTT" || bad "see above"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1] + "/a.log") if l.startswith("{")]
t = {k: [e for e in ev if e["event"] == k] for k in ("echo", "holepunch", "ping", "holepunch_step")}
echo, hp = t["echo"], t["holepunch"]
assert echo and hp, "no echo or holepunch event"
e = echo[-1]
print("echo:", json.dumps(e))
assert e["ok"] and e["relayed"] is False and "/p2p-circuit" not in e["addr"], "echo not direct"
assert e["addr"] == hp[-1]["addr"], "echo not on the punched connection"
assert e["ts"] > hp[-1]["ts"], "echo before the punch ended"
relay_rtt = [s["rttMs"] for s in t["holepunch_step"] if s.get("rttMs")]
direct_rtt = t["ping"][-1]["rttMs"]
print("relay rtt %.1f ms, direct %.1f ms" % (relay_rtt[-1], direct_rtt))
assert relay_rtt[-1] > direct_rtt + 100, "the relay is not visibly slower"
PY
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
