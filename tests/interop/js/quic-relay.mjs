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

import { noise } from '@chainsafe/libp2p-noise'
import { quic } from '@chainsafe/libp2p-quic'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import {
  connJson, echoHandler, echoSend, emit, finish, parseFlags, printInbound, printListening,
  privateKeyOf, setNode, waitReserved
} from './common.mjs'

const limited = { runOnLimitedConnection: true }

async function main () {
  const o = parseFlags({
    relay: { type: 'boolean', default: false },
    reserve: { type: 'string', multiple: true, default: [] }
  })
  const services = { identify: identify(limited), ping: ping(limited) }
  if (o.relay) services.relay = circuitRelayServer()
  const node = await createLibp2p({
    privateKey: await privateKeyOf(o.seed),
    nodeInfo: { userAgent: 'flare-interop-js-quic-relay/0.0.0' },
    addresses: { listen: [...o.listen, ...o.reserve.map((r) => `${r}/p2p-circuit`)] },
    transports: [quic(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services
  })
  setNode(node)
  setInterval(() => {}, 1 << 30)
  printInbound(node, true)
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto), limited)
  printListening(node)
  if (o.reserve.length > 0) await waitReserved(node, o.reserve.length)
  if (o.dial == null) return
  const conn = await node.dial(multiaddr(o.dial))
  emit(connJson('connected', conn, true))
  if (o.ping) {
    const rtt = await node.services.ping.ping(conn.remotePeer, limited)
    emit({ event: 'ping', peerId: conn.remotePeer.toString(), rttMs: rtt })
  }
  if (o['echo-send'] != null) await echoSend(conn.remotePeer, o['echo-send'], o.message, limited)
  finish(0)
}

main().catch((err) => finish(1, err))
