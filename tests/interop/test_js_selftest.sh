#!/usr/bin/env bash
# Self-test of the js-libp2p reference peer: two js peers over loopback, one
# listening with an echo handler, one dialing with --ping and --echo-send;
# their JSON event lines are checked by a small Node program. Also checks
# that --seed gives the peer id derived independently (node:crypto) and that
# failures exit non-zero with an "error" line.
#
# Usage: tests/interop/run-js-selftest.sh [BUILD_DIR]   (default: build)
# Exit: 0 pass, 1 fail, 77 skip (npm registry unreachable, see
# scripts/interop-setup.sh). Every process is bounded with `timeout`.
set -uo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
lpid=
bgpids=()
cleanup() {
    for p in $lpid "${bgpids[@]}"; do
        if kill -0 "$p" 2>/dev/null; then
            kill "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

paths=$(timeout 1200 "$root/scripts/interop-setup.sh" "${1:-${FLARE_BINARY_DIR:-$root/build}}")
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -ne 0 ] && {
    echo "interop-setup.sh failed ($rc)" >&2
    exit 1
}
node=$(sed -n 1p <<<"$paths")
peer=$(sed -n 2p <<<"$paths")
seed=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
proto=/echo/1.0.0

# Listener: echo service, fixed seed, bounded life; stopped with SIGTERM below.
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --echo "$proto" --seed "$seed" \
    --exit-after-ms 45000 >"$tmp/listener.out" 2>"$tmp/listener.err" &
lpid=$!
# first_addr FILE EVENT PID: waits (<= 15 s, while PID lives) for an EVENT
# line in FILE and prints its addrs[0].
first_addr() {
    local a=
    for _ in $(seq 150); do
        a=$("$node" -e '
            for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n")) {
              try { const e = JSON.parse(l); if (e.event === process.argv[2]) { console.log(e.addrs[0] ?? ""); break } } catch {}
            }' "$1" "$2")
        [ -n "$a" ] && break
        kill -0 "$3" 2>/dev/null || break
        sleep 0.1
    done
    echo "$a"
}
addr=$(first_addr "$tmp/listener.out" listening "$lpid")
if [ -z "$addr" ]; then
    echo "listener did not report a listen address" >&2
    cat "$tmp/listener.out" "$tmp/listener.err" >&2
    exit 1
fi

timeout 40 "$node" "$peer" --dial "$addr" --ping --ping-count 2 --echo-send "$proto" \
    --message hi --exit-after-ms 30000 >"$tmp/dialer.out" 2>"$tmp/dialer.err"
echo $? >"$tmp/dialer.rc"

