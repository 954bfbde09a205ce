#!/usr/bin/env bash
# Builds the libFuzzer targets with clang and runs each for SECONDS (default
# 30) from its seed corpus in fuzz/corpus/<target>/. Crashes fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFLARE_FUZZ=ON -DFLARE_TESTS=OFF \
    -DFLARE_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)"
status=0
for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    t=$(basename "$src" .c)
    seeds=fuzz/corpus/$t
    work=build-fuzz/corpus/$t
    mkdir -p "$work"
    [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
    echo "fuzz: $t for ${secs}s"
    if ! build-fuzz/"$t" -max_total_time="$secs" -max_len=65536 -print_final_stats=0 \
        "$work" >"build-fuzz/$t.log" 2>&1; then
        echo "fuzz: $t FAILED, see build-fuzz/$t.log" >&2
        tail -40 "build-fuzz/$t.log" >&2
        status=1
    fi
done
exit $status
