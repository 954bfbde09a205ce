// Shared pieces of the small single-purpose js-libp2p interop peers (quic.mjs,
// webrtc.mjs, quic-relay.mjs, webrtc-p2p.mjs): the JSON-lines output, the exit path, the
// common command-line flags, the echo protocol both ways, and the whole
// listen/dial/identify/ping/echo run of a peer that differs only in its
// transport. Each process runs one peer, so the node lives here.

import { parseArgs } from 'node:util'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
export const bytesOf = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()

let node
export const setNode = (n) => { node = n }

// Stops the node and exits with code; a node that will not stop still exits
// within a second.
export function finish (code, err) {
  if (err != null) emit({ event: 'error', message: String(err?.message ?? err) })
  setTimeout(() => process.exit(code), 1000).unref()
  const stop = node?.stop() ?? Promise.resolve()
  stop.catch(() => {}).finally(() => {
    emit({ event: 'exit', code })
    process.exit(code)
  })
}

// `limited` is printed only by peers that can hold relayed connections, in
// the place the relay tests have always seen it.
export function connJson (event, c, withLimited = false) {
  const out = {
    event,
    peerId: c.remotePeer.toString(),
    remoteAddr: c.remoteAddr.toString(),
    direction: c.direction
  }
  if (withLimited) out.limited = c.limits != null
  out.encryption = c.encryption ?? null
  out.multiplexer = c.multiplexer ?? null
  return out
}

// The flags every one of these peers takes; a peer adds its own to them.
export const commonOptions = {
  listen: { type: 'string', multiple: true, default: [] },
  dial: { type: 'string' },
  seed: { type: 'string' },
  echo: { type: 'string', multiple: true, default: [] },
  ping: { type: 'boolean', default: false },
  'echo-send': { type: 'string' },
  message: { type: 'string', default: 'hello' },
  'exit-after-ms': { type: 'string' }
}

// Parses the flags and arms the exits: --exit-after-ms is a clean end for a
// listener and a timeout failure for a dialer; signals end cleanly.
export function parseFlags (extra = {}) {
  const { values: o } = parseArgs({ options: { ...commonOptions, ...extra }, strict: true })
  if (o['exit-after-ms'] != null) {
    setTimeout(() => finish(o.dial == null ? 0 : 1, o.dial == null ? null : 'timeout'),
      Number(o['exit-after-ms'])).unref()
  }
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => finish(0))
  return o
}

export function privateKeyOf (seed) {
  return seed != null
    ? generateKeyPairFromSeed('Ed25519', Buffer.from(seed, 'hex'))
    : generateKeyPair('Ed25519')
}

// Writes back everything it reads until the remote half-closes, then closes.
// peer.mjs has always named the peer in "echo-failed"; the others have not.
export function echoHandler (protocol, failWithPeerId = false) {
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
      const peer = failWithPeerId ? { peerId: connection.remotePeer.toString() } : {}
      emit({ event: 'echo-failed', protocol, ...peer, message: String(err?.message ?? err) })
      stream.abort(err)
    }
  }
}

// Half-closes only once the whole echo is back: a FIN that arrives while
// js-libp2p is still unwrapping a freshly negotiated QUIC stream can be
// missed by its reader (seen with 2.1.1), so the echo side's FIN must come
// after negotiation settled.
export async function echoSend (peerId, protocol, message, dialOpts) {
  const stream = await node.dialProtocol(peerId, protocol, dialOpts)
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

// Prints "reserved" once the node announces one /p2p-circuit address per
// relay in --reserve (js-libp2p adds them when the reservation succeeds).
export function waitReserved (node, count) {
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

export const printInbound = (n, withLimited = false) =>
  n.addEventListener('connection:open', (evt) => {
    if (evt.detail.direction === 'inbound') emit(connJson('inbound', evt.detail, withLimited))
  })

// "closed" when a connection ends, with the time, so a test can tell a
// prompt close (the peer said so) from a timeout.
export const printClosed = (n) =>
  n.addEventListener('connection:close', (evt) => {
    emit({ ...connJson('closed', evt.detail), atMs: Date.now() })
  })

export const printListening = (n) =>
  emit({ event: 'listening', peerId: n.peerId.toString(), addrs: n.getMultiaddrs().map(String) })

// The whole run of a peer with one transport set and no other options:
// listen (with echo handlers), or dial, wait for identify, ping and echo.
async function runPeer ({ userAgent, transports }) {
  const o = parseFlags()
  node = await createLibp2p({
    privateKey: await privateKeyOf(o.seed),
    nodeInfo: { userAgent },
    addresses: { listen: o.listen },
    transports,
    services: { identify: identify(), ping: ping() }
  })
  setInterval(() => {}, 1 << 30)
  const seen = new Map()
  const waiters = []
  node.addEventListener('peer:identify', (evt) => {
    const r = evt.detail
    seen.set(r.peerId.toString(), r)
    emit({
      event: 'identify',
      peerId: r.peerId.toString(),
      protocols: r.protocols ?? [],
      listenAddrs: (r.listenAddrs ?? []).map(String),
      observedAddr: r.observedAddr?.toString() ?? null,
      agentVersion: r.agentVersion ?? null
    })
    for (const w of waiters.splice(0)) w()
  })
  printInbound(node)
  printClosed(node)
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto))
  printListening(node)
  if (o.dial == null) return
  const conn = await node.dial(multiaddr(o.dial))
  emit(connJson('connected', conn))
  const peerId = conn.remotePeer
  for (let i = 0; i < 50 && !seen.has(peerId.toString()); i++) {
    await new Promise((resolve) => { waiters.push(resolve); setTimeout(resolve, 100) })
  }
  if (o.ping) {
    const rtt = await node.services.ping.ping(peerId)
    emit({ event: 'ping', peerId: peerId.toString(), rttMs: rtt })
  }
  if (o['echo-send'] != null) await echoSend(peerId, o['echo-send'], o.message)
  finish(0)
}

export function main (settings) {
  runPeer(settings).catch((err) => finish(1, err))
}
