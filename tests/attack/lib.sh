# Shared by the attack tests: a real `flare` node on loopback under attack
# from raw sockets (tests/attack/attacker.py). Sourced; sets $flare, $tmp,
# and the helpers below. Each test is self-contained and takes < 30 s.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
flare=${FLARE_BINARY_DIR:-$root/build}/flare
attacker="$root/tests/attack/attacker.py"
[ -x "$flare" ] || { echo "skip: $flare not built"; exit 77; }
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
# 1,100 attacker sockets plus the node's own in this shell's children.
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 4096 ]; then
    ulimit -n 4096 2>/dev/null || { echo "skip: cannot raise ulimit -n to 4096"; exit 77; }
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}
# wait_for FILE PYEXPR [TENTHS]: a JSON line e with PYEXPR true; prints it.
wait_for() {
    for _ in $(seq "${3:-100}"); do
        python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if eval(sys.argv[2]): print(l.strip()); sys.exit(0)
sys.exit(1)' "$1" "$2" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
# count FILE PYEXPR: JSON lines e with PYEXPR true.
count() {
    python3 -c 'import json,sys
n = 0
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    n += bool(eval(sys.argv[2]))
print(n)' "$1" "$2"
}
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
# start_node LOG ARGS...: a node in the background; sets $addr (with /p2p/).
start_node() {
    local log=$1
    shift
    "$flare" "$@" --json >"$log" 2>&1 &
    pids+=($!)
    local line
    line=$(wait_for "$log" 'e["event"] == "listening"') || { bad "node did not start: $*"; finish; }
    addr=$(field "$line" addr)
    port=$(echo "$addr" | sed -E 's|.*/tcp/([0-9]+)/.*|\1|')
}
# honest_ping SRC NAME: `flare ping` dialing from SRC (another /24); 0 if a pong came back.
honest_ping() {
    local seed
    seed=$(printf '5e%.0s' $(seq 32))
    timeout 12 "$flare" ping "$addr" --listen "/ip4/$1/tcp/0" --seed "$seed" -c 1 --json \
        >"$tmp/$2.log" 2>&1
}
