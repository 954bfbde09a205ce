#!/usr/bin/env bash
# Protocol cores are sans-I/O: no clocks, sockets, sleeps or OS randomness
# outside the I/O drivers (src/io/). Exits non-zero and lists offenders.
set -euo pipefail
cd "$(dirname "$0")/.."
hits=$(grep -rnE '\b(clock_gettime|gettimeofday|time\(NULL\)|usleep|nanosleep|sleep\(|socket\(|connect\(|sendto\(|recvfrom\(|getrandom\(|rand\(\)|randombytes_buf)' src \
    | grep -vE '^src/(io)/' | grep -v 'src/core/rng.c' || true)
if [ -n "$hits" ]; then
    echo "sans-I/O violations:" >&2
    echo "$hits" >&2
    exit 1
fi
