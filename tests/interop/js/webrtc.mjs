// js-libp2p WebRTC-direct peer for flare interop tests (@libp2p/webrtc's
// webRTCDirect: ICE, DTLS, SCTP data channels and the Noise handshake on
// channel 0, in Node through node-datachannel), identify, ping and an echo
// handler. One JSON object per line on stdout, like peer.mjs: "listening",
// "connected", "inbound", "identify", "ping", "echo", "echo-reply", "error",
// "exit".
//
//   webrtc.mjs --listen /ip4/127.0.0.1/udp/0/webrtc-direct [--echo PROTO]
//   webrtc.mjs --dial MADDR [--ping] [--echo-send PROTO --message TEXT]
//              [--exit-after-ms N]

import { parseArgs } from 'node:util'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webRTCDirect } from '@libp2p/webrtc'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const bytesOf = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()

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

const connJson = (event, c) => ({
  event,
  peerId: c.remotePeer.toString(),
  remoteAddr: c.remoteAddr.toString(),
  direction: c.direction,
  encryption: c.encryption ?? null,
  multiplexer: c.multiplexer ?? null
})

async function main () {
  const { values: o } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true, default: [] },
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
  node = await createLibp2p({
    privateKey,
    nodeInfo: { userAgent: 'flare-interop-js-webrtc/0.0.0' },
    addresses: { listen: o.listen },
    transports: [webRTCDirect()],
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
  node.addEventListener('connection:open', (evt) => {
    if (evt.detail.direction === 'inbound') emit(connJson('inbound', evt.detail))
  })
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto))
  emit({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
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
  if (o['echo-send'] != null) {
    // Half-close once the whole echo is back (as quic.mjs does).
    const stream = await node.dialProtocol(peerId, o['echo-send'])
    const want = new TextEncoder().encode(o.message)
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
    if (reply !== o.message) throw new Error(`echo mismatch: ${JSON.stringify(reply)}`)
  }
  finish(0)
}

main().catch((err) => finish(1, err))
