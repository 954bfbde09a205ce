#!/usr/bin/env bash
# Interop: STUN with coturn (Debian `coturn`), on loopback:
#  1. coturn's turnserver (STUN only) answers `flare stun` (both SERVER
#     forms), and the mapped address is the one coturn's own client sees;
#  2. coturn's turnutils_stunclient asks a flare node on its QUIC port
#     (STUN and QUIC share it by the first byte) and on a --stun-listen
#     port, and gets 127.0.0.1 with a real port; with -f (RFC 5780's
#     CHANGE-REQUEST, unknown to flare) it gets an answer too (420 then the
#     plain binding, as the client retries);
#  3. QUIC still works on the shared port afterwards (a flare ping).
# Exit 0 pass, 1 fail, 77 skip (coturn not installed and not installable).
set -u
root=${FLARE_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${FLARE_BINARY_DIR:-$root/build}
flare=$bin/flare
if ! command -v turnserver >/dev/null || ! command -v turnutils_stunclient >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y coturn >/dev/null 2>&1
    fi
    command -v turnserver >/dev/null && command -v turnutils_stunclient >/dev/null ||
        { echo "skip: coturn not available"; exit 77; }
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
field() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }
free_udp_port() {
    python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_for() { # FILE PATTERN: waits up to 10 s for a line
    for _ in $(seq 100); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# 1. coturn answers flare stun.
port=$(free_udp_port)
cat >"$tmp/turn.conf" <<CONF
listening-ip=127.0.0.1
listening-port=$port
stun-only
no-tls
no-dtls
no-cli
no-stdout-log
log-file=$tmp/turn.log
pidfile=$tmp/turn.pid
userdb=$tmp/turndb
CONF
timeout 60 turnserver -c "$tmp/turn.conf" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    timeout 2 turnutils_stunclient -p "$port" 127.0.0.1 >"$tmp/ref.txt" 2>&1 && grep -q "reflexive addr" "$tmp/ref.txt" && break
    sleep 0.2
done
grep -q "UDP reflexive addr: 127.0.0.1:" "$tmp/ref.txt" && ok "coturn is up (its own client gets 127.0.0.1)" ||
    { bad "coturn did not start"; exit 1; }
line=$(timeout 15 "$flare" stun "127.0.0.1:$port" --json | grep '"event":"stun"')
mapped=$(field "$line" mapped 2>/dev/null)
[[ $mapped == 127.0.0.1:* ]] && [ "${mapped#127.0.0.1:}" -gt 0 ] &&
    [ "$(field "$line" server)" = "127.0.0.1:$port" ] && ok "flare stun HOST:PORT against coturn: $mapped" ||
    bad "flare stun against coturn: '$line'"
line=$(timeout 15 "$flare" stun "/ip4/127.0.0.1/udp/$port" --json | grep '"event":"stun"')
[[ $(field "$line" mapped 2>/dev/null) == 127.0.0.1:* ]] && ok "flare stun /ip4/.../udp/PORT against coturn" ||
    bad "flare stun multiaddr against coturn: '$line'"
# flare stun sends from a fresh ephemeral port each run: two runs see two
# ports (the mapped port is the source's, not a constant).
m2=$(field "$(timeout 15 "$flare" stun "127.0.0.1:$port" --json | grep '"event":"stun"')" mapped 2>/dev/null)
[ -n "$m2" ] && [ "$m2" != "$mapped" ] && ok "the mapped port follows the client's port" ||
    bad "mapped port constant: $mapped $m2"

# 2. coturn's client asks a flare node.
"$flare" listen --listen /ip4/127.0.0.1/udp/0/quic-v1 --stun-listen /ip4/127.0.0.1/udp/0 --json \
    >"$tmp/node.log" 2>"$tmp/node.err" &
pids+=($!)
wait_for "$tmp/node.log" stun_listening || { bad "flare node did not start"; cat "$tmp/node.err"; exit 1; }
qaddr=$(field "$(grep '"event":"listening"' "$tmp/node.log" | head -1)" addr)
qport=$(echo "$qaddr" | cut -d/ -f5)
sport=$(field "$(grep stun_listening "$tmp/node.log")" addr | sed 's/.*://')
for p in "$qport" "$sport"; do
    timeout 10 turnutils_stunclient -p "$p" 127.0.0.1 >"$tmp/c.txt" 2>&1
    a=$(grep -o 'UDP reflexive addr: [0-9.:]*' "$tmp/c.txt" | head -1 | sed 's/.*: //')
    [[ $a == 127.0.0.1:* ]] && [ "${a#127.0.0.1:}" -gt 0 ] && ok "turnutils_stunclient -> flare port $p: $a" ||
        bad "turnutils_stunclient -> flare port $p: $(tail -2 "$tmp/c.txt")"
done
timeout 10 turnutils_stunclient -f -p "$qport" 127.0.0.1 >"$tmp/f.txt" 2>&1
grep -q 'UDP reflexive addr: 127.0.0.1:' "$tmp/f.txt" && ok "RFC 5780 client (-f) gets an answer" ||
    bad "turnutils_stunclient -f: $(tail -2 "$tmp/f.txt")"
# Exactly our source address (a minimal independent client: a Binding
# request, XOR-MAPPED-ADDRESS decoded by hand).
python3 - "$qport" <<'PY' && ok "the answer is exactly the client's address" || bad "exact mapped address"
import os, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.settimeout(3)
txid = os.urandom(12)
s.sendto(struct.pack("!HHI", 1, 0, 0x2112A442) + txid, ("127.0.0.1", int(sys.argv[1])))
d = s.recv(1500)
assert d[0:2] == b"\x01\x01" and d[8:20] == txid
i = 20
while i < len(d):
    t, n = struct.unpack("!HH", d[i:i + 4])
    if t == 0x20:
        port = struct.unpack("!H", d[i + 6:i + 8])[0] ^ 0x2112
        ip = bytes(a ^ b for a, b in zip(d[i + 8:i + 12], b"\x21\x12\xa4\x42"))
        assert (socket.inet_ntoa(ip), port) == s.getsockname(), (ip, port, s.getsockname())
        sys.exit(0)
    i += 4 + (n + 3) // 4 * 4
sys.exit(1)
PY
# flare stun against flare (the QUIC port).
line=$(timeout 15 "$flare" stun "127.0.0.1:$qport" --json | grep '"event":"stun"')
[[ $(field "$line" mapped 2>/dev/null) == 127.0.0.1:* ]] && ok "flare stun -> flare node's QUIC port" ||
    bad "flare stun -> flare: '$line'"

# 3. QUIC on the shared port still works.
timeout 15 "$flare" ping "$qaddr" -c 1 --json >"$tmp/ping.log" 2>&1 && ok "QUIC ping on the shared port" ||
    bad "QUIC ping on the shared port: $(tail -2 "$tmp/ping.log")"
[ "$fails" -eq 0 ] || exit 1
echo "all ok"
