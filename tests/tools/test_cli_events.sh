#!/usr/bin/env bash
# Every JSON event the flare CLI prints is documented in docs/cli.md, with
# every field (tests/tools/check_events.py reads the event table there):
# the event names in the CLI's source, the lines of a loopback run (relay,
# listen --relay with an echo, dial through the circuit and direct, ping,
# dial --wait-holepunch without a punch, a peer ID mismatch, id, multiaddr),
# and the lines the other CLI tests produce (re-run through a wrapper that
# keeps a copy of flare's stdout). The echo event names the connection that
# carried it: relayed through the circuit, direct otherwise.
source "$(dirname "$0")/lib.sh"
check="python3 $root/tests/tools/check_events.py $root/docs/cli.md $root/tools/flare"

$check >"$tmp/static.txt" && ok "every event name in tools/flare is documented" ||
    bad "undocumented events in the source: $(grep FAIL "$tmp/static.txt")"

# Loopback run.
mkdir "$tmp/run"
"$flare" relay --listen /ip4/127.0.0.1/tcp/0 --json >"$tmp/run/relay.log" 2>&1 &
pids+=($!)
raddr=$(listening_addr "$tmp/run/relay.log") || { bad "relay did not start"; exit 1; }
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --relay "$raddr" --echo /echo/1.0.0 --json \
    >"$tmp/run/b.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/run/b.log" 'e["event"] == "reservation"') || { bad "no reservation"; exit 1; }
baddr=$(field "$line" addr)
bdirect=$(listening_addr "$tmp/run/b.log")

timeout 10 "$flare" dial "$baddr" --echo /echo/1.0.0 --message via-relay --json >"$tmp/run/a1.log" 2>&1
line=$(wait_for "$tmp/run/a1.log" 'e["event"] == "echo"')
[ "$(field "$line" relayed)" = True ] && [[ $(field "$line" addr) == */p2p-circuit* ]] &&
    [ "$(field "$line" ok)" = True ] && ok "echo through the circuit says relayed" || bad "relayed echo: $line"
timeout 10 "$flare" dial "$bdirect" --echo /echo/1.0.0 --message direct --json >"$tmp/run/a2.log" 2>&1
line=$(wait_for "$tmp/run/a2.log" 'e["event"] == "echo"')
[ "$(field "$line" relayed)" = False ] && [ "$(field "$line" addr)" = "${bdirect%/p2p/*}" ] &&
    ok "direct echo says direct, with its address" || bad "direct echo: $line"
timeout 10 "$flare" ping "$baddr" -c 2 --json >"$tmp/run/ping.log" 2>&1 &&
    ok "ping through the circuit" || bad "ping through the circuit"
# No punch on loopback (private addresses): the echo goes over the relay
# once the wait is over, then exit 4.
timeout 10 "$flare" dial "$baddr" --listen /ip4/127.0.0.1/tcp/0 --wait-holepunch 1 \
    --echo /echo/1.0.0 --message late --json >"$tmp/run/a3.log" 2>&1
rc=$?
python3 - "$tmp/run/a3.log" <<'PY' && [ $rc -eq 4 ] && ok "dial --wait-holepunch without a punch: echo after the wait, relayed, exit 4" || bad "wait-holepunch: rc $rc"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
err = [e for e in ev if e["event"] == "error" and e.get("where") == "holepunch"]
echo = [e for e in ev if e["event"] == "echo"]
assert err and echo and echo[0]["ts"] > err[0]["ts"] and echo[0]["relayed"] is True and echo[0]["ok"]
PY
other=$(field "$("$flare" id --json)" peerId)
timeout 10 "$flare" dial "${bdirect%/p2p/*}/p2p/$other" --json >"$tmp/run/a4.log" 2>&1
line=$(wait_for "$tmp/run/a4.log" 'e["event"] == "error" and "answered" in e')
[ "$(field "$line" answered)" = "${bdirect##*/}" ] && [ "$(field "$line" expected)" = "$other" ] &&
    ok "peer ID mismatch names the peer that answered" || bad "mismatch: $(cat "$tmp/run/a4.log")"
"$flare" id --json >"$tmp/run/id.log"
"$flare" multiaddr "$baddr" --json >"$tmp/run/ma.log"
"$flare" multiaddr /ip4/1.2.3.4/tcp/99999 --json >"$tmp/run/ma2.log" 2>/dev/null
for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
wait 2>/dev/null
pids=()
for ev in listening connected disconnected identify observed_addr reservation relay_reservation \
    relay_circuit_opened relay_circuit_closed echo echo_stream ping error id multiaddr; do
    grep -qh "\"event\":\"$ev\"" "$tmp"/run/*.log || bad "the loopback run printed no $ev event"
done
$check "$tmp"/run/*.log >"$tmp/run.txt" && ok "loopback run: $(tail -1 "$tmp/run.txt")" ||
    bad "loopback run: $(grep FAIL "$tmp/run.txt")"

# The other CLI tests, through a wrapper that keeps a copy of stdout.
mkdir -p "$tmp/bin" "$tmp/tee"
cat >"$tmp/bin/flare" <<WRAP
#!/usr/bin/env bash
exec "$flare" "\$@" > >(tee -a "$tmp/tee/\$\$.log")
WRAP
chmod +x "$tmp/bin/flare"
for t in "$root"/tests/tools/test_cli*.sh; do
    case $(basename "$t") in # no JSON there (demo, man page)
    "$(basename "$0")" | test_cli_demo.sh | test_cli_manpage.sh) continue ;;
    esac
    FLARE_BINARY_DIR=$tmp/bin timeout 120 bash "$t" >"$tmp/sub.txt" 2>&1 ||
        echo "note: $(basename "$t") failed through the wrapper: $(grep FAIL "$tmp/sub.txt" | head -3)"
done
n=$(cat "$tmp"/tee/*.log 2>/dev/null | grep -c '^{"event"')
[ "${n:-0}" -gt 50 ] || bad "the other CLI tests printed only ${n:-0} JSON lines"
$check "$tmp"/tee/*.log >"$tmp/tee.txt" && ok "other CLI tests: $(tail -1 "$tmp/tee.txt")" ||
    bad "other CLI tests: $(grep FAIL "$tmp/tee.txt" | head -5)"
finish
