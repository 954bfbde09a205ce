#!/usr/bin/env bash
# The demo: `flare demo` on the simulator explains each DCUtR step in words,
# puts the relay behind its own (slower) link so "via relay" is visibly
# slower than direct, and shows the symmetric case's failing attempts;
# scripts/demo.sh builds in its own directory (build/ keeps its tests),
# takes the lab lock with its own namespace prefix, and narrates the lab
# run live (scripts/demo_narrate.py, checked here on recorded events).
source "$(dirname "$0")/lib.sh"

timeout 60 "$flare" demo --delay-ms 25 --relay-delay-ms 60 >"$tmp/eim.txt" 2>&1
rc=$?
missing=""
for s in "sends CONNECT" "measured the round trip" "sends SYNC" "got SYNC" "opens a hole" "the two dials met"; do
    grep -q -- "-> .*$s" "$tmp/eim.txt" || missing="$missing '$s'"
done
[ $rc -eq 0 ] && [ -z "$missing" ] && ok "cone/cone: direct, every step explained" ||
    bad "eim demo rc $rc, missing:$missing"
grep -q "^  B .*the listener" "$tmp/eim.txt" && grep -q "^  A .*the dialer" "$tmp/eim.txt" &&
    grep -q "relay R .*60 ms link" "$tmp/eim.txt" && ok "topology names A, B and the relay's link" || bad "topology"
relay=$(sed -n 's/.*RTT over the relay: *\([0-9.]*\) ms/\1/p' "$tmp/eim.txt")
direct=$(sed -n 's/.*RTT direct (ping): *\([0-9.]*\) ms/\1/p' "$tmp/eim.txt")
python3 -c "import sys; sys.exit(0 if float('$relay') > 2 * float('$direct') else 1)" 2>/dev/null &&
    ok "via relay ${relay} ms vs direct ${direct} ms" || bad "relay RTT '$relay' vs direct '$direct'"
timeout 60 "$flare" demo --a-nat sym --b-nat sym >"$tmp/sym.txt" 2>&1
rc=$?
n=$(grep -c "attempt-failed" "$tmp/sym.txt")
[ $rc -eq 3 ] && [ "$n" -ge 3 ] && grep -q -- "-> gives up" "$tmp/sym.txt" &&
    ok "symmetric: exit 3, each failed attempt shown ($n)" || bad "sym demo rc $rc, $n attempts"
timeout 5 "$flare" demo --relay-delay-ms x >/dev/null 2>&1
[ $? -eq 2 ] && ok "bad --relay-delay-ms: exit 2" || bad "--relay-delay-ms x accepted"

demo=$root/scripts/demo.sh
bash -n "$demo" && ok "demo.sh parses" || bad "demo.sh syntax"
if grep -qE -- '-B build( |$)' "$demo"; then
    bad "demo.sh configures build/ (its FLARE_TESTS=OFF would stay cached for ctest)"
else
    ok "demo.sh builds in its own directory"
fi
grep -q "flock.*9" "$demo" && grep -q "/run/lock/flare-lab.lock" "$demo" &&
    grep -q "FLARE_LAB_PREFIX=" "$demo" && ok "demo.sh takes the lab lock, own prefix" || bad "lab lock/prefix"
grep -q -- "--relay-delay-ms" "$demo" && grep -q -- "--relay-delay-ms" "$root/lab/lab.sh" &&
    ok "the lab relay sits behind a delayed link" || bad "no relay delay in the lab"

# The live narrator on recorded events (a failing attempt and a punch).
mkdir "$tmp/logs"
cat >"$tmp/logs/a.log" <<'LOG'
{"event":"connected","ts":100.0,"peerId":"B","addr":"/ip4/203.0.113.10/tcp/4001/p2p/R/p2p-circuit","direction":"outbound","muxer":"/yamux/1.0.0"}
{"event":"holepunch_step","ts":100.5,"peerId":"B","role":"responder","step":"sync-received","attempt":1,"value":0}
{"event":"holepunch_step","ts":105.5,"peerId":"B","role":"responder","step":"attempt-failed","attempt":1,"value":2,"reason":"dial-timeout"}
{"event":"echo","ts":107.0,"protocol":"/echo/1.0.0","reply":"hi","ok":true,"addr":"/ip4/198.51.100.6/tcp/4001","relayed":false}
LOG
cat >"$tmp/logs/b.log" <<'LOG'
{"event":"holepunch_step","ts":100.4,"peerId":"A","role":"initiator","step":"rtt","attempt":1,"value":1,"rttMs":242.0}
{"event":"holepunch","ts":106.9,"peerId":"A","result":"direct","addr":"/ip4/198.51.100.2/tcp/4001","attempt":2,"relayRttMs":242.0}
LOG
touch "$tmp/logs/.stop"
timeout 10 python3 "$root/scripts/demo_narrate.py" "$tmp/logs" "$tmp/logs/.stop" >"$tmp/n.txt" 2>&1
grep -q "THROUGH THE RELAY" "$tmp/n.txt" && grep -q "measured the round trip over the relay: 242 ms" "$tmp/n.txt" &&
    grep -q "symmetric NAT.*trying again (attempt 2 of 3)" "$tmp/n.txt" && grep -q "HOLE PUNCHED" "$tmp/n.txt" &&
    grep -q "over the DIRECT connection" "$tmp/n.txt" && ok "narrator explains the steps" ||
    bad "narrator: $(cat "$tmp/n.txt")"
finish
