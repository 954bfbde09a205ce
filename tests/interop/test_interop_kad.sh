#!/usr/bin/env bash
# Kademlia DHT interop with js-libp2p 3 and @libp2p/kad-dht on loopback
# (tests/interop/js/kad.mjs): a flare server F1, a js server J joining
# through F1 and a flare server F2 joining through J. FIND_NODE is answered
# both ways (a js client that knows only F1 finds F2 by peer ID; a flare
# client that knows only J finds F1); a provider record put by flare is
# found by js and one put by js is found by flare; then a mixed DHT of 20
# nodes (10 flare, 10 js): through every one of its 16 later nodes a client
# of the other kind enters, and finds a node of that entry's kind (js
# clients through each flare node find a flare node, flare clients through
# each js node a js node), so every node answers the other kind's FIND_NODE.
# J's table holds both flare servers (its only two peers); F2, which knows
# only J, becomes ready: J answered its FIND_NODE and entered its table (no
# one else could answer first: F2 learns of F1 only from J).
# flare's own signed peer record is checked to land in js's peerStore as a
# certified record.
source "$(dirname "$0")/lib.sh"
lookups=()
kad=$(dirname "$peer")/kad.mjs
L=/ip4/127.0.0.1/tcp/0
# Only ever run in the background: exec makes $! the node process itself,
# so that cleanup stops it (without exec it killed a subshell and left node).
js() { exec "$node" "$kad" --listen $L "$@"; }
addr() { field "$1" listening 'e["addr"]'; }

"$flare" listen --listen $L --dht-mode server --json >"$tmp/f1.log" 2>&1 &
pids+=($!)
wait_line "$tmp/f1.log" listening || { echo "flare F1 did not start"; exit 1; }
F1=$(addr "$tmp/f1.log")
js --bootstrap "$F1" --stay >"$tmp/j.log" 2>&1 &
pids+=($!)
wait_line "$tmp/j.log" listening || { cat "$tmp/j.log"; exit 1; }
J=$(addr "$tmp/j.log")
"$flare" listen --listen $L --dht-mode server --bootstrap "$J" --json >"$tmp/f2.log" 2>&1 &
pids+=($!)
wait_line "$tmp/f2.log" listening || { echo "flare F2 did not start"; exit 1; }
F2=$(addr "$tmp/f2.log")
for _ in $(seq 100); do
    grep -q '"reason":"ready"' "$tmp/f2.log" && grep -q '"size":2' "$tmp/j.log" && break
    sleep 0.1
done
check "flare F1 and F2 in js's routing table (its only peers)" "$tmp/j.log" \
    'max(e["size"] for e in ev("routing-table")) == 2'
check "js in F2's routing table: F2, bootstrapped through J alone, is ready" "$tmp/f2.log" \
    'any(e["reason"] == "ready" and e["peers"] >= 1 for e in ev("dht"))'

timeout 60 "$node" "$kad" --listen $L --bootstrap "$F1" --find-peer "${F2##*/}" --closest "${F2##*/}" \
    --peer-record "${F1##*/}" >"$tmp/jf.log" 2>&1
check "flare's signed peer record verifies in js: a certified record in js's peerStore" "$tmp/jf.log" \
    "any(e['peerId'] == '${F1##*/}' and e['envelope'] and \
         any(a.startswith('${F1%/p2p/*}') for a in e['certified']) for e in ev('peer-record'))"
check "js -> flare FIND_NODE: js finds F2's addresses through F1" "$tmp/jf.log" \
    "any(e['peerId'] == '${F2##*/}' and '${F2%/p2p/*}' in e['addrs'] for e in ev('peer')) and \
     '${F2##*/}' in ev('closest')[0]['peers']"
timeout 60 "$flare" dht find-peer "${F1##*/}" --bootstrap "$J" --listen $L --json >"$tmp/ff.log" 2>&1
check "flare -> js FIND_NODE: flare finds F1's addresses through J" "$tmp/ff.log" \
    "any(e['peerId'] == '${F1##*/}' and '${F1%/p2p/*}' in e['addrs'] for e in ev('peer'))"

c1=bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi
c2=bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4
"$flare" dht provide $c1 --bootstrap "$F2" --listen $L --json >"$tmp/fp.log" 2>&1 &
pids+=($!)
wait_line "$tmp/fp.log" provided || wait_line "$tmp/fp.log" provided
P=$(addr "$tmp/fp.log")
timeout 60 "$node" "$kad" --listen $L --bootstrap "$F1" --find-providers $c1 >"$tmp/jfp.log" 2>&1
check "a provider record put by flare is found by js" "$tmp/jfp.log" \
    "any(e['peerId'] == '${P##*/}' for e in ev('provider'))"
js --bootstrap "$F1" --provide $c2 --stay >"$tmp/jp.log" 2>&1 &
pids+=($!)
wait_line "$tmp/jp.log" provided
JP=$(addr "$tmp/jp.log")
timeout 60 "$flare" dht find-providers $c2 --bootstrap "$F2" --listen $L --json >"$tmp/ffp.log" 2>&1
check "a provider record put by js is found by flare" "$tmp/ffp.log" \
    "any(e['peerId'] == '${JP##*/}' for e in ev('provider'))"

# A mixed DHT: 8 more flare and 8 more js servers, each joining through the
# previous node of the other kind. Every node and client shares 127.0.0.1, so
# the flare servers' per-IP limits (16 connections, 8 handshakes: one host's
# share) are raised to what 36 hosts on one address need.
prev=$J
oneip="--max-conns-per-ip 256 --max-conns-per-subnet 512 --max-handshakes-per-ip 64 --max-handshakes-per-subnet 128"
for i in $(seq 8); do
    # shellcheck disable=SC2086
    "$flare" listen --listen $L --dht-mode server $oneip --bootstrap "$prev" --json >"$tmp/mf$i.log" 2>&1 &
    pids+=($!)
    wait_line "$tmp/mf$i.log" listening
    mf=$(addr "$tmp/mf$i.log")
    js --bootstrap "$mf" --stay >"$tmp/mj$i.log" 2>&1 &
    pids+=($!)
    wait_line "$tmp/mj$i.log" listening
    prev=$(addr "$tmp/mj$i.log")
done
sleep 2
# Entries and targets pair node i with node 9-i of the same kind; all 16
# lookups run at once.
for i in $(seq 8); do
    mf=$(addr "$tmp/mf$i.log") mj=$(addr "$tmp/mj$i.log")
    tf=$(addr "$tmp/mf$((9 - i)).log") tj=$(addr "$tmp/mj$((9 - i)).log")
    timeout 60 "$node" "$kad" --listen $L --bootstrap "$mf" --find-peer "${tf##*/}" \
        >"$tmp/mixj$i.log" 2>&1 &
    lookups+=($!)
    timeout 60 "$flare" dht find-peer "${tj##*/}" --bootstrap "$mj" --listen $L --json \
        >"$tmp/mixf$i.log" 2>&1 &
    lookups+=($!)
done
wait "${lookups[@]}"
for i in $(seq 8); do
    tf=$(addr "$tmp/mf$((9 - i)).log") tj=$(addr "$tmp/mj$((9 - i)).log")
    check "mixed DHT of 20: a js client through flare node $i finds flare node $((9 - i))" \
        "$tmp/mixj$i.log" "any(e['peerId'] == '${tf##*/}' for e in ev('peer'))"
    check "mixed DHT of 20: a flare client through js node $i finds js node $((9 - i))" \
        "$tmp/mixf$i.log" "any(e['peerId'] == '${tj##*/}' for e in ev('peer'))"
done
finish
