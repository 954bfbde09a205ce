# Shared by tests/attack/test_*.sh: real `flare` nodes on 127.0.0.1 attacked
# by flare-attack (tests/attack/flare_attack.c) or from raw sockets
# (tests/attack/attacker.py). Sourced; no root, loopback only, each test
# self-contained and < 30 s. FLARE_BIN=path runs the nodes from another build
# (e.g. to see a test fail on a build without the protections).
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${FLARE_BINARY_DIR:-$root/build}
flare=${FLARE_BIN:-$bin/flare}
attack=$bin/flare-attack
attacker="$root/tests/attack/attacker.py"
if [ ! -x "$flare" ] || [ ! -x "$attack" ]; then
    echo "SKIP: build the flare and flare-attack targets first"
    exit 77
fi
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
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

# start_kind NAME KIND [ARGS...]: runs `flare KIND` listening on a free
# loopback port; sets NAME_pid, NAME_addr (multiaddr with /p2p/) and NAME_hp
# (127.0.0.1:PORT). Returns 1 if it did not come up within 5 s.
start_kind() {
    local name=$1 kind=$2 addr="" pid
    shift 2
    "$flare" "$kind" --listen /ip4/127.0.0.1/tcp/0 --json "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    for _ in $(seq 50); do
        addr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    try: e = json.loads(l)
    except ValueError: continue
    if e.get("event") == "listening": print(e["addr"]); break' "$tmp/$name.log" 2>/dev/null)
        [ -n "$addr" ] && break
        sleep 0.1
    done
    [ -n "$addr" ] || return 1
    local port=${addr#/ip4/127.0.0.1/tcp/}
    port=${port%%/*}
    printf -v "${name}_pid" %s "$pid"
    printf -v "${name}_addr" %s "$addr"
    printf -v "${name}_hp" %s "127.0.0.1:$port"
}

# alive PID: the node still runs (not killed by a signal, not exited).
alive() { kill -0 "$1" 2>/dev/null; }
# exit_of PID: the exit status of a node that ended (141 = SIGPIPE).
exit_of() {
    wait "$1" 2>/dev/null
    echo $?
}
# answers ADDR: an honest `flare ping` gets an answer.
answers() { timeout 15 "$flare" ping "$1" -c 1 --json 2>/dev/null | grep -q '"event":"ping"'; }
# mem_kb PID FIELD: VmRSS / VmHWM of a process in kB.
mem_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null; }
# kv LINE KEY: the value of key=value in flare-attack's result line.
kv() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
