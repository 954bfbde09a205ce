#!/usr/bin/env bash
# The main job. For now: build flare, create an identity, inspect a multiaddr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
if [ -x build/flare ]; then
    build/flare id --key build/demo.key
    build/flare multiaddr /ip4/198.51.100.7/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA/p2p-circuit
else
    echo "flare CLI not built yet"
fi
