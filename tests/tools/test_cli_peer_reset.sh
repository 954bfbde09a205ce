#!/usr/bin/env bash
# Peers that go away abruptly must not end a flare process (loopback, no root):
# 300 TCP clients each send a multistream-select proposal and a Noise message
# to `flare listen` and close at once (half of them with an RST), so the
# listener writes its replies into connections already reset; it must still
# run afterwards (SIGPIPE would end it with status 141) and still serve an
# echo. Also `flare dial --message-file`: a 300 KB payload comes back byte for
# byte; the flag's bad uses exit 2.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
flare=${FLARE_BINARY_DIR:-$root/build}/flare
tmp=$(mktemp -d)
lpid=
cleanup() {
    [ -n "$lpid" ] && kill "$lpid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

seed=$(printf 'b2%.0s' $(seq 32))
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed" --echo /echo/1.0.0 --json \
    >"$tmp/l.log" 2>"$tmp/l.err" &
lpid=$!
addr=
for _ in $(seq 50); do
    addr=$(python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] == "listening": print(e["addr"]); break' "$tmp/l.log" 2>/dev/null)
    [ -n "$addr" ] && break
    sleep 0.1
done
[ -n "$addr" ] || { echo "FAIL the listener did not start"; exit 1; }
port=$(sed -E 's#^/ip4/[^/]+/tcp/([0-9]+)/.*#\1#' <<<"$addr")

python3 - "$port" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])
def vl(b): return bytes([len(b)]) + b
for i in range(300):
    try:
        s = socket.create_connection(("127.0.0.1", port))
    except OSError:
        break  # the listener is gone: the check below says so
    s.sendall(vl(b"/multistream/1.0.0\n") + vl(b"/noise\n") + b"\x00\x20" + b"x" * 32)
    if i % 2:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if i % 3 == 0:
        time.sleep(0.002)
    s.close()
PY
sleep 0.5
if kill -0 "$lpid" 2>/dev/null; then
    ok "the listener survives 300 peers that reset their connections"
else
    wait "$lpid"
    bad "the listener ended (exit status $?) after peers reset their connections"
    lpid=
fi

head -c 230400 /dev/urandom | base64 -w0 >"$tmp/payload"
if [ -n "$lpid" ] && timeout 20 "$flare" dial "$addr" --echo /echo/1.0.0 --message-file "$tmp/payload" \
    --json >"$tmp/d.log" 2>"$tmp/d.err" &&
    grep -q '"event":"echo".*"bytes":307200,"ok":true' "$tmp/d.log" 2>/dev/null; then
    ok "--message-file: 307200 bytes echoed byte for byte, after the resets"
else
    bad "--message-file echo: $(grep -s '"echo"' "$tmp/d.log" | cut -c1-200)"
fi
timeout 5 "$flare" dial "$addr" --echo /echo/1.0.0 --message x --message-file "$tmp/payload" \
    >/dev/null 2>&1
[ $? -eq 2 ] && ok "--message with --message-file: exit 2" || bad "--message with --message-file"
head -c 1048577 /dev/zero >"$tmp/big"
timeout 5 "$flare" dial "$addr" --echo /echo/1.0.0 --message-file "$tmp/big" >/dev/null 2>&1
[ $? -eq 2 ] && ok "--message-file over 1 MiB: exit 2" || bad "--message-file over 1 MiB"
timeout 5 "$flare" dial "$addr" --echo /echo/1.0.0 --message-file "$tmp/none" >/dev/null 2>&1
[ $? -eq 2 ] && ok "--message-file missing: exit 2" || bad "--message-file missing"
grep -qiE "sanitizer|segmentation|abort" "$tmp"/*.err && bad "a crash report in stderr"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