# Negative cases: a dial to a port nobody listens on, and a malformed seed.
listener_id=${addr##*/p2p/}
timeout 40 "$node" "$peer" --dial "/ip4/127.0.0.1/tcp/1/p2p/$listener_id" --exit-after-ms 20000 \
    >"$tmp/baddial.out" 2>"$tmp/baddial.err"
echo $? >"$tmp/baddial.rc"
timeout 20 "$node" "$peer" --id-only --seed 0011 >"$tmp/badseed.out" 2>"$tmp/badseed.err"
echo $? >"$tmp/badseed.rc"
timeout 20 "$node" "$peer" --id-only --seed "$seed" >"$tmp/id.out" 2>"$tmp/id.err"
echo $? >"$tmp/id.rc"

# Relay scenario: a js relay server, a js peer reserving a slot on it and
# serving echo, and a js dialer reaching that peer through the relay.
timeout 60 "$node" "$peer" --listen /ip4/127.0.0.1/tcp/0 --relay --exit-after-ms 45000 \
    >"$tmp/relay.out" 2>"$tmp/relay.err" &
bgpids+=($!)
raddr=$(first_addr "$tmp/relay.out" listening "${bgpids[0]}")
timeout 60 "$node" "$peer" --reserve "$raddr" --echo "$proto" --exit-after-ms 45000 \
    >"$tmp/reserver.out" 2>"$tmp/reserver.err" &
bgpids+=($!)
caddr=$(first_addr "$tmp/reserver.out" reserved "${bgpids[1]}")
if [ -n "$caddr" ]; then
    timeout 40 "$node" "$peer" --dial "$caddr" --ping --echo-send "$proto" --message relayed \
        --exit-after-ms 30000 >"$tmp/relayed.out" 2>"$tmp/relayed.err"
    echo $? >"$tmp/relayed.rc"
else
    echo 1 >"$tmp/relayed.rc"
    touch "$tmp/relayed.out"
fi
for p in "${bgpids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${bgpids[@]}"; do wait "$p"; done
bgpids=()

# Let the listener report the echo and the closed connection, then stop it.
for _ in $(seq 50); do
    grep -q '"event":"closed"' "$tmp/listener.out" && break
    sleep 0.1
done
kill -TERM "$lpid" 2>/dev/null
wait "$lpid"
echo $? >"$tmp/listener.rc"
lpid=

"$node" - "$tmp" "$seed" "$proto" <<'EOF'
const fs = require('fs')
const crypto = require('crypto')
const [dir, seedHex, proto] = process.argv.slice(2)
let passed = 0, failed = 0
function check (name, ok, detail) {
  if (ok) { passed++; console.log(`ok - ${name}`) }
  else { failed++; console.log(`not ok - ${name}${detail != null ? ': ' + detail : ''}`) }
}
const read = (f) => fs.readFileSync(`${dir}/${f}`, 'utf8')
const rc = (f) => Number(read(`${f}.rc`).trim())
function events (f) {
  const lines = read(`${f}.out`).split('\n').filter((l) => l !== '')
  const evs = []
  const bad = []
  for (const l of lines) {
    let e
    try { e = JSON.parse(l) } catch { e = null }
    if (e != null && typeof e === 'object' && typeof e.event === 'string') evs.push(e)
    else bad.push(l)
  }
  check(`${f}: every stdout line is a JSON object with an event`, lines.length > 0 && bad.length === 0,
    lines.length === 0 ? 'no output' : bad[0])
  return evs
}
const find = (evs, name, pred = () => true) => evs.find((e) => e.event === name && pred(e))

// Peer id of an Ed25519 seed, computed without libp2p: protobuf PublicKey
// {Type: Ed25519, Data: pub} wrapped in an identity multihash, base58btc.
function peerIdFromSeed (hex) {
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(hex, 'hex')])
  const spki = crypto.createPublicKey(crypto.createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }))
    .export({ format: 'der', type: 'spki' })
  const mh = Buffer.concat([Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]), spki.subarray(-32)])
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
  let n = BigInt('0x' + mh.toString('hex')), s = ''
  while (n > 0n) { s = alphabet[Number(n % 58n)] + s; n /= 58n }
  for (const b of mh) { if (b !== 0) break; s = '1' + s }
  return s
}
const expectedId = peerIdFromSeed(seedHex)

