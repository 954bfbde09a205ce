#!/usr/bin/env bash
# Every public function in include/flare/ has a comment saying what it
# returns (scripts/check-api-docs.py); the checker itself must catch an
# undocumented declaration.
set -euo pipefail
src=${FLARE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
command -v python3 >/dev/null || exit 77
python3 "$src/scripts/check-api-docs.py" "$src"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/flare"
printf '/* Returns 1 if ok. */\nint flare_ok(void);\n/* Frees x. */\nvoid flare_free_x(int *x);\n' \
    >"$tmp/include/flare/good.h"
python3 "$src/scripts/check-api-docs.py" "$tmp" >/dev/null
printf '/* Frees x. */\nvoid flare_free_x(int *x);\n\nint flare_undocumented(void);\n' \
    >"$tmp/include/flare/bad.h"
if python3 "$src/scripts/check-api-docs.py" "$tmp" >"$tmp/out"; then
    echo "FAIL: an undocumented function passed the check" >&2
    exit 1
fi
grep -q 'flare_undocumented: no comment' "$tmp/out"
printf '/* Counts things. */\nint flare_count(void);\n' >"$tmp/include/flare/bad.h"
if python3 "$src/scripts/check-api-docs.py" "$tmp" >"$tmp/out"; then
    echo "FAIL: a comment without its return passed the check" >&2
    exit 1
fi
grep -q 'flare_count: the comment does not say what it returns' "$tmp/out"
echo "ok"
