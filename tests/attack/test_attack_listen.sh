#!/usr/bin/env bash
# A second node on a listen address already in use fails (exit 1, "address in
# use") instead of silently sharing the port through SO_REUSEPORT; with
# --share-listen it may share it.
source "$(dirname "$0")/lib.sh"

start_kind a listen || { bad "first node did not start"; finish; exit; }
for kind in listen relay; do
    timeout 5 "$flare" "$kind" --listen "/ip4/${a_hp%:*}/tcp/${a_hp#*:}" --json >"$tmp/second.log" 2>&1
    rc=$?
    [ $rc -eq 1 ] && grep -q "address in use" "$tmp/second.log" &&
        ok "second $kind on the same address refused" || bad "second $kind: exit $rc: $(head -c 300 "$tmp/second.log")"
done
timeout 3 "$flare" listen --listen "/ip4/${a_hp%:*}/tcp/${a_hp#*:}" --share-listen --json >"$tmp/shared.log" 2>&1
rc=$?
[ $rc -eq 124 ] && grep -q '"event":"listening"' "$tmp/shared.log" &&
    ok "--share-listen shares the address" || bad "--share-listen: exit $rc: $(head -c 300 "$tmp/shared.log")"
alive "$a_pid" && answers "$a_addr" && ok "first node still answers" || bad "first node"
finish
