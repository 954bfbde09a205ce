// js-libp2p Kademlia DHT peer for flare interop tests (@libp2p/kad-dht).
//
// TCP + Noise + yamux + identify + ping + kad-dht on /ipfs/kad/1.0.0, with
// the private-address filter off (the tests run on loopback). Prints one
// JSON object per line on stdout, each with an "event" field:
//   listening {addr, peerId}     once started
//   routing-table {size}         when the table size changes
//   peer {peerId, addrs}         --find-peer's answer
//   closest {peers}              --closest's answer (peer IDs)
//   provided {cid}               --provide done
//   provider {peerId, addrs}     one per provider found by --find-providers
//   peer-record {peerId, envelope, certified}  --peer-record's answer: whether the
//                                peerStore holds a signed record of the peer, and
//                                its certified addresses
//   error {message}, exit {code}

import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { emit, finish, setNode } from './common.mjs'

const USAGE = `usage: kad.mjs [options]
  --listen MADDR          listen address (repeatable)
  --seed HEX              32-byte Ed25519 seed (64 hex chars)
  --bootstrap MADDR       dial this DHT peer at start (repeatable)
  --mode server|client    DHT mode (default server)
  --wait-peers N          routing table size to wait for before the actions (default 1)
  --find-peer ID          look a peer up and print "peer"
  --closest ID            getClosestPeers(ID's bytes) and print "closest"
  --provide CID           announce us as a provider of CID
  --find-providers CID    print a "provider" line per provider found
  --peer-record ID        wait (5 s) for ID's signed peer record in the peerStore
  --stay                  keep running after the actions (until a signal)
  --exit-after-ms N       hard bound on the process life`

// The running node, for actions(); common.mjs's finish() stops it too.
let node

function parse () {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true, default: [] },
      seed: { type: 'string' },
      bootstrap: { type: 'string', multiple: true, default: [] },
      mode: { type: 'string', default: 'server' },
      'wait-peers': { type: 'string', default: '1' },
      'find-peer': { type: 'string' },
      closest: { type: 'string' },
      provide: { type: 'string' },
      'find-providers': { type: 'string' },
      'peer-record': { type: 'string' },
      stay: { type: 'boolean', default: false },
      'exit-after-ms': { type: 'string' },
      help: { type: 'boolean', default: false }
    },
    strict: true
  })
  if (values.mode !== 'server' && values.mode !== 'client') throw new Error('--mode: server or client')
  return values
}

async function waitTable (dht, n, ms) {
  const end = Date.now() + ms
  while (dht.routingTable.size < n) {
    if (Date.now() > end) throw new Error(`routing table has ${dht.routingTable.size} peers, wanted ${n}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function actions (opts) {
  const dht = node.services.dht
  await waitTable(dht, Number(opts['wait-peers']), 20000)
  if (opts['find-peer'] != null) {
    const info = await node.peerRouting.findPeer(peerIdFromString(opts['find-peer']))
    emit({ event: 'peer', peerId: info.id.toString(), addrs: info.multiaddrs.map(String) })
  }
  if (opts.closest != null) {
    const peers = []
    for await (const ev of dht.getClosestPeers(peerIdFromString(opts.closest).toMultihash().bytes)) {
      if (ev.name === 'FINAL_PEER') peers.push(ev.peer.id.toString())
    }
    emit({ event: 'closest', peers })
  }
  if (opts.provide != null) {
    await node.contentRouting.provide(CID.parse(opts.provide))
    emit({ event: 'provided', cid: opts.provide })
  }
  if (opts['find-providers'] != null) {
    let n = 0
    for await (const p of node.contentRouting.findProviders(CID.parse(opts['find-providers']))) {
      emit({ event: 'provider', peerId: p.id.toString(), addrs: p.multiaddrs.map(String) })
      n++
    }
    if (n === 0) throw new Error('no provider found')
  }
  if (opts['peer-record'] != null) {
    // identify stores a record only once its envelope verified (else it throws)
    const id = peerIdFromString(opts['peer-record'])
    const end = Date.now() + 5000
    let peer
    do {
      peer = await node.peerStore.get(id).catch(() => null)
      if (peer?.peerRecordEnvelope != null) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    } while (Date.now() < end)
    emit({
      event: 'peer-record',
      peerId: id.toString(),
      envelope: peer?.peerRecordEnvelope != null,
      certified: (peer?.addresses ?? []).filter((a) => a.isCertified).map((a) => a.multiaddr.toString())
    })
  }
}

async function main () {
  let opts
  try {
    opts = parse()
  } catch (err) {
    process.stderr.write(`${err.message}\n${USAGE}\n`)
    process.exit(2)
  }
  if (opts.help) {
    process.stdout.write(USAGE + '\n')
    return
  }
  if (opts['exit-after-ms'] != null) {
    setTimeout(() => finish(1, new Error('exit-after-ms reached')), Number(opts['exit-after-ms'])).unref()
  }
  const privateKey = opts.seed != null
    ? await generateKeyPairFromSeed('Ed25519', Buffer.from(opts.seed, 'hex'))
    : await generateKeyPair('Ed25519')
  node = await createLibp2p({
    privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: '/ipfs/kad/1.0.0',
        clientMode: opts.mode === 'client',
        peerInfoMapper: passthroughMapper,
        allowQueryWithZeroPeers: true
      })
    }
  })
  setNode(node)
  for (const a of node.getMultiaddrs()) emit({ event: 'listening', addr: a.toString(), peerId: node.peerId.toString() })
  let last = -1
  setInterval(() => {
    const size = node.services.dht.routingTable.size
    if (size !== last) emit({ event: 'routing-table', size })
    last = size
  }, 200).unref()
  for (const b of opts.bootstrap) await node.dial(multiaddr(b))
  await actions(opts)
  actionsDone = true
  if (!opts.stay) finish(0)
}

// A signal before the actions finished is a failure (a test's timeout).
let actionsDone = false
process.on('SIGTERM', () => finish(actionsDone ? 0 : 1, actionsDone ? null : new Error('signal before the actions finished')))
process.on('SIGINT', () => finish(actionsDone ? 0 : 1))
main().catch((err) => finish(1, err))
