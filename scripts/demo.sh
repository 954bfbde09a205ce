#!/usr/bin/env bash
# The main job. Until the hole-punching demo lands (issue 5/5): build flare,
# start a node on loopback, connect a second one to it, identify, ping and
# echo, and print what happened.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
f=build/flare
tmp=$(mktemp -d)
trap 'kill $lpid 2>/dev/null; rm -rf "$tmp"' EXIT
echo "== identity"
$f id --key build/demo.key
echo
echo "== a node listening on loopback"
$f listen --listen /ip4/127.0.0.1/tcp/0 --echo /echo/1.0.0 >"$tmp/l.log" 2>&1 &
lpid=$!
for _ in $(seq 50); do grep -q "listening on" "$tmp/l.log" && break; sleep 0.1; done
addr=$(sed -n 's/^listening on //p' "$tmp/l.log" | head -1)
echo "listening on $addr"
echo
echo "== a second node dials it (TCP + Noise + yamux), identifies, echoes"
$f dial "$addr" --echo /echo/1.0.0 --message "hello, flare"
echo
echo "== ping"
$f ping "$addr" -c 3
echo
echo "== a relayed address, inspected"
$f multiaddr "/ip4/198.51.100.7/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit"
