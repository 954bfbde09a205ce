# Shared by tests/attack/test_*.sh: real `flare` nodes on 127.0.0.1 attacked
# by flare-attack (tests/attack/flare_attack.c). No root, loopback only.
# FLARE_BIN=path runs the nodes from another build (e.g. to see a test fail
# on a build without the protections).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FLARE_BINARY_DIR:-$root/build}
flare=${FLARE_BIN:-$bin/flare}
attack=$bin/flare-attack
if [ ! -x "$flare" ] || [ ! -x "$attack" ]; then
    echo "SKIP: build the flare and flare-attack targets first"
    exit 77
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
    [ $fail -eq 0 ]
}

# start_node NAME KIND [ARGS...]: runs `flare KIND` listening on a free
# loopback port; sets NAME_pid, NAME_addr (multiaddr with /p2p/) and NAME_hp
# (127.0.0.1:PORT). Returns 1 if it did not come up within 5 s.
start_node() {
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
# field LINE KEY: the value of key=value in flare-attack's result line.
field() { tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"; }
