#!/usr/bin/env bash
# Clients that reset their connections (SO_LINGER {1,0}) while the node still
# writes to them -- after a multistream "ls" burst, or after the Noise+yamux
# handshake and a burst of pings -- must not end the node (SIGPIPE): a relay
# and a listening node each survive 1,000 such rounds and still answer an
# honest ping.
source "$(dirname "$0")/lib.sh"

for kind in relay listen; do
    start_kind n "$kind" || { bad "$kind: did not start"; continue; }
    out=$("$attack" reset-loop "$n_hp" --rounds 1000)
    echo "  $kind: $out"
    if alive "$n_pid"; then
        ok "$kind alive after 1000 reset rounds"
    else
        bad "$kind died during the reset rounds (exit $(exit_of "$n_pid"))"
        continue
    fi
    # A round fails if the node does not answer within 5 s (a loaded CI box
    # may miss a few); on an unprotected build nearly all fail.
    [ "$(kv "$out" ok)" -ge 990 ] 2>/dev/null && ok "$kind served the rounds" || bad "$kind: $out"
    answers "$n_addr" && ok "$kind answers a ping afterwards" || bad "$kind does not answer a ping"
    kill "$n_pid"
done
finish
