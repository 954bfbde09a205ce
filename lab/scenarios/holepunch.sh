#!/usr/bin/env bash
# Scenario: the whole Flare flow in the NAT lab with real flare processes.
#   relay (public) <- B (behind router rb) keeps a reservation
#   A (behind router ra) dials B through the relay; DCUtR punches a hole.
# Usage: holepunch.sh [lab.sh up options]   (default: eim/eim, 25 ms per link)
# Env: FLARE_BIN (default build/flare), EXPECT=direct|relayed (default
# direct; relayed also needs B's holepunch event with a reason),
# QUIET=1 (no timeline), TRANSPORT=tcp|quic (default tcp: every node listens
# and dials on /tcp/4001, or on /udp/4001/quic-v1 only; both: on both, the
# relay reached over TCP), RELAY_IMPL=flare|js (js: a js-libp2p relay, over
# TCP or QUIC as TRANSPORT says),
# FAMILY=v4|dual|v6 (default v4; dual: the lab gets --ipv6, every node
# listens on IPv4 and IPv6 and A/B are behind an IPv4 NAT plus an IPv6
# firewall; v6: IPv6 only, B reserves over IPv6; WON=ip4|ip6 then requires
# that family to win), HARD_PUNCH=1 (A and B run --hard-punch and also
# connect to a second observer on pub1, so they can tell whether their NAT
# maps per destination), ECHO_BYTES=N (A runs a long echo of N bytes from
# the start instead of a message after the punch), NO_MIGRATE=1 (A and B
# run --no-migrate). Prints a timeline and a summary; exits 0 when the
# outcome is the expected one.
set -euo pipefail
# shellcheck source=../lib.sh
source "$(dirname "$0")/../lib.sh"
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BIN:-$root/build/flare}
expect=${EXPECT:-direct}
[ $# -gt 0 ] || set -- --a-nat eim --b-nat eim --delay-ms 25
family=${FAMILY:-v4}
[ "$family" = v4 ] || set -- "$@" --ipv6
lab_up "$@"

seed_r=$(printf 'a1%.0s' $(seq 32))
seed_b=$(printf 'b2%.0s' $(seq 32))
seed_a=$(printf 'c3%.0s' $(seq 32))
rid=$(lab_json "$("$flare" id --seed "$seed_r" --json)" peerId)
common=(--allow-testnet --json)
[ "${NO_MIGRATE:-0}" = 1 ] && common+=(--no-migrate)
tp=tcp/4001
[ "${TRANSPORT:-tcp}" = quic ] && tp=udp/4001/quic-v1
tps=("$tp")
[ "${TRANSPORT:-tcp}" = both ] && tps=(tcp/4001 udp/4001/quic-v1)
# Listen addresses of the relay (rl) and of A and B (nl) per family.
rl=() nl=()
for t in "${tps[@]}"; do
    if [ "$family" != v6 ]; then
        rl+=(--listen "/ip4/$FLARE_LAB_IP_relay/$t")
        nl+=(--listen "/ip4/0.0.0.0/$t")
    fi
    if [ "$family" != v4 ]; then
        rl+=(--listen "/ip6/$FLARE_LAB_IP6_relay/$t")
        nl+=(--listen "/ip6/::/$t")
    fi
done

t0=$(date +%s.%N)
if [ "${RELAY_IMPL:-flare}" = js ]; then
    # A js-libp2p relay from npm (tests/interop/js), same identity seed.
    paths=$("$root/scripts/interop-setup.sh" "$(dirname "$flare")") || exit $?
    node=$(sed -n 1p <<<"$paths")
    peer=$(sed -n 2p <<<"$paths")
    if [ "$tp" = tcp/4001 ]; then
        lab_start relay relay "$node" "$peer" --listen "/ip4/$FLARE_LAB_IP_relay/tcp/4001" --relay \
            --seed "$seed_r" --exit-after-ms 120000
    else # QUIC only: circuit-relay-v2 server over @chainsafe/libp2p-quic
        lab_start relay relay "$node" "$(dirname "$peer")/quic-relay.mjs" \
            --listen "/ip4/$FLARE_LAB_IP_relay/$tp" --relay --seed "$seed_r" --exit-after-ms 120000
    fi
else
    lab_start relay relay "$flare" relay "${rl[@]}" --seed "$seed_r" "${common[@]}"
fi
lab_wait_event "$LAB_LOGS/relay.log" listening 20 >/dev/null
raddr=/ip4/$FLARE_LAB_IP_relay/$tp/p2p/$rid
[ "$family" = v6 ] && raddr=/ip6/$FLARE_LAB_IP6_relay/$tp/p2p/$rid

extra=()
if [ "${HARD_PUNCH:-0}" = 1 ]; then
    seed_o=$(printf 'd4%.0s' $(seq 32))
    oid=$(lab_json "$("$flare" id --seed "$seed_o" --json)" peerId)
    lab_start pub1 observer "$flare" listen --listen "/ip4/$FLARE_LAB_IP_pub1/$tp" \
        --seed "$seed_o" "${common[@]}"
    lab_wait_event "$LAB_LOGS/observer.log" listening 20 >/dev/null
    extra=(--hard-punch --connect "/ip4/$FLARE_LAB_IP_pub1/$tp/p2p/$oid")
fi

lab_start b b "$flare" listen "${nl[@]}" --relay "$raddr" --seed "$seed_b" \
    --echo /echo/1.0.0 "${extra[@]}" "${common[@]}"
line=$(lab_wait_event "$LAB_LOGS/b.log" reservation 20) || {
    echo "B got no reservation"
    exit 1
}
baddr=$(lab_json "$line" addr)

echo_args=(--message after-the-punch)
echo_wait=5
if [ -n "${ECHO_BYTES:-}" ]; then
    echo_args=(--echo-bytes "$ECHO_BYTES")
    echo_wait=$((10 + ECHO_BYTES / 50000)) # paced at about 100 KiB/s
fi
[ "${HARD_PUNCH:-0}" = 1 ] && sleep 1 # A's observations before the relayed connection
lab_start a a "$flare" dial "$baddr" "${nl[@]}" --seed "$seed_a" \
    --wait-holepunch 45 --echo /echo/1.0.0 "${echo_args[@]}" "${extra[@]}" "${common[@]}"
if [ "${KILL_RELAY:-0}" = 1 ]; then
    # Kill the relay as soon as the relayed connection is up: DCUtR's
    # exchange is then in flight over it.
    lab_wait_event "$LAB_LOGS/a.log" holepunch_step 20 >/dev/null || true
    lab_stop relay
    sleep 8
    alive=0
    for n in a b; do
        [ -n "${LAB_PIDS[$n]:-}" ] && kill -0 "${LAB_PIDS[$n]}" 2>/dev/null && alive=$((alive + 1))
    done
    # B must still run (a listener); A may have finished. Neither may crash:
    # a crash leaves a sanitizer report or a signal status in the .err logs.
    if grep -qiE "sanitizer|segmentation|abort" "$LAB_LOGS"/*.err; then
        echo "a node crashed after the relay died"
        exit 1
    fi
    grep -h -E '"event":"(holepunch|disconnected|reservation_lost)"' "$LAB_LOGS/a.log" "$LAB_LOGS/b.log" | \
        cut -c1-160
    [ "$alive" -ge 1 ] || { echo "no node left running"; exit 1; }
    grep -q '"event":"reservation_lost"' "$LAB_LOGS/b.log" || { echo "B did not notice"; exit 1; }
    echo "relay killed mid-punch: nodes kept running, B reported the lost reservation"
    exit 0
fi

# Both ends report the punch's end (or A gives up waiting, 45 s).
for _ in $(seq 600); do
    n=$(cat "$LAB_LOGS/a.log" "$LAB_LOGS/b.log" 2>/dev/null | grep -c '"event":"holepunch"' || true)
    [ "${n:-0}" -ge 2 ] && break
    sleep 0.1
done
lab_wait_event "$LAB_LOGS/a.log" echo "$echo_wait" >/dev/null || true # after A's direct ping

python3 - "$LAB_LOGS" "$t0" "$expect" "${QUIET:-0}" "${WON:-}" <<'PY'
import json, os, sys
logs, t0, expect, quiet = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
want_family = sys.argv[5]
def events(name):
    out = []
    try:
        for line in open(os.path.join(logs, name + ".log")):
            try: out.append(json.loads(line))
            except ValueError: pass
    except OSError: pass
    return out
ev = {n: events(n) for n in ("relay", "a", "b")}
rows = []
for n, es in ev.items():
    for i, e in enumerate(es):
        rows.append((e.get("ts", 0), n, i, e))
rows.sort(key=lambda r: (r[0], r[1], r[2]))
rows = [r for r in rows if r[0]]
t_first = rows[0][0] if rows else 0
def describe(n, e):
    k = e["event"]
    if k == "reservation": return "reserved a slot: " + e["addr"]
    if k == "connected": return "connected (%s) %s" % (e["direction"], e["addr"])
    if k == "relay_circuit_opened": return "circuit opened %s... -> %s..." % (e["src"][:12], e["dst"][:12])
    if k == "holepunch_step":
        s = "dcutr %s (attempt %s)" % (e["step"], e["attempt"])
        if e.get("rttMs"): s += " rtt %.1f ms" % e["rttMs"]
        if e.get("reason"): s += " " + e["reason"]
        return s
    if k == "holepunch":
        return ("HOLE PUNCH: direct connection " + (e.get("addr") or "")) if e["result"] == "direct" \
            else "HOLE PUNCH FAILED: " + str(e.get("reason"))
    if k == "ping": return "ping over the direct connection: %.1f ms" % e["rttMs"]
    if k == "echo": return "echo %r over the %s connection %s%s" % (e.get("reply", "%s bytes" % e.get("bytes")), "relayed" if e.get("relayed") else "direct", e.get("addr"), " (moved from the relayed one)" if e.get("moved") else "")
    if k == "echo_moved": return "echo stream moved to the direct connection " + e["addr"]
    if k == "addrs_changed": return "external addresses " + ",".join(e["externalAddrs"]) + " (NAT: " + e["natType"] + ")"
    if k == "reachability": return "reachability %s" % json.dumps({x: e[x] for x in e if x != "event"})
    return None
if not quiet:
    print("timeline (wall clock, all nodes):")
    for ts, n, i, e in rows:
        d = describe(n, e)
        if d: print("  %8.3f s  %-5s %s" % (ts - t_first, n, d))
a_hp = [e for e in ev["a"] if e["event"] == "holepunch"]
b_hp = [e for e in ev["b"] if e["event"] == "holepunch"]
pings = [e for e in ev["a"] if e["event"] == "ping"]
direct = any(e["result"] == "direct" for e in a_hp + b_hp)
rtt = [e.get("relayRttMs") for e in b_hp if e.get("relayRttMs")]
print("summary:")
print("  outcome:        %s" % ("DIRECT connection" if direct else "stayed relayed"))
if not direct and b_hp: print("  reason:         %s" % b_hp[-1].get("reason"))
if b_hp: print("  attempts:       %s" % b_hp[-1].get("attempt"))
won = [e for e in b_hp + a_hp if e["result"] == "direct"]
if won: print("  won:            %s/%s (B), %s/%s (A)" % tuple(
    x for side in (b_hp, a_hp) for x in ((side[-1].get("family"), side[-1].get("transport")) if side else (None, None))))
if rtt: print("  RTT via relay:  %.1f ms" % rtt[-1])
if pings: print("  RTT direct:     %.1f ms" % pings[-1]["rttMs"])
relayed = [e["ts"] for e in ev["a"] if e["event"] == "connected" and "/p2p-circuit" in e.get("addr", "")]
done = [e["ts"] for e in b_hp + a_hp if e["result"] == "direct"]
if relayed and done:
    print("  relayed->direct: %.0f ms (relayed connection up to the direct one)" % ((max(done) - relayed[0]) * 1000))
echo = [e for e in ev["a"] if e["event"] == "echo"]
if echo:
    print("  echo after it:  %s connection %s" % ("relayed" if echo[-1].get("relayed") else "direct", echo[-1].get("addr")))
else:
    print("  echo after it:  none")
ok = direct == (expect == "direct") and bool(echo) and echo[-1].get("relayed") != direct
if want_family and direct and not all(e.get("family") == want_family for e in won):
    print("  expected the %s family to win" % want_family)
    ok = False
# A punch that failed must be reported by both sides with a reason.
if not direct and not (a_hp and b_hp and all(e.get("reason") for e in a_hp + b_hp)):
    print("  a failed punch without a holepunch event and a reason")
    ok = False
win = [e.get("transport") for e in a_hp + b_hp if e["result"] == "direct" and e.get("transport")]
if win: print("  transport:      %s" % win[-1])
print("  expected:       %s -> %s" % (expect, "OK" if ok else "UNEXPECTED"))
sys.exit(0 if ok else 1)
PY
