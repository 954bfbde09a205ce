#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (build-fuzz/) and runs them.
#
#   scripts/fuzz.sh [SECONDS]        short mode (CI): each target for SECONDS
#                                    (default 30), one after the other; a crash
#                                    fails the run.
#   scripts/fuzz.sh --campaign TOTAL [--jobs N] [--only REGEX]
#                                    campaign mode: TOTAL seconds of wall time
#                                    shared by all targets, N processes at once
#                                    (default: the number of cores). A crash is
#                                    kept and the target restarts for the rest
#                                    of its share. Prints one line per target
#                                    (executions, crashes, corpus size) and
#                                    appends it to build-fuzz/campaigns.tsv.
#   scripts/fuzz.sh --ledger         totals of build-fuzz/campaigns.tsv per target.
#
# Corpora grow in build-fuzz/corpus/<target>/ (outside git), seeded from
# fuzz/corpus/<target>/. FUZZ_NICE=N runs the fuzzers under nice -n N.
set -euo pipefail
# Everything runs inside main(), which bash parses whole before running it,
# so editing this file during a long campaign cannot derail the run.
main() {
cd "$(dirname "$0")/.."

campaign=0 total=0 jobs=$(nproc) only=. secs=30
while [ $# -gt 0 ]; do
    case $1 in
    --campaign) campaign=1 total=${2:?--campaign needs TOTAL_SECONDS}; shift ;;
    --jobs) jobs=${2:?}; shift ;;
    --only) only=${2:?}; shift ;;
    --ledger)
        awk -F'\t' '{e[$2] += $4; c[$2] += $5; s[$2] += $3; t += $4}
            END {for (k in e) printf "%-24s %14d execs %6d crashes %8d s\n", k, e[k], c[k], s[k]
                 printf "%-24s %14d execs\n", "total", t}' build-fuzz/campaigns.tsv | sort
        exit 0 ;;
    *) secs=$1 ;;
    esac
    shift
done
nicecmd=()
[ -n "${FUZZ_NICE:-}" ] && nicecmd=(nice -n "$FUZZ_NICE")

CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFLARE_FUZZ=ON -DFLARE_TESTS=OFF \
    -DFLARE_BENCH=OFF >/dev/null
"${nicecmd[@]}" cmake --build build-fuzz -j"$(nproc)"

targets=()
for src in fuzz/fuzz_*.c; do
    [ -e "$src" ] || continue
    t=$(basename "$src" .c)
    [[ $t =~ $only ]] && targets+=("$t")
done

prepare() { # target: the working corpus, seeded from git
    local t=$1 seeds=fuzz/corpus/$1 work=build-fuzz/corpus/$1
    mkdir -p "$work" "build-fuzz/crashes/$t" build-fuzz/logs
    [ -d "$seeds" ] && cp -n "$seeds"/* "$work"/ 2>/dev/null || true
}

if [ "$campaign" = 0 ]; then
    status=0
    for t in "${targets[@]}"; do
        prepare "$t"
        echo "fuzz: $t for ${secs}s"
        if ! "${nicecmd[@]}" build-fuzz/"$t" -max_total_time="$secs" -max_len=65536 \
            -print_final_stats=0 build-fuzz/corpus/"$t" >"build-fuzz/$t.log" 2>&1; then
            echo "fuzz: $t FAILED, see build-fuzz/$t.log" >&2
            tail -40 "build-fuzz/$t.log" >&2
            status=1
        fi
    done
    exit $status
fi

# ---- campaign -------------------------------------------------------------
n=${#targets[@]}
[ "$n" -gt 0 ] || { echo "fuzz: no target matches '$only'" >&2; exit 1; }
share=$((total * jobs / n))
[ "$share" -ge 5 ] || share=5
echo "fuzz campaign: $n targets, ${share}s each, $jobs at a time"

run_target() { # target seconds: runs until its time is used, restarting after crashes
    local t=$1 left=$2 start runs=0 log=build-fuzz/logs/$1.log
    : >"$log"
    while [ "$left" -gt 2 ] && [ "$runs" -lt 20 ]; do
        start=$(date +%s)
        "${nicecmd[@]}" build-fuzz/"$t" -max_total_time="$left" -max_len=65536 \
            -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t/" \
            build-fuzz/corpus/"$t" >>"$log" 2>&1 || true
        left=$((left - ($(date +%s) - start)))
        runs=$((runs + 1))
    done
}

pids=()
for t in "${targets[@]}"; do
    prepare "$t"
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
    run_target "$t" "$share" &
    pids+=($!)
done
wait

printf '%-24s %14s %8s %8s\n' target executions crashes corpus
sum=0
for t in "${targets[@]}"; do
    log=build-fuzz/logs/$t.log
    execs=$(awk '/stat::number_of_executed_units:/ {s += $2} END {print s + 0}' "$log")
    crashes=$(grep -c 'Test unit written to' "$log" || true)
    corpus=$(find build-fuzz/corpus/"$t" -type f | wc -l)
    sum=$((sum + execs))
    printf '%-24s %14s %8s %8s\n' "$t" "$execs" "$crashes" "$corpus"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$share" "$execs" "$crashes" \
        "$corpus" >>build-fuzz/campaigns.tsv
done
printf '%-24s %14s\n' total "$sum"
}
main "$@"
