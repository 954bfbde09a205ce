# Shared by tests/attack/test_*.sh: real `flare` nodes on 127.0.0.1 attacked
# by flare-attack (tests/attack/flare_attack.c) or from raw sockets
# (tests/attack/attacker.py). Sourced; no root, loopback only, each test
# self-contained and < 30 s. FLARE_BIN=path runs the nodes from another build
# (e.g. to see a test fail on a build without the protections).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"
flare=${FLARE_BIN:-$flare}
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
# start_node LOG ARGS...: a node in the background; sets $addr (with /p2p/).
start_node() {
    local log=$1
    shift
    "$flare" "$@" --json >"$log" 2>&1 &
    pids+=($!)
    addr=$(listening_addr "$log") || { bad "node did not start: $*"; finish; }
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
    local name=$1 kind=$2 addr pid
    shift 2
    "$flare" "$kind" --listen /ip4/127.0.0.1/tcp/0 --json "$@" >"$tmp/$name.log" 2>&1 &
    pid=$!
    pids+=("$pid")
    addr=$(listening_addr "$tmp/$name.log" 50) || return 1
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
