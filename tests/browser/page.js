// The browser side: js-libp2p with the WebSocket and circuit relay
// transports, Noise, yamux, identify and ping, bundled by esbuild (run.mjs)
// and run in Chromium. window.flareTest(opts) dials opts.addr, waits for
// identify, pings, sends opts.size bytes over opts.echo and checks the echo;
// it resolves with what it saw (the driver prints it as JSON).
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const bytesOf = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()

function identifyOnce (node, peerId, timeoutMs) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no identify within ' + timeoutMs + ' ms')), timeoutMs)
    node.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() !== peerId.toString()) return
      clearTimeout(timer)
      resolve(evt.detail)
    })
  })
}

async function echo (node, peerId, protocol, size) {
  const payload = new Uint8Array(size)
  for (let i = 0; i < size; i++) payload[i] = (i * 7 + 3) & 0xff
  const stream = await node.dialProtocol(peerId, protocol, { runOnLimitedConnection: true })
  if (!stream.send(payload)) await stream.onDrain()
  await stream.close()
  const parts = []
  for await (const chunk of stream) parts.push(bytesOf(chunk))
  const got = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let off = 0
  for (const p of parts) { got.set(p, off); off += p.length }
  return got.length === payload.length && got.every((b, i) => b === payload[i])
}

window.flareTest = async (opts) => {
  const out = { steps: [] }
  const node = await createLibp2p({
    transports: [webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Loopback addresses are what the test has; js refuses them by default.
    connectionGater: { denyDialMultiaddr: async () => false },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    }
  })
  try {
    const ma = multiaddr(opts.addr)
    const peerId = ma.getComponents().findLast((c) => c.name === 'p2p').value
    const idWait = identifyOnce(node, peerId, 10000)
    const conn = await node.dial(ma)
    out.remoteAddr = conn.remoteAddr.toString()
    out.limited = conn.limits != null
    out.steps.push('connected')
    const id = await idWait
    out.agentVersion = id.agentVersion
    out.protocols = id.protocols
    out.steps.push('identify')
    out.rttMs = await node.services.ping.ping(conn.remotePeer, { runOnLimitedConnection: true })
    out.steps.push('ping')
    out.echoOk = await echo(node, conn.remotePeer, opts.echo, opts.size)
    out.steps.push('echo')
  } catch (err) {
    out.error = String(err?.message ?? err)
  } finally {
    await node.stop().catch(() => {})
  }
  return out
}
