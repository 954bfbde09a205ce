#!/usr/bin/env bash
# flare sim: 60 nodes, 5 pairs. The --json line has every field docs/cli.md
# documents for sim_summary, each in its range, and is the same for the same
# seed but for ts and wall_s; progress goes to stderr; the human summary; bad flags
# and a bad --nat-mix are usage errors; a --nat-mix file is used; --security
# plaintext runs the same flow; --threads 2 and 3 give the same summary; the
# phases end once their work is done (every private node reserved, every
# pair's dial over), well before the 120 s the flags allow.
source "$(dirname "$0")/lib.sh"

run() { timeout 120 "$flare" sim --nodes 60 --pairs 5 "$@"; }
run --json >"$tmp/a.json" 2>"$tmp/a.err"
rc=$?
[ $rc = 0 ] && [ "$(wc -l <"$tmp/a.json")" = 1 ] && ok "one JSON line, exit 0" || bad "rc $rc: $(cat "$tmp/a.json" "$tmp/a.err")"
grep -q "joined 60 of 60 nodes" "$tmp/a.err" && grep -q "pairs of private nodes dial" "$tmp/a.err" &&
    grep -q "join done: 42 of 42 private nodes hold a reservation" "$tmp/a.err" &&
    grep -q "dials done: [0-5] of 5 pairs direct" "$tmp/a.err" &&
    ok "progress on stderr" || bad "progress: $(cat "$tmp/a.err")"
python3 - "$tmp/a.json" <<'PY' && ok "every field present and sane" || bad "fields: $(cat "$tmp/a.json")"
import json, sys
e = json.loads(open(sys.argv[1]).read())
want = ["event", "ts", "nodes", "seed", "public", "private", "private_with_relay", "private_reachable",
        "pairs", "found", "direct", "wall_s", "sim_s", "direct_rate", "per_pairing",
        "ms_to_direct_p50", "ms_to_direct_p90", "relays", "relay_reservations_max",
        "relay_reservations_mean", "lookup_hops_p50", "bytes_per_node"]
missing = [k for k in want if k not in e]
assert not missing, missing
assert set(e) == set(want), set(e) - set(want)
assert e["event"] == "sim_summary" and e["nodes"] == 60 and e["seed"] == 1
assert e["public"] == 18 and e["private"] == 42, (e["public"], e["private"])
# Every private node finds a relay (none configured), every pair dials.
assert e["private_with_relay"] == 42 and e["private_reachable"] == 0
assert e["pairs"] == 5 and e["found"] == 5 and 0 <= e["direct"] <= 5
# Joins over 30 s, then at least 5 s; every pair's outcome is in within
# seconds: the run ends well before its 60 + 60 s bounds.
assert 0 < e["wall_s"] < 120 and 37 <= e["sim_s"] < 60 and e["ts"] > 1.6e9
assert abs(e["direct_rate"] - e["direct"] / e["pairs"]) < 1e-3
cells = e["per_pairing"]
assert sum(v[1] for v in cells.values()) == e["pairs"]
assert sum(v[0] for v in cells.values()) == e["direct"]
for k, v in cells.items():
    a, b = k.split("/")
    for side in (a, b):
        m, f = side.split("-")
        assert m in ("EI", "AD", "APD") and f in ("EI", "AD", "APD"), k
    assert 0 <= v[0] <= v[1], (k, v)
if e["direct"]:
    assert 0 < e["ms_to_direct_p50"] <= e["ms_to_direct_p90"] < 60000
assert e["relays"] == 9
assert e["relay_reservations_max"] >= e["relay_reservations_mean"] > 0
# Two reservations per private node, spread over the relays.
assert abs(e["relay_reservations_mean"] * e["relays"] - 2 * 42) < 0.1
assert e["relay_reservations_max"] < 42
assert 0 <= e["lookup_hops_p50"] < 10
assert 10000 < e["bytes_per_node"] < 50000000
PY
run --json >"$tmp/b.json" 2>/dev/null
python3 -c 'import json,sys
a, b = (json.loads(open(f).read()) for f in sys.argv[1:])
for e in (a, b):
    e.pop("wall_s"); e.pop("ts")
