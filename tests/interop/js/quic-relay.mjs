// js-libp2p Circuit Relay v2 over QUIC for flare interop tests: a QUIC-only
// node (@chainsafe/libp2p-quic) that can be a relay (hop), reserve on a relay
// reached over QUIC, and dial through one. Relayed connections are upgraded
// with Noise and yamux, as every libp2p implementation does; the carrier is
// QUIC. One JSON object per line on stdout: "listening", "reserved",
// "connected", "inbound", "ping", "echo", "echo-reply", "error", "exit".
//
//   quic-relay.mjs --listen /ip4/127.0.0.1/udp/0/quic-v1 --relay
//   quic-relay.mjs --reserve RELAY_MADDR [--echo PROTO]
//   quic-relay.mjs --dial MADDR/p2p-circuit/p2p/ID [--ping] [--echo-send PROTO --message TEXT]
//   (any of them with [--seed HEX] [--exit-after-ms N])

import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const bytesOf = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()
const limited = { runOnLimitedConnection: true }

let node
function finish (code, err) {
  if (err != null) emit({ event: 'error', message: String(err?.message ?? err) })
  setTimeout(() => process.exit(code), 1000).unref()
  const stop = node?.stop() ?? Promise.resolve()
  stop.catch(() => {}).finally(() => {
    emit({ event: 'exit', code })
    process.exit(code)
  })
}

const connJson = (event, c) => ({
  event,
  peerId: c.remotePeer.toString(),
  remoteAddr: c.remoteAddr.toString(),
  direction: c.direction,
  limited: c.limits != null,
  encryption: c.encryption ?? null,
  multiplexer: c.multiplexer ?? null
})

function echoHandler (protocol) {
  return async (stream, connection) => {
    let total = 0
    try {
      for await (const chunk of stream) {
        const buf = bytesOf(chunk)
        total += buf.length
        if (!stream.send(buf)) await stream.onDrain()
      }
      await stream.close()
      emit({ event: 'echo', protocol, peerId: connection.remotePeer.toString(), bytes: total })
    } catch (err) {
      emit({ event: 'echo-failed', protocol, message: String(err?.message ?? err) })
      stream.abort(err)
    }
  }
}

// Half-closes once the whole echo is back (see quic.mjs).
async function echoSend (peerId, protocol, message) {
  const stream = await node.dialProtocol(peerId, protocol, limited)
  const want = new TextEncoder().encode(message)
  if (!stream.send(want)) await stream.onDrain()
  const parts = []
  let got = 0
  let closed = false
  for await (const chunk of stream) {
    parts.push(bytesOf(chunk))
    got += bytesOf(chunk).length
    if (got >= want.length && !closed) {
      closed = true
      await stream.close()
    }
  }
  const reply = Buffer.concat(parts).toString('utf8')
  emit({ event: 'echo-reply', message: reply })
  if (reply !== message) throw new Error(`echo mismatch: ${JSON.stringify(reply)}`)
}

function waitReserved (count) {
  const circuit = () => node.getMultiaddrs().map(String).filter((a) => a.includes('/p2p-circuit'))
  return new Promise((resolve) => {
    const check = () => {
      const addrs = circuit()
      if (addrs.length < count) return false
      node.removeEventListener('self:peer:update', check)
      emit({ event: 'reserved', addrs })
      resolve()
      return true
    }
    if (!check()) node.addEventListener('self:peer:update', check)
  })
}

async function main () {
  const { values: o } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true, default: [] },
      relay: { type: 'boolean', default: false },
      reserve: { type: 'string', multiple: true, default: [] },
      dial: { type: 'string' },
      seed: { type: 'string' },
      echo: { type: 'string', multiple: true, default: [] },
      ping: { type: 'boolean', default: false },
      'echo-send': { type: 'string' },
      message: { type: 'string', default: 'hello' },
      'exit-after-ms': { type: 'string' }
    },
    strict: true
  })
  if (o['exit-after-ms'] != null) {
    setTimeout(() => finish(o.dial == null ? 0 : 1, o.dial == null ? null : 'timeout'),
      Number(o['exit-after-ms'])).unref()
  }
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => finish(0))
  const privateKey = o.seed != null
    ? await generateKeyPairFromSeed('Ed25519', Buffer.from(o.seed, 'hex'))
    : await generateKeyPair('Ed25519')
  const services = { identify: identify(limited), ping: ping(limited) }
  if (o.relay) services.relay = circuitRelayServer()
  node = await createLibp2p({
    privateKey,
    nodeInfo: { userAgent: 'flare-interop-js-quic-relay/0.0.0' },
    addresses: { listen: [...o.listen, ...o.reserve.map((r) => `${r}/p2p-circuit`)] },
    transports: [quic(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services
  })
  setInterval(() => {}, 1 << 30)
  node.addEventListener('connection:open', (evt) => {
    if (evt.detail.direction === 'inbound') emit(connJson('inbound', evt.detail))
  })
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto), limited)
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  if (o.reserve.length > 0) await waitReserved(o.reserve.length)
  if (o.dial == null) return
  const conn = await node.dial(multiaddr(o.dial))
  emit(connJson('connected', conn))
  if (o.ping) {
    const rtt = await node.services.ping.ping(conn.remotePeer, limited)
    emit({ event: 'ping', peerId: conn.remotePeer.toString(), rttMs: rtt })
  }
  if (o['echo-send'] != null) await echoSend(conn.remotePeer, o['echo-send'], o.message)
  finish(0)
}

main().catch((err) => finish(1, err))
