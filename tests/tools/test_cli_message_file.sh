#!/usr/bin/env bash
# flare dial --message-file on loopback (no root): a 300 KB payload sent to
# `flare listen --echo` comes back byte for byte (the echo event's bytes and
# ok); --message with --message-file, a file over 1 MiB and a missing file
# exit 2.
source "$(dirname "$0")/lib.sh"

seed=$(printf 'b2%.0s' $(seq 32))
"$flare" listen --listen /ip4/127.0.0.1/tcp/0 --seed "$seed" --echo /echo/1.0.0 --json \
    >"$tmp/l.log" 2>"$tmp/l.err" &
pids+=($!)
addr=$(listening_addr "$tmp/l.log" 50) || { echo "FAIL the listener did not start"; exit 1; }

head -c 230400 /dev/urandom | base64 -w0 >"$tmp/payload"
if timeout 20 "$flare" dial "$addr" --echo /echo/1.0.0 --message-file "$tmp/payload" \
    --json >"$tmp/d.log" 2>"$tmp/d.err" &&
    grep -q '"event":"echo".*"bytes":307200,"ok":true' "$tmp/d.log" 2>/dev/null; then
    ok "--message-file: 307200 bytes echoed byte for byte"
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
finish
