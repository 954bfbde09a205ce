#!/usr/bin/env bash
# Runs every flare test: unit, simulator, loopback, interop and (as root) the
# NAT lab, in a normal build and in an ASan+UBSan build, plus the format check
# and a short fuzz run. Usage: scripts/test.sh [--quick]   (--quick: one build)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

JOBS=${JOBS:-$(nproc)}
quick=0
[ "${1:-}" = "--quick" ] && quick=1
fail=0
step() { printf '\n=== %s\n' "$*"; }

step "format check (clang-format)"
if ! scripts/format.sh --check; then
    echo "format check failed: run scripts/format.sh" >&2
    fail=1
fi

step "sans-I/O check"
scripts/check-sansio.sh || fail=1

step "build (gcc, -Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFLARE_WERROR=ON -DFLARE_TESTS=ON >/dev/null
cmake --build build -j"$JOBS"
step "tests"
(cd build && ctest --output-on-failure -j"$JOBS") || fail=1

if [ $quick -eq 0 ]; then
    step "build (ASan+UBSan)"
    cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DFLARE_WERROR=ON -DFLARE_SANITIZE=ON \
        -DFLARE_BENCH=OFF >/dev/null
    cmake --build build-asan -j"$JOBS"
    step "tests under sanitizers"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        ctest --output-on-failure -j"$JOBS" -LE 'interop|lab|browser') || fail=1

    step "fuzz (short run)"
    scripts/fuzz.sh 8 || fail=1
fi

if [ $fail -ne 0 ]; then
    echo "SOME CHECKS FAILED" >&2
    exit 1
fi
echo "all checks passed"