sys.exit(a != b)' "$tmp/a.json" "$tmp/b.json" && ok "same seed, same summary (but ts, wall_s)" ||
    bad "not reproducible: $(cat "$tmp/a.json" "$tmp/b.json")"
run --json --seed 2 >"$tmp/c.json" 2>/dev/null
python3 -c 'import json,sys
a, c = (json.loads(open(f).read()) for f in sys.argv[1:])
for e in (a, c):
    e.pop("wall_s"); e.pop("ts")
assert c["seed"] == 2
sys.exit(a == c)' "$tmp/a.json" "$tmp/c.json" && ok "another seed, another run" || bad "seed 2: $(cat "$tmp/c.json")"

human=$(run -q 2>"$tmp/q.err")
grep -q "^flare sim: 60 nodes (18 public, 42 private), seed 1" <<<"$human" &&
    grep -q "private nodes with a relay reservation: 42 of 42" <<<"$human" && [ ! -s "$tmp/q.err" ] &&
    ok "human summary, -q silences the progress" || bad "human: $human $(cat "$tmp/q.err")"

# Endpoint-independent mapping only (port-restricted cones): every pair punches.
printf '# port-restricted cone\nei apd 1\n' >"$tmp/mix"
run --json --nat-mix "$tmp/mix" >"$tmp/m.json" 2>/dev/null
python3 -c 'import json,sys
e = json.loads(open(sys.argv[1]).read())
assert e["per_pairing"] == {"EI-APD/EI-APD": [5, 5]}, e["per_pairing"]' "$tmp/m.json" &&
    ok "--nat-mix FILE is used" || bad "--nat-mix: $(cat "$tmp/m.json")"

# The same flow without Noise: every private node still reserves, every pair
# is found.
run --json --security plaintext >"$tmp/p.json" 2>/dev/null
python3 -c 'import json,sys
e = json.loads(open(sys.argv[1]).read())
assert e["private_with_relay"] == 42 and e["found"] == 5, e' "$tmp/p.json" &&
    ok "--security plaintext" || bad "plaintext: $(cat "$tmp/p.json")"

# --threads 2 and 3: the same 8 partitions run in parallel windows; the run
# depends on the seed and the partitions only, and the flow has the same
# outcomes as on one thread.
run --json --security plaintext --threads 2 >"$tmp/t1.json" 2>/dev/null
run --json --security plaintext --threads 3 >"$tmp/t2.json" 2>/dev/null
python3 -c 'import json,sys
a, b, p = (json.loads(open(f).read()) for f in sys.argv[1:])
for e in (a, b, p):
    e.pop("wall_s"); e.pop("ts")
assert a == b, (a, b)
for k in ("nodes", "private_with_relay", "pairs", "found"):
    assert a[k] == p[k], (k, a[k], p[k])' "$tmp/t1.json" "$tmp/t2.json" "$tmp/p.json" &&
    ok "--threads 2 and 3: same summary, same outcomes as one thread" ||
    bad "--threads 2: $(cat "$tmp/t1.json" "$tmp/t2.json")"

for args in "--security tls" "--threads 0" "--threads 65" "--nodes 5" "--nodes x" "--pairs -1" "--public 101" "--join-s 0" "--conn-low 5" \
    "--nat-mix $tmp/none" "--bogus 1" "--nodes"; do
    # shellcheck disable=SC2086
    timeout 10 "$flare" sim $args >/dev/null 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && [ -s "$tmp/err" ] && ok "sim $args: exit 2" || bad "sim $args: rc $rc"
done
printf 'ei sym 1\n' >"$tmp/badmix"
timeout 10 "$flare" sim --nat-mix "$tmp/badmix" >/dev/null 2>"$tmp/err"
[ $? = 2 ] && grep -q "badmix:1" "$tmp/err" && ok "a bad --nat-mix line is named" || bad "bad mix: $(cat "$tmp/err")"
finish
