#!/usr/bin/env bash
# Relay benchmark (issue 5): core heap (bench_relay_mem), then a relay
# process under 1,000 and 10,000 loopback clients (bench_relay_rss), printed
# as one table. Usage: bench/relay-bench.sh [BUILD_DIR] [MiB]
# (BUILD_DIR defaults to build; MiB per throughput run defaults to 256).
# Needs ~10,100 file descriptors in each of the two processes, ~1.5 GB
# of memory for the 10,000 client hosts, and about 30 s.
set -euo pipefail
build=${1:-build}
mib=${2:-256}
for b in bench_relay_mem bench_relay_rss; do
    [ -x "$build/$b" ] || { echo "relay-bench: $build/$b not built" >&2; exit 1; }
done
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge 10100 ] ||
    echo "relay-bench: hard fd limit $(ulimit -Hn) is below 10100; 10,000 clients will fail" >&2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/bench_relay_mem" >"$tmp/core"
"$build/bench_relay_rss" 1000 500 "$mib" >"$tmp/1k"
"$build/bench_relay_rss" 10000 1000 "$mib" >"$tmp/10k"

get() { awk -v k="$2" '$1 == k { print $2 }' "$tmp/$1"; }
core_rsvp() { awk -v n="$1" '$1 == n && $2 == "reservations:" { print $3 }' "$tmp/core"; }
core_circ=$(awk '$2 == "idle" { print $4; exit }' "$tmp/core")
kb() { awk -v b="$1" 'BEGIN { printf "%.1f KB", b / 1000 }'; }

printf '%-44s | %-18s | %-18s\n' "relay (own process), loopback clients" "N = 1,000" "N = 10,000"
printf '%s\n' "$(printf '%.0s-' {1..44})-+-$(printf '%.0s-' {1..18})-+-$(printf '%.0s-' {1..18})"
row() { printf '%-44s | %-18s | %-18s\n' "$1" "$2" "$3"; }
row "relay RSS at start" "$(get 1k relay_rss_start_kib) KiB" "$(get 10k relay_rss_start_kib) KiB"
row "relay RSS, N connections" "$(get 1k relay_rss_conns_kib) KiB" "$(get 10k relay_rss_conns_kib) KiB"
row "relay RSS, N reservations" "$(get 1k relay_rss_rsvp_kib) KiB" "$(get 10k relay_rss_rsvp_kib) KiB"
row "relay RSS, + M idle circuits (M)" "$(get 1k relay_rss_circ_kib) KiB ($(get 1k circuits))" \
    "$(get 10k relay_rss_circ_kib) KiB ($(get 10k circuits))"
row "RSS per connection (Noise+yamux, identify)" "$(kb "$(get 1k bytes_per_conn)")" "$(kb "$(get 10k bytes_per_conn)")"
row "  heap per connection (mallinfo2)" "$(kb "$(get 1k heap_per_conn)")" "$(kb "$(get 10k heap_per_conn)")"
row "RSS per reservation" "$(get 1k bytes_per_rsvp) B" "$(get 10k bytes_per_rsvp) B"
row "  heap per reservation" "$(get 1k heap_per_rsvp) B" "$(get 10k heap_per_rsvp) B"
row "  core heap per reservation (relay_mem)" "$(core_rsvp 1000) B" "$(core_rsvp 10000) B"
row "RSS per idle circuit" "$(kb "$(get 1k bytes_per_circuit)")" "$(kb "$(get 10k bytes_per_circuit)")"
row "  heap per idle circuit" "$(kb "$(get 1k heap_per_circuit)")" "$(kb "$(get 10k heap_per_circuit)")"
row "  core heap per idle circuit" "$core_circ B" "$core_circ B"
row "time: N connects / N reserves (s)" "$(get 1k connect_s) / $(get 1k reserve_s)" \
    "$(get 10k connect_s) / $(get 10k reserve_s)"
row "client process: RSS per host / per conn" "$(kb "$(get 1k client_bytes_per_host)") / $(kb "$(get 1k client_bytes_per_conn)")" \
    "$(kb "$(get 10k client_bytes_per_host)") / $(kb "$(get 10k client_bytes_per_conn)")"
row "1 circuit A->relay->B, $mib MiB (MiB/s)" "$(get 1k tput_1_mibs)" "$(get 10k tput_1_mibs)"
row "  relay CPU per relayed MiB" "$(get 1k tput_1_relay_cpu_ms_per_mib) ms" "$(get 10k tput_1_relay_cpu_ms_per_mib) ms"
row "16 circuits in parallel (MiB/s, total)" "$(get 1k tput_16_mibs)" "$(get 10k tput_16_mibs)"
row "  relay CPU per relayed MiB" "$(get 1k tput_16_relay_cpu_ms_per_mib) ms" "$(get 10k tput_16_relay_cpu_ms_per_mib) ms"
