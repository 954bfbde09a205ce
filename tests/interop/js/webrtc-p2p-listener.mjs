// js-libp2p private WebRTC listener for the browser tests (the control next
// to a flare listener): it reserves a slot on a relay over TCP, listens on
// /webrtc, so it announces RELAY/p2p-circuit/webrtc/p2p/SELF, and accepts the
// WebRTC connections signalled over the relayed one (@libp2p/webrtc's
// webRTC, in Node through node-datachannel). No ICE servers: host candidates
// only, nothing leaves the machine. Echo handlers serve every connection.
// JSON lines on stdout: "listening", "reserved" (addrs: the circuit ones,
// /webrtc among them), "inbound" (with limited), "echo", "exit".
//
//   webrtc-p2p-listener.mjs --reserve RELAY_TCP_MADDR/p2p/ID --echo /echo/1.0.0 [--exit-after-ms N]

import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webRTC } from '@libp2p/webrtc'
import { createLibp2p } from 'libp2p'
import {
  emit, echoHandler, finish, parseFlags, printInbound, printListening, privateKeyOf, setNode
} from './common.mjs'

// Resolves once the node announces a /p2p-circuit/webrtc address (js adds it
// when the reservation succeeds), printing the circuit addresses.
function waitWebrtcAddr (node) {
  const circuit = () => node.getMultiaddrs().map(String).filter((a) => a.includes('/p2p-circuit'))
  return new Promise((resolve) => {
    const check = () => {
      const addrs = circuit()
      if (!addrs.some((a) => a.includes('/p2p-circuit/webrtc/'))) return false
      node.removeEventListener('self:peer:update', check)
      emit({ event: 'reserved', addrs })
      resolve()
      return true
    }
    if (!check()) node.addEventListener('self:peer:update', check)
  })
}

async function run () {
  const o = parseFlags({ reserve: { type: 'string', multiple: true, default: [] } })
  const node = await createLibp2p({
    privateKey: await privateKeyOf(o.seed),
    nodeInfo: { userAgent: 'flare-interop-js-webrtc-p2p/0.0.0' },
    addresses: { listen: [...o.reserve.map((r) => `${r}/p2p-circuit`), '/webrtc'] },
    transports: [tcp(), circuitRelayTransport(), webRTC({ rtcConfiguration: { iceServers: [] } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // The test network's addresses are private; js refuses to dial them by default.
    connectionGater: { denyDialMultiaddr: async () => false },
    services: {
      identify: identify({ runOnLimitedConnection: true }),
      ping: ping({ runOnLimitedConnection: true })
    }
  })
  setNode(node)
  setInterval(() => {}, 1 << 30)
  printInbound(node, true)
  for (const proto of o.echo) await node.handle(proto, echoHandler(proto), { runOnLimitedConnection: true })
  printListening(node)
  await waitWebrtcAddr(node)
}

run().catch((err) => finish(1, err))
