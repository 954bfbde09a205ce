#!/usr/bin/env bash
# What a newcomer types first: flare --version, COMMAND --help/-h for every
# command (usage on stdout, exit 0), log levels (-q, -v, FLARE_LOG), listen
# addresses one can dial (never 0.0.0.0) with the next command, the system's
# reason for a listen failure, and a hint for "127.0.0.1:4001".
source "$(dirname "$0")/lib.sh"
wait_line() { # FILE REGEX: up to 10 s
    for _ in $(seq 100); do
        grep -qE "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

out=$("$flare" --version 2>/dev/null)
[ $? -eq 0 ] && [[ $out =~ ^flare\ [0-9]+\.[0-9]+\.[0-9]+$ ]] && ok "--version: $out" || bad "--version: '$out'"
out=$("$flare" --help 2>/dev/null)
[ $? -eq 0 ] && grep -q "^usage: flare" <<<"$out" && ok "--help lists the commands" || bad "--help"
for cmd in id multiaddr listen dial ping relay autonat demo; do
    for h in --help -h; do
        out=$("$flare" "$cmd" $h 2>"$tmp/err")
        rc=$?
        [ $rc -eq 0 ] && grep -q "^usage: flare $cmd" <<<"$out" && [ ! -s "$tmp/err" ] ||
            { bad "$cmd $h: rc $rc, stdout '$(head -1 <<<"$out")'"; continue; }
    done
    [ "$("$flare" help "$cmd")" = "$out" ] || bad "flare help $cmd differs from $cmd -h"
done
[ $fail -eq 0 ] && ok "COMMAND --help, -h and help COMMAND for all 8 commands"
out=$("$flare" dial /ip4/127.0.0.1/tcp/1/p2p/x --help 2>&1)
[ $? -eq 0 ] && grep -q "wait-holepunch" <<<"$out" && ok "--help after other arguments" || bad "--help late"
"$flare" frob --help >/dev/null 2>&1
[ $? -eq 2 ] && ok "unknown command with --help: exit 2" || bad "frob --help"

# listen on 0.0.0.0: dialable addresses and the next command.
"$flare" listen --echo /echo/1.0.0 >"$tmp/l.out" 2>&1 &
pids+=($!)
wait_line "$tmp/l.out" "connect: flare dial" && ! grep -q 0\\.0\\.0\\.0 "$tmp/l.out" &&
    grep -q "^listening on /ip4/127.0.0.1/tcp/[0-9]*/p2p/12D3" "$tmp/l.out" &&
    ok "listen on 0.0.0.0 prints interface addresses and the dial command" ||
    bad "listen output: $(cat "$tmp/l.out")"
cmdline=$(sed -n 's/^  connect: //p' "$tmp/l.out")
addr=$(sed -n 's|^listening on \(/ip4/127.0.0.1/.*\)|\1|p' "$tmp/l.out" | head -1)
# The suggested command works (from this machine, the loopback address).
# shellcheck disable=SC2086
out=$(timeout 10 $cmdline 2>&1 | sed 's|^flare ||')
grep -q "echo reply: hello (matches)" <<<"$out" || out=$(timeout 10 "$flare" dial "$addr" \
    --echo /echo/1.0.0 --message hello 2>&1)
grep -q "echo reply: hello (matches)" <<<"$out" && ok "the printed dial command works" || bad "dial: $out"

# Log levels.
out=$(timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message hi -q 2>"$tmp/err")
[ "$out" = "echo reply: hi (matches) via ${addr%/p2p/*} (direct)" ] && [ ! -s "$tmp/err" ] &&
    ok "-q: only the result" || bad "-q: '$out' / $(cat "$tmp/err")"
out=$(FLARE_LOG=error timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message hi 2>&1)
[ "$(wc -l <<<"$out")" -eq 1 ] && ok "FLARE_LOG=error is -q" || bad "FLARE_LOG=error: $out"
timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message hi -v >"$tmp/v.out" 2>"$tmp/v.err"
grep -q "^connected to" "$tmp/v.out" && grep -q "^flare: debug: .*connection to .*local /ip4/127" "$tmp/v.err" &&
    grep -q "^flare: debug: .*stream /echo/1.0.0: sending 2 bytes" "$tmp/v.err" &&
    ok "-v: connection and stream debug lines on stderr" || bad "-v: $(cat "$tmp/v.err")"
out=$(FLARE_LOG=DEBUG timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message hi 2>&1)
grep -q "debug:" <<<"$out" &&
    ok "FLARE_LOG=DEBUG is -v" || bad "FLARE_LOG=debug"
out=$(timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message hi 2>&1)
grep -q "^connected to" <<<"$out" && ! grep -q "debug:" <<<"$out" && ok "default level: events, no debug" ||
    bad "info: $out"
out=$(FLARE_LOG=loud "$flare" id 2>&1 >/dev/null)
grep -q "FLARE_LOG='loud' is not" <<<"$out" && ok "FLARE_LOG=loud warned" ||
    bad "FLARE_LOG=loud"
out=$(timeout 10 "$flare" dial "$addr" --echo /echo/1.0.0 --message -v -q 2>&1)
grep -q "^echo reply: -v (matches)" <<<"$out" && ok "-v as a flag's value is the value" || bad "--message -v: $out"
out=$(timeout 10 "$flare" dial "$addr" --json -q 2>/dev/null | grep -c '"event"')
[ "$out" -ge 3 ] && ok "--json prints every event at -q ($out)" || bad "--json -q: $out events"

# Errors.
out=$("$flare" dial 127.0.0.1:4001 2>&1)
[ $? -eq 1 ] && grep -q "hint: multiaddrs look like /ip4/127.0.0.1/tcp/4001" <<<"$out" &&
    ok "127.0.0.1:4001 -> hint /ip4/127.0.0.1/tcp/4001" || bad "hint: $out"
out=$("$flare" multiaddr '[::1]:4001' 2>&1)
grep -q "/ip6/::1/tcp/4001" <<<"$out" && ok "[::1]:4001 -> /ip6 hint" || bad "ip6 hint: $out"
out=$(timeout 5 "$flare" listen --listen localhost:80 2>&1)
grep -q "/dns/localhost/tcp/80" <<<"$out" && ok "host:port -> /dns hint" || bad "dns hint: $out"
out=$(timeout 5 "$flare" listen --listen /ip4/192.0.2.77/tcp/0 2>&1)
grep -q "cannot assign requested address" <<<"$out" && ok "listen on a foreign address: errno's meaning" ||
    bad "EADDRNOTAVAIL: $out"
if [ "$(id -u)" -ne 0 ]; then
    out=$(timeout 5 "$flare" listen --listen /ip4/127.0.0.1/tcp/80 2>&1)
    grep -q "permission denied" <<<"$out" && ok "port 80 unprivileged: permission denied" || bad "EACCES: $out"
fi
# Every exit code the CLI uses is in docs/cli.md's table.
for c in 0 1 2 3 4 130; do
    grep -qE "^\| $c \| " "$root/docs/cli.md" || bad "exit code $c not documented"
done
grep -qE '^\| 3 \|.*echo' "$root/docs/cli.md" && grep -qE '^\| 4 \|.*wait' "$root/docs/cli.md" &&
    ok "exit codes 3 and 4 documented" || bad "exit codes 3/4"
finish