const L = events('listener')
const D = events('dialer')
const listening = find(L, 'listening')
check('listener: listening event', listening != null)
check('listener: peer id derived from --seed', listening?.peerId === expectedId, `${listening?.peerId} != ${expectedId}`)
check('listener: listens on loopback tcp', /^\/ip4\/127\.0\.0\.1\/tcp\/[1-9][0-9]*\/p2p\//.test(listening?.addrs?.[0] ?? ''))
check('listener: serves the echo protocol', listening?.protocols?.includes(proto))
const lid = listening?.peerId

check('dialer: exit code 0', rc('dialer') === 0, `rc=${rc('dialer')} stderr=${read('dialer.err').slice(-500)}`)
check('dialer: no error event', find(D, 'error') == null, JSON.stringify(find(D, 'error')))
const dl = find(D, 'listening')
const did = dl?.peerId
check('dialer: reports its own peer id', typeof did === 'string' && did !== lid)
const conn = find(D, 'connected')
check('dialer: connected to the listener', conn?.peerId === lid, JSON.stringify(conn))
check('dialer: connection uses Noise', conn?.encryption === '/noise', conn?.encryption)
check('dialer: connection uses yamux', conn?.multiplexer === '/yamux/1.0.0', conn?.multiplexer)
const id = find(D, 'identify', (e) => e.peerId === lid)
for (const p of [proto, '/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0']) {
  check(`dialer: identify lists ${p}`, id?.protocols?.includes(p), JSON.stringify(id?.protocols))
}
check('dialer: identify has listen addrs', id?.listenAddrs?.some((a) => a.startsWith('/ip4/127.0.0.1/tcp/')), JSON.stringify(id?.listenAddrs))
check('dialer: identify has observed addr', /^\/ip4\/127\.0\.0\.1\/tcp\//.test(id?.observedAddr ?? ''), id?.observedAddr)
check('dialer: identify has agent version', typeof id?.agentVersion === 'string' && id.agentVersion.length > 0)
const pings = D.filter((e) => e.event === 'ping')
check('dialer: two pings with a numeric rtt', pings.length === 2 && pings.every((p) => Number.isFinite(p.rttMs) && p.rttMs >= 0), JSON.stringify(pings))
const reply = find(D, 'echo-reply')
check('dialer: echo reply is the message', reply?.message === 'hi' && reply?.protocol === proto, JSON.stringify(reply))
check('dialer: done event', find(D, 'done') != null)

const inbound = find(L, 'inbound')
check('listener: inbound connection from the dialer', inbound?.peerId === did, JSON.stringify(inbound))
check('listener: inbound uses Noise and yamux', inbound?.encryption === '/noise' && inbound?.multiplexer === '/yamux/1.0.0')
check('listener: identify of the dialer', find(L, 'identify', (e) => e.peerId === did) != null)
const echo = find(L, 'echo')
check('listener: echoed 2 bytes', echo?.bytes === 2 && echo?.peerId === did, JSON.stringify(echo))
check('listener: no error event', find(L, 'error') == null && find(L, 'echo-failed') == null)
check('listener: exits 0 on SIGTERM', rc('listener') === 0, `rc=${rc('listener')}`)

const B = events('baddial')
check('bad dial: non-zero exit', rc('baddial') !== 0 && rc('baddial') !== 124, `rc=${rc('baddial')}`)
check('bad dial: error event', find(B, 'error') != null)
const S = events('badseed')
check('bad seed: exit code 2 with error event', rc('badseed') === 2 && /seed/.test(find(S, 'error')?.message ?? ''), `rc=${rc('badseed')}`)
const I = events('id')
check('--id-only: prints the seed\'s peer id', rc('id') === 0 && find(I, 'id')?.peerId === expectedId)

const RL = events('relay')
const rl = find(RL, 'listening')
check('relay: serves circuit relay v2 hop', rl?.protocols?.includes('/libp2p/circuit/relay/0.2.0/hop'))
const RS = events('reserver')
const rsv = find(RS, 'reserved')
const rsid = find(RS, 'listening')?.peerId
check('reserver: reserved a circuit address on the relay',
  rsv?.addrs?.[0] === `${rl?.addrs?.[0]}/p2p-circuit/p2p/${rsid}`, JSON.stringify(rsv))
const RD = events('relayed')
check('relayed dial: exit code 0', rc('relayed') === 0, `rc=${rc('relayed')} ${read('relayed.err').slice(-300)}`)
const rconn = find(RD, 'connected')
check('relayed dial: limited connection to the reserver via the relay',
  rconn?.peerId === rsid && rconn?.limited === true && rconn?.remoteAddr?.includes('/p2p-circuit/'), JSON.stringify(rconn))
check('relayed dial: ping', find(RD, 'ping', (e) => e.peerId === rsid) != null)
check('relayed dial: echo through the relay', find(RD, 'echo-reply')?.message === 'relayed', JSON.stringify(find(RD, 'echo-reply')))
check('reserver: served the relayed echo', find(RS, 'echo')?.bytes === 7, JSON.stringify(find(RS, 'echo')))

console.log(`${passed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
EOF
