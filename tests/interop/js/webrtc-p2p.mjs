// js-libp2p WebRTC private-to-private (/p2p-circuit/webrtc) peer for flare
// interop tests: @libp2p/webrtc's webRTC transport (SDP and ICE candidates
// over /webrtc-signaling/0.0.1 on a relayed connection, then DTLS, SCTP and
// data channels in Node through node-datachannel; no Noise: the relayed
// connection authenticated the peer), over TCP to Circuit Relay v2. One
// process is a relay, a listener (reservation + /webrtc) or a dialer. One
// JSON object per line on stdout: "listening", "reserved", "connected",
// "inbound", "identify", "ping", "echo", "echo-bytes", "closed", "error",
// "exit".
//
//   webrtc-p2p.mjs --listen /ip4/127.0.0.1/tcp/0 --relay
//   webrtc-p2p.mjs --reserve RELAY_MADDR [--echo PROTO]
//   webrtc-p2p.mjs --dial RELAY_MADDR/p2p-circuit/webrtc/p2p/ID [--ping]
//                  [--echo-send PROTO --bytes N]
//   (any of them with [--seed HEX] [--exit-after-ms N])
//
// The dialer's "connected" names the connection it got (a WebRTC one:
// remoteAddr ends with /webrtc/p2p/ID, not limited); ping and the echo run on
// that connection, and the echo of N bytes (a pattern) is checked byte for
// byte ("echo-bytes": bytes, ok, ms).

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  bytesOf, connJson, echoHandler, emit, finish, parseFlags, printClosed, printInbound,
  printListening, privateKeyOf, setNode, waitReserved
} from './common.mjs'

const limited = { runOnLimitedConnection: true }

const pattern = (n) => {
  const b = new Uint8Array(n)
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 10)) & 0xff
  return b
}

// Sends n pattern bytes on a new stream of conn, half-closes once the whole
// echo is back, and compares.
async function echoBytes (conn, protocol, n) {
  const t0 = Date.now()
  const stream = await conn.newStream(protocol)
  const want = pattern(n)
  const reader = (async () => {
    const parts = []
    let got = 0
    for await (const chunk of stream) {
      const b = bytesOf(chunk)
      parts.push(b)
      got += b.length
      if (got >= n) break
    }
    return Buffer.concat(parts)
  })()
  for (let off = 0; off < n; off += 16384) {
    if (!stream.send(want.subarray(off, Math.min(n, off + 16384)))) await stream.onDrain()
  }
  const back = await reader
  await stream.close()
  const ok = back.length === n && Buffer.compare(back, Buffer.from(want)) === 0
  emit({ event: 'echo-bytes', bytes: back.length, ok, ms: Date.now() - t0, remoteAddr: conn.remoteAddr.toString() })
  if (!ok) throw new Error(`echo of ${n} bytes came back as ${back.length} different bytes`)
}

async function main () {
  const o = parseFlags({
    relay: { type: 'boolean', default: false },
    reserve: { type: 'string', multiple: true, default: [] },
    bytes: { type: 'string', default: '262144' }
  })
  const services = { identify: identify(limited), ping: ping() }
  if (o.relay) services.relay = circuitRelayServer()
  const listen = [...o.listen, ...o.reserve.map((r) => `${r}/p2p-circuit`)]
  if (!o.relay) listen.push('/webrtc')
  const node = await createLibp2p({
    privateKey: await privateKeyOf(o.seed),
    nodeInfo: { userAgent: 'flare-interop-js-webrtc-p2p/0.0.0' },
    addresses: { listen },
    // No ICE servers: js would otherwise use its public STUN list, and the tests
    // must not reach outside the machine.
    transports: [tcp(), webRTC({ rtcConfiguration: { iceServers: [] } }), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services
  })
  setNode(node)
  setInterval(() => {}, 1 << 30)
  printInbound(node, true)
  printClosed(node)
  node.addEventListener('peer:identify', (evt) => {
    const r = evt.detail
    emit({
      event: 'identify',
      peerId: r.peerId.toString(),
      protocols: r.protocols ?? [],
      agentVersion: r.agentVersion ?? null,
      remoteAddr: r.connection?.remoteAddr?.toString() ?? null
    })
  })
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto))
  printListening(node)
  if (o.reserve.length > 0) await waitReserved(node, o.reserve.length)
  if (o.dial == null) return
  const conn = await node.dial(multiaddr(o.dial))
  emit(connJson('connected', conn, true))
  if (o.ping) {
    const rtt = await node.services.ping.ping(conn.remotePeer)
    emit({ event: 'ping', peerId: conn.remotePeer.toString(), rttMs: rtt })
  }
  if (o['echo-send'] != null) await echoBytes(conn, o['echo-send'], Number(o.bytes))
  finish(0)
}

main().catch((err) => finish(1, err))
