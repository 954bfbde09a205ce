#!/usr/bin/env bash
# NAT lab, faults (root; skipped with 77 otherwise): 10 % packet loss on a
# router link (reservation, relayed echo of 300 KB byte for byte, hole
# punch), the NAT's conntrack table flushed under a direct connection
# (timeouts, re-reservation, a new relayed dial and punch), the listener
# killed and restarted with the same key (also in the middle of an echo).
# No process may crash; every failure must be an error event. See
# lab/scenarios/faults.sh (about 40 s). The relay killed mid-punch is in
# test_lab_holepunch.sh.
set -uo pipefail
# shellcheck source=preamble.sh
source "$(dirname "$0")/preamble.sh" f
timeout 240 "$root/lab/scenarios/faults.sh"
