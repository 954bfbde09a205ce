#!/usr/bin/env bash
# The DHT from the command line, on loopback: three `listen --dht-mode
# server` nodes join through the first; `dht provide` announces a CID that
# `dht find-providers` finds from another entry point; `dht find-peer` and
# `dial PEER_ID` find a node by its ID alone; `dht put` / `dht get` move a
# public key record (also with --quorum); find-providers also over 2 disjoint
# paths; a bad CID, a missing --bootstrap and bad DHT flags exit 2.
source "$(dirname "$0")/lib.sh"
L=/ip4/127.0.0.1/tcp/0
"$flare" listen --listen $L --dht-mode server --json >"$tmp/a.log" 2>&1 &
pids+=($!)
A=$(listening_addr "$tmp/a.log") || { bad "a did not start"; finish; }
for n in b c; do
    "$flare" listen --listen $L --dht-mode server --bootstrap "$A" --json >"$tmp/$n.log" 2>&1 &
    pids+=($!)
done
B=$(listening_addr "$tmp/b.log") && C=$(listening_addr "$tmp/c.log") || { bad "b/c did not start"; finish; }
wait_for "$tmp/b.log" 'e["event"] == "dht" and e["reason"] == "ready" and e["peers"] >= 1' >/dev/null &&
    wait_for "$tmp/a.log" 'e["event"] == "dht" and e["mode"] == "server"' >/dev/null &&
    ok "nodes join the DHT: dht events (mode server, ready)" || bad "no dht events: $(cat "$tmp/b.log")"

cid=bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi
"$flare" dht provide $cid --bootstrap "$B" --listen $L --json >"$tmp/p.log" 2>&1 &
pids+=($!)
line=$(wait_for "$tmp/p.log" 'e["event"] == "provided"') && [ "$(field "$line" key)" = $cid ] &&
    ok "dht provide: provided on $(field "$line" peers) servers" || bad "provide: $(cat "$tmp/p.log")"
prov=$(listening_addr "$tmp/p.log")
timeout 15 "$flare" dht find-providers $cid --bootstrap "$C" --listen $L --dht-disjoint-paths 2 \
    --json >"$tmp/fp.log" 2>&1
rc=$?
line=$(wait_for "$tmp/fp.log" 'e["event"] == "provider"' 1)
[ $rc -eq 0 ] && [ "$(field "$line" peerId)" = "${prov##*/}" ] &&
    ok "dht find-providers finds the provider" || bad "find-providers rc $rc: $(cat "$tmp/fp.log")"
timeout 15 "$flare" dht find-providers QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG --bootstrap "$C" \
    --listen $L --json >"$tmp/np.log" 2>&1
rc=$?
[ $rc -eq 1 ] && wait_for "$tmp/np.log" 'e["event"] == "error" and e["error"] == "not found"' 1 >/dev/null &&
    ok "no provider: not found, exit 1" || bad "no provider: rc $rc $(cat "$tmp/np.log")"

timeout 15 "$flare" dht find-peer "${C##*/}" --bootstrap "$A" --listen $L --json >"$tmp/peer.log" 2>&1
line=$(wait_for "$tmp/peer.log" 'e["event"] == "peer"' 1)
[ "$(field "$line" peerId)" = "${C##*/}" ] && [[ $(field "$line" addrs) == *"${C%/p2p/*}"* ]] &&
    ok "dht find-peer: the peer's addresses" || bad "find-peer: $(cat "$tmp/peer.log")"

timeout 15 "$flare" dial "${C##*/}" --bootstrap "$B" --listen $L --json >"$tmp/dial.log" 2>&1
rc=$?
[ $rc -eq 0 ] && wait_for "$tmp/dial.log" "e['event'] == 'identify' and e['peerId'] == '${C##*/}'" 1 >/dev/null &&
    wait_for "$tmp/dial.log" 'e["event"] == "peer"' 1 >/dev/null &&
    ok "dial PEER_ID through the DHT" || bad "dial by ID rc $rc: $(tail -3 "$tmp/dial.log")"

seed=0202020202020202020202020202020202020202020202020202020202020202
id=$(field "$("$flare" id --seed $seed --json)" peerId)
timeout 15 "$flare" dht put --seed $seed --bootstrap "$A" --listen $L --json >"$tmp/put.log" 2>&1 &&
    wait_for "$tmp/put.log" 'e["event"] == "put" and e["peers"] >= 1' 1 >/dev/null &&
    ok "dht put: our public key record" || bad "put: $(cat "$tmp/put.log")"
timeout 15 "$flare" dht get "$id" --bootstrap "$C" --listen $L --json >"$tmp/get.log" 2>&1
line=$(wait_for "$tmp/get.log" 'e["event"] == "value"' 1)
[ "$(field "$line" key)" = "$id" ] && [ -n "$(field "$line" value)" ] &&
    ok "dht get: the record, validated" || bad "get: $(cat "$tmp/get.log")"
timeout 15 "$flare" dht get "$id" --quorum 1 --bootstrap "$B" --listen $L --json >"$tmp/getq.log" 2>&1
line=$(wait_for "$tmp/getq.log" 'e["event"] == "value"' 1)
[ "$(field "$line" key)" = "$id" ] && [ -n "$(field "$line" value)" ] &&
    ok "dht get --quorum 1: the record" || bad "get --quorum: $(cat "$tmp/getq.log")"
"$flare" dht get "$id" --quorum x --bootstrap "$A" 2>/dev/null
[ $? -eq 2 ] && ok "a bad --quorum exits 2" || bad "bad --quorum"

"$flare" dht find-providers not-a-cid --bootstrap "$A" 2>/dev/null
[ $? -eq 2 ] && ok "a bad CID exits 2" || bad "bad CID"
"$flare" dht find-peer "$id" 2>/dev/null
[ $? -eq 2 ] && ok "dht without --bootstrap exits 2" || bad "no bootstrap"
"$flare" listen --dht-mode sometimes 2>/dev/null
[ $? -eq 2 ] && ok "a bad --dht-mode exits 2" || bad "bad --dht-mode"
for v in 0 17 2x; do
    "$flare" listen --dht-disjoint-paths $v 2>/dev/null
    [ $? -eq 2 ] && ok "--dht-disjoint-paths $v exits 2" || bad "--dht-disjoint-paths $v accepted"
done
finish
