#!/usr/bin/env bash
# Relay soak: a `flare relay` process under 1,000 churning clients for 10
# minutes by default (bench_relay_soak: reserve, circuits, echo, drop,
# reconnect), sampled every 5 s. Writes OUT_DIR/samples.csv, OUT_DIR/report.txt
# (the sample table, then "key value" lines and the acceptance checks) and,
# with gnuplot, OUT_DIR/relay-soak.png.
# Usage: bench/relay-soak.sh [BUILD_DIR [OUT_DIR]] [bench_relay_soak options]
#   e.g. bench/relay-soak.sh build soak-out --seconds 20 --clients 100
# Exit status: bench_relay_soak's (0 when every check passed).
set -uo pipefail
build=build
out=soak-out
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then build=$1; shift; fi
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then out=$1; shift; fi
[ -x "$build/bench_relay_soak" ] && [ -x "$build/flare" ] ||
    { echo "relay-soak: $build/bench_relay_soak or $build/flare not built" >&2; exit 1; }
# Each side holds one descriptor per client (and the relay one per connection).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
mkdir -p "$out"

pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM
# The bench stops by itself (duration + drain, and a hard stop 2 min later);
# its relay child dies with it (PR_SET_PDEATHSIG).
"$build/bench_relay_soak" --flare "$build/flare" --csv "$out/samples.csv" "$@" \
    >"$out/report.txt" 2>"$out/stderr.txt" &
pid=$!
wait "$pid"
rc=$?
pid=
cat "$out/report.txt"
[ -s "$out/stderr.txt" ] && sed 's/^/stderr: /' "$out/stderr.txt" | head -40

if command -v gnuplot >/dev/null && [ -s "$out/samples.csv" ]; then
    gnuplot <<EOF || echo "relay-soak: gnuplot failed" >&2
set datafile separator ","
set terminal pngcairo size 900,440 font ",9"
set output "$out/relay-soak.png"
set key outside below horizontal
set autoscale xfix
set xlabel "seconds (churn starts at 0; drain at the end)"
set ylabel "relay RSS (MiB)"
set y2label "fds, connections, reservations, circuits"
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
set grid
plot "$out/samples.csv" using 1:(\$3/1024) with lines lw 2 title "relay RSS (MiB)", \
     "" using 1:4 axes x1y2 with lines title "relay fds", \
     "" using 1:6 axes x1y2 with lines title "reservations", \
     "" using 1:7 axes x1y2 with impulses title "circuits open"
EOF
fi
exit $rc
