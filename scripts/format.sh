#!/usr/bin/env bash
# clang-format over flare's C sources. --check only reports.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files -co --exclude-standard '*.c' '*.h' | grep -vE '^(build|node_modules)' || true)
[ -z "$files" ] && exit 0
if [ "${1:-}" = "--check" ]; then
    # shellcheck disable=SC2086
    clang-format --dry-run --Werror $files
else
    # shellcheck disable=SC2086
    clang-format -i $files
fi
