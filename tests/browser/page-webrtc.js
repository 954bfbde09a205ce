// The browser side of the WebRTC tests and benchmark: js-libp2p with
// WebRTC-direct, WebRTC (private-to-private, signalled over a relayed
// connection), WebSocket and circuit relay transports, bundled by esbuild
// (run.mjs --page page-webrtc.js) and run in Chromium. No ICE servers are
// configured: the test network has no STUN server, host candidates do.
//
// window.flareTest(opts) dials opts.addr and reports what it saw:
//   connected (remote address, transport, whether limited), identify, ping,
//   then one echo per opts.sizes entry over opts.echo, byte for byte, on
//   that very connection (never on a relayed one), and with opts.benchBytes
//   a timed echo of that many bytes (throughput).
// For a /p2p-circuit/webrtc address it also records when the relayed
// connection (the signalling path) opened and when the WebRTC one did.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { webRTC, webRTCDirect } from '@libp2p/webrtc'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

const bytesOf = (chunk) => chunk instanceof Uint8Array ? chunk : chunk.subarray()
const noIce = { iceServers: [] }

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

function pattern (size, seed) {
  const payload = new Uint8Array(size)
  for (let i = 0; i < size; i++) payload[i] = (i * 7 + seed + (i >> 8)) & 0xff
  return payload
}

// Sends size bytes over a new protocol stream of conn while reading the echo
// back; resolves with whether every byte came back in order, and the time
// from the stream's open to the last byte back.
async function echo (conn, protocol, size, seed) {
  const payload = pattern(size, seed)
  const stream = await conn.newStream(protocol, { runOnLimitedConnection: true })
  const t0 = performance.now()
  const writer = (async () => {
    const chunk = 16384
    for (let off = 0; off < size; off += chunk) {
      if (!stream.send(payload.subarray(off, Math.min(size, off + chunk)))) await stream.onDrain()
    }
  })()
  const got = new Uint8Array(size)
  let n = 0
  let ok = true
  let closed = false
  for await (const part of stream) {
    const b = bytesOf(part)
    if (n + b.length > size) { ok = false; break }
    got.set(b, n)
    n += b.length
    if (n === size && !closed) {
      closed = true
      await writer
      await stream.close()
    }
  }
  await writer
  const ms = performance.now() - t0
  if (!closed) stream.abort(new Error('short echo'))
  ok = ok && n === size && got.every((b, i) => b === payload[i])
  return { ok, bytes: n, ms }
}

window.flareTest = async (opts) => {
  const out = { steps: [], echoes: [] }
  const opens = []
  const node = await createLibp2p({
    transports: [
      webSockets(),
      circuitRelayTransport(),
      webRTC({ rtcConfiguration: noIce }),
      webRTCDirect({ rtcConfiguration: noIce })
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // Private addresses are what the test network has; js refuses them by default.
    connectionGater: { denyDialMultiaddr: async () => false },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    }
  })
  node.addEventListener('connection:open', (evt) => {
    opens.push({ t: performance.now(), addr: evt.detail.remoteAddr.toString(), limited: evt.detail.limits != null })
  })
  try {
    const ma = multiaddr(opts.addr)
    const peerId = ma.getComponents().findLast((c) => c.name === 'p2p').value
    const idWait = identifyOnce(node, peerId, 15000)
    const t0 = performance.now()
    const conn = await node.dial(ma, { signal: AbortSignal.timeout(20000) })
    const t1 = performance.now()
    out.dialMs = t1 - t0
    out.remoteAddr = conn.remoteAddr.toString()
    out.limited = conn.limits != null
    out.steps.push('connected')
    const relayed = opens.find((o) => o.limited)
    if (relayed != null) out.relayedToWebrtcMs = t1 - relayed.t
    const id = await idWait
    out.agentVersion = id.agentVersion
    out.protocols = id.protocols
    out.listenAddrs = (id.listenAddrs ?? []).map(String)
    out.steps.push('identify')
    out.rttMs = await node.services.ping.ping(conn.remotePeer, { runOnLimitedConnection: true })
    out.steps.push('ping')
    let seed = 1
    for (const size of opts.sizes ?? [1024]) {
      const r = await echo(conn, opts.echo, size, seed++)
      out.echoes.push({ size, ok: r.ok, bytes: r.bytes })
    }
    out.echoOk = out.echoes.every((e) => e.ok)
    out.steps.push('echo')
    if (opts.benchBytes) {
      const r = await echo(conn, opts.echo, opts.benchBytes, seed++)
      out.bench = { bytes: opts.benchBytes, ok: r.ok, ms: r.ms, mibPerS: opts.benchBytes / 1048576 / (r.ms / 1000) }
      out.echoOk = out.echoOk && r.ok
      out.steps.push('bench')
    }
    // The echoes must have used the connection dialled, still open.
    out.connStatus = conn.status
    out.connections = node.getConnections(conn.remotePeer).map((c) => ({
      addr: c.remoteAddr.toString(), limited: c.limits != null, status: c.status
    }))
  } catch (err) {
    out.error = String(err?.message ?? err)
  } finally {
    await node.stop().catch(() => {})
  }
  return out
}
