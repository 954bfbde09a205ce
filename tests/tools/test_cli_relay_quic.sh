#!/usr/bin/env bash
# `flare relay` with no --listen serves TCP and QUIC on port 4001, and a
# circuit runs over QUIC end to end: B (QUIC only) reserves over QUIC, A
# (QUIC only) dials B's relayed address and gets an echo back. In a network
# namespace of its own (port 4001 is fixed); skipped without one.
if [ -z "${FLARE_IN_NETNS:-}" ]; then
    unshare -n true 2>/dev/null || { echo "no network namespaces: skipped"; exit 77; }
    exec unshare -n env FLARE_IN_NETNS=1 bash "$0" "$@"
fi
ip link set lo up || exit 77
source "$(dirname "$0")/lib.sh"

seed_r=$(printf 'a1%.0s' $(seq 32))
"$flare" relay --seed "$seed_r" --json >"$tmp/relay.log" 2>&1 &
pids+=($!)
wait_for "$tmp/relay.log" 'e["event"] == "listening" and "/tcp/4001/" in e["addr"]' >/dev/null &&
    ok "default listen: /tcp/4001" || bad "no TCP listener: $(cat "$tmp/relay.log")"
line=$(wait_for "$tmp/relay.log" 'e["event"] == "listening" and "/udp/4001/quic-v1/" in e["addr"]') &&
    ok "default listen: /udp/4001/quic-v1" || { bad "no QUIC listener"; finish; }
rid=$(field "$line" peerId)
raddr=/ip4/127.0.0.1/udp/4001/quic-v1/p2p/$rid

"$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --relay "$raddr" --echo /echo/1.0.0 \
    --seed "$(printf 'b2%.0s' $(seq 32))" --no-holepunch --json >"$tmp/b.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/b.log" 'e["event"] == "reservation"' 150) || { bad "no reservation: $(cat "$tmp/b.log")"; finish; }
baddr=$(field "$line" addr)
case $baddr in
*/udp/4001/quic-v1/p2p/*/p2p-circuit/p2p/*) ok "reserved over QUIC: $baddr" ;;
*) bad "relayed address not over QUIC: $baddr" ;;
esac
wait_for "$tmp/b.log" 'e["event"] == "connected" and e.get("transport") == "quic-v1"' >/dev/null &&
    ok "listener's relay connection is QUIC" || bad "listener's relay connection: $(grep connected "$tmp/b.log")"

timeout 15 "$flare" dial "$baddr" --echo /echo/1.0.0 --message over-quic --seed "$(printf 'c3%.0s' $(seq 32))" \
    --no-holepunch --json >"$tmp/a.log" 2>&1
grep -q '"event":"echo".*"ok":true' "$tmp/a.log" && ok "echo through a circuit over QUIC" ||
    bad "echo: $(cat "$tmp/a.log")"
wait_for "$tmp/relay.log" 'e["event"] == "relay_circuit_opened"' >/dev/null &&
    ok "relay reports the circuit" || bad "relay: no circuit event $(cat "$tmp/relay.log")"
finish
