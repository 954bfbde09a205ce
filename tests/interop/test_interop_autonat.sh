#!/usr/bin/env bash
# Interop: AutoNAT between flare and js-libp2p over loopback.
#  1. flare client (`flare autonat`) against a js AutoNAT v1 server: identify
#     announces /libp2p/autonat/1.0.0, flare falls back to v1 (js has no
#     v2 server here), the DIAL / DIAL_RESPONSE exchange completes with a
#     verdict-bearing answer, and that answer does not make us public: js
#     never dials back private (loopback) addresses, so the only OK js could
#     give is the "reused our connection" kind, which flare must not trust.
#  2. js AutoNAT (its service also probes peers) against a flare node: the
#     flare server refuses loopback requesters (E_DIAL_REFUSED) and keeps
#     serving; the js node stays up and flare stays healthy (ping works).
# What loopback cannot test: a real dial-back (both sides refuse private
# addresses); the simulator tests (tests/host/test_autonat_sim.c) cover it.
# Exit 0 pass, 1 fail, 77 skip (no npm registry). Everything is time-bounded.
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

# 1. js AutoNAT v1 server, flare client
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --autonat --exit-after-ms 50000 \
    >"$tmp/js1.out" 2>"$tmp/js1.err" &
pids+=($!)
wait_line "$tmp/js1.out" listening || { echo "js listener did not start"; cat "$tmp/js1.err"; exit 1; }
jsaddr=$(addr_of "$tmp/js1.out")
timeout 40 "$flare" autonat "$jsaddr" --listen /ip4/127.0.0.1/tcp/0 --allow-private \
    --timeout 30 --json >"$tmp/f1.out" 2>"$tmp/f1.err"
echo "{\"event\":\"exit\",\"code\":$?}" >>"$tmp/f1.out"
check "js announces AutoNAT v1 in identify" "$tmp/f1.out" \
    'any("/libp2p/autonat/1.0.0" in e["protocols"] for e in ev("autonat_server"))'
check "flare asked about its loopback address" "$tmp/f1.out" \
    'any(e["addr"].startswith("/ip4/127.0.0.1/tcp/") for e in ev("autonat_addr"))'
check "the v1 exchange completed (an answer, no timeout)" "$tmp/f1.out" \
    'ev("autonat") and ev("autonat")[0]["status"] in ("ok", "unreachable")'
check "a js answer over loopback does not make flare public" "$tmp/f1.out" \
    'ev("autonat")[0]["ip4"] != "public"'

# 2. flare node (serves AutoNAT v1 + v2), js AutoNAT dials it
timeout 60 "$flare" listen --listen /ip4/127.0.0.1/tcp/0 --json >"$tmp/f2.out" 2>"$tmp/f2.err" &
pids+=($!)
wait_line "$tmp/f2.out" listening || { echo "flare listener did not start"; cat "$tmp/f2.err"; exit 1; }
faddr=$(addr_of "$tmp/f2.out")
timeout 30 "$node" "$peer" --dial "$faddr" --autonat --ping --stay --exit-after-ms 8000 \
    >"$tmp/js2.out" 2>"$tmp/js2.err"
check "flare announces AutoNAT v1 and v2 (js identify)" "$tmp/js2.out" \
    'any("/libp2p/autonat/1.0.0" in e["protocols"] and "/libp2p/autonat/2/dial-request" in e["protocols"] and "/libp2p/autonat/2/dial-back" in e["protocols"] for e in ev("identify"))'
timeout 20 "$flare" ping "$faddr" -c 1 --json >"$tmp/f2p.out" 2>&1
check "the flare node still serves after js's AutoNAT traffic" "$tmp/f2p.out" 'len(ev("ping")) == 1'

finish
