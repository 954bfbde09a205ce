#!/usr/bin/env bash
# Garbage at every stage (before multistream, inside it, as Noise messages,
# inside the encrypted channel, bad yamux frames, undecryptable ciphertext),
# with the client waiting for the close or resetting at once, and a client
# that opens a stream and stops reading: a relay and a listening node close
# the bad connections, keep running and answer an honest ping meanwhile and
# afterwards.
source "$(dirname "$0")/lib.sh"

for kind in relay listen; do
    start_kind n "$kind" || { bad "$kind: did not start"; continue; }
    out=$("$attack" garbage "$n_hp" --rounds 20)
    echo "  $kind: $out"
    if ! alive "$n_pid"; then
        bad "$kind died from garbage (exit $(exit_of "$n_pid"))"
        continue
    fi
    ok "$kind alive after garbage at every stage"
    [ "$(kv "$out" closed)" = "$(kv "$out" waited)" ] && [ "$(kv "$out" failed)" = 0 ] &&
        ok "$kind closed every garbage connection" || bad "$kind: $out"
    "$attack" stall "$n_hp" --hold 4 >"$tmp/stall.out" &
    st=$!
    sleep 1
    answers "$n_addr" && ok "$kind answers a ping while a client stalls" || bad "$kind: no ping while stalled"
    wait "$st"
    echo "  $kind: $(cat "$tmp/stall.out")"
    answers "$n_addr" && alive "$n_pid" && ok "$kind answers a ping afterwards" || bad "$kind: no ping afterwards"
    kill "$n_pid"
done
finish
