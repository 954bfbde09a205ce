#!/usr/bin/env bash
# lab/run.sh SCENARIO [lab.sh up options...]
# Runs lab/scenarios/SCENARIO.sh as root; the scenario brings the lab up with
# lab_up (lab/lib.sh), judges pass/fail, and the lab is always torn down.
# Exit status: the scenario's (0 pass, 1 fail, 77 skipped).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
name=${1:-}
if [ -z "$name" ] || [ ! -f "$here/scenarios/$name.sh" ]; then
    echo "usage: lab/run.sh SCENARIO [lab.sh up options]; scenarios:" >&2
    for f in "$here"/scenarios/*.sh; do f=${f##*/}; echo "  ${f%.sh}" >&2; done
    exit 2
fi
shift
[ "$(id -u)" -eq 0 ] || { echo "lab/run.sh: SKIP: needs root" >&2; exit 77; }
exec bash "$here/scenarios/$name.sh" "$@"
