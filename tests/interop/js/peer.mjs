// js-libp2p reference peer for flare interop tests.
//
// Driven by command-line flags; prints one JSON object per line on stdout,
// each with an "event" field, so a test driver (shell or C) can follow it.
// Diagnostics go to stderr. See README.md for the flags and the events.
//
// Only TCP (and with --websockets, WebSocket) + Noise (or TLS, with --security)
// + yamux are configured (no mplex) so the peer on the other side is
// exercised on exactly that stack.

import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { bytesOf, echoHandler, waitReserved } from './common.mjs'

const AGENT = 'flare-interop-js/0.0.0'
const USAGE = `usage: peer.mjs [options]
  --listen MADDR        listen on MADDR (repeatable), e.g. /ip4/127.0.0.1/tcp/0
  --dial MADDR          dial MADDR (must end in /p2p/PEERID) and print "connected"
  --seed HEX            32-byte Ed25519 seed (64 hex chars); default: random key
  --echo PROTO          serve an echo handler on PROTO (repeatable)
  --ping                after dialing, ping the remote and print "ping"
  --ping-count N        number of pings (default 1)
  --echo-send PROTO     after dialing, open PROTO, send --message, half-close,
                        print the reply ("echo-reply")
  --message TEXT        payload for --echo-send (default "hello")
  --no-identify-wait    after dialing, do not wait for the remote's identify
  --identify-timeout-ms N  how long to wait for it (default 5000)
  --stay                after the dial actions, keep running (until
                        --exit-after-ms or a signal) instead of exiting
  --exit-after-ms N     hard bound on the process life; reaching it with dial
                        actions unfinished is an error
  --relay               run a circuit relay v2 server (hop)
  --reserve MADDR       reserve a slot on the relay at MADDR (ends in /p2p/ID)
                        and listen on MADDR/p2p-circuit; prints "reserved"
  --websockets          also the WebSocket transport (/ws, /tls/ws: see
                        websockets.mjs for the certificate)
  --relay-client        enable the circuit relay v2 transport (implied by
                        --reserve and by a --dial address with /p2p-circuit)
  --autonat             run an AutoNAT v1 service
  --autonat-v2          run the AutoNAT v2 service (server and client) and
                        print its messages ("autonat-v2") and our addresses'
                        verification state ("self-addrs")
  --security LIST       connection encrypters in preference order, comma
                        separated: noise, tls (default noise)
  --id-only             print {"event":"id","peerId":...} and exit
  --help`

function emit (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

let exiting = false
function finish (code, error) {
  if (exiting) return
  exiting = true
  if (error != null) {
    emit({ event: 'error', message: String(error?.message ?? error), name: error?.name })
  }
  // Stopping libp2p can stall on a misbehaving remote; never let it hang us.
  setTimeout(() => process.exit(code), 1000).unref()
  const stop = globalThis.__node?.stop() ?? Promise.resolve()
  stop.catch(() => {}).finally(() => {
    emit({ event: 'exit', code })
    process.exit(code)
  })
}

function parse () {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string', multiple: true, default: [] },
      dial: { type: 'string' },
      seed: { type: 'string' },
      echo: { type: 'string', multiple: true, default: [] },
      ping: { type: 'boolean', default: false },
      'ping-count': { type: 'string', default: '1' },
      'echo-send': { type: 'string' },
      message: { type: 'string', default: 'hello' },
      'no-identify-wait': { type: 'boolean', default: false },
      'identify-timeout-ms': { type: 'string', default: '5000' },
      stay: { type: 'boolean', default: false },
      'exit-after-ms': { type: 'string' },
      relay: { type: 'boolean', default: false },
      reserve: { type: 'string', multiple: true, default: [] },
      'relay-client': { type: 'boolean', default: false },
      websockets: { type: 'boolean', default: false },
      autonat: { type: 'boolean', default: false },
      'autonat-v2': { type: 'boolean', default: false },
      'id-only': { type: 'boolean', default: false },
      security: { type: 'string', default: 'noise' },
      help: { type: 'boolean', default: false }
    },
    strict: true,
    allowPositionals: false
  })
  const int = (name) => {
    const v = values[name]
    if (v == null) return undefined
    if (!/^[0-9]+$/.test(v)) throw new Error(`--${name}: not a non-negative integer: ${v}`)
    return Number(v)
  }
  if (values.seed != null && !/^[0-9a-fA-F]{64}$/.test(values.seed)) {
    throw new Error('--seed: expected 64 hex characters (a 32-byte Ed25519 seed)')
  }
  return {
    ...values,
    pingCount: int('ping-count'),
    identifyTimeoutMs: int('identify-timeout-ms'),
    exitAfterMs: int('exit-after-ms')
  }
}

async function privateKeyFrom (seedHex) {
  if (seedHex == null) return generateKeyPair('Ed25519')
  return generateKeyPairFromSeed('Ed25519', Buffer.from(seedHex, 'hex'))
}

async function encrypters (list) {
  const out = []
  for (const name of list.split(',')) {
    if (name === 'noise') out.push(noise())
    else if (name === 'tls') out.push((await import('@libp2p/tls')).tls())
    else throw new Error(`--security: unknown encrypter ${name}`)
  }
  return out
}

async function createNode (opts, privateKey) {
  // Relayed connections are "limited"; serve the basic protocols on them too.
  const services = {
    identify: identify({ runOnLimitedConnection: true }),
    identifyPush: identifyPush({ runOnLimitedConnection: true }),
    ping: ping({ runOnLimitedConnection: true })
  }
  const transports = [tcp()]
  if (opts.websockets) {
    const { webSocketsTransport } = await import('./websockets.mjs')
    transports.push(webSocketsTransport())
  }
  const listen = [...opts.listen, ...opts.reserve.map((r) => `${r}/p2p-circuit`)]
  if (opts['relay-client'] || opts.reserve.length > 0 || opts.dial?.includes('/p2p-circuit')) {
    const { circuitRelayTransport } = await import('@libp2p/circuit-relay-v2')
    transports.push(circuitRelayTransport())
  }
  if (opts.relay) {
    const { circuitRelayServer } = await import('@libp2p/circuit-relay-v2')
    services.relay = circuitRelayServer()
  }
  if (opts.autonat) {
    const { autoNAT } = await import('@libp2p/autonat')
    services.autonat = autoNAT()
  }
  if (opts['autonat-v2']) {
    const { autoNATv2 } = await import('@libp2p/autonat-v2')
    await tapAutonatV2()
    services.autonatV2 = autoNATv2()
  }
  return createLibp2p({
    privateKey,
    nodeInfo: { userAgent: AGENT },
    addresses: { listen },
    transports,
    connectionEncrypters: await encrypters(opts.security),
    streamMuxers: [yamux()],
    services
  })
}

// AutoNAT v2 message tap. The service keeps its exchanges to itself (it only
// logs failures), so we wrap the encode/decode functions of its protobuf
// module: every message it sends or receives, as a client (dial-request,
// dial data, dial-back answers) or as a server, becomes an "autonat-v2" line.
// The module is loaded by file URL (the package exports only its root), which
// is the same URL the service imports, hence the same module instance.
async function tapAutonatV2 () {
  const root = import.meta.resolve('@libp2p/autonat-v2')
  const pb = await import(new URL('./pb/index.js', root).href)
  const addr = (b) => {
    try { return multiaddr(b).toString() } catch { return Buffer.from(b).toString('hex') }
  }
  const describe = {
    Message: (m) => {
      if (m.dialRequest != null) {
        return { msg: 'dialRequest', addrs: m.dialRequest.addrs.map(addr), nonce: String(m.dialRequest.nonce) }
      }
      if (m.dialResponse != null) {
        const { status, addrIdx, dialStatus } = m.dialResponse
        return { msg: 'dialResponse', status, addrIdx, dialStatus }
      }
      if (m.dialDataRequest != null) {
        return { msg: 'dialDataRequest', addrIdx: m.dialDataRequest.addrIdx, numBytes: Number(m.dialDataRequest.numBytes) }
      }
      if (m.dialDataResponse != null) {
        return { msg: 'dialDataResponse', bytes: m.dialDataResponse.data.byteLength }
      }
      return { msg: 'empty' }
    },
    DialBack: (m) => ({ msg: 'dialBack', nonce: String(m.nonce) }),
    DialBackResponse: (m) => ({ msg: 'dialBackResponse', status: m.status })
  }
  for (const [name, fn] of Object.entries(describe)) {
    const ns = pb[name]
    if (typeof ns?.encode !== 'function' || typeof ns?.decode !== 'function') {
      throw new Error(`autonat-v2 tap: ${name} codec not found (version changed?)`)
    }
    const { encode, decode } = ns
    ns.encode = (obj, ...rest) => {
      emit({ event: 'autonat-v2', dir: 'out', ...fn(obj) })
      return encode(obj, ...rest)
    }
    ns.decode = (buf, ...rest) => {
      const m = decode(buf, ...rest)
      emit({ event: 'autonat-v2', dir: 'in', ...fn(m) })
      return m
    }
  }
}

// js's AutoNAT verdicts live in the address manager: an address is
// "verified" once a v2 server dialed it back (private addresses always are).
function selfAddrsJson (node, reason) {
  const addrs = node.components.addressManager.getAddressesWithMetadata().map((a) => ({
    addr: a.multiaddr.toString(),
    type: a.type,
    verified: a.verified
  }))
  return { event: 'self-addrs', reason, addrs }
}

function identifyJson (r) {
  return {
    event: 'identify',
    peerId: r.peerId.toString(),
    protocols: r.protocols ?? [],
    listenAddrs: (r.listenAddrs ?? []).map(String),
    observedAddr: r.observedAddr?.toString() ?? null,
    agentVersion: r.agentVersion ?? null,
    protocolVersion: r.protocolVersion ?? null,
    signedPeerRecord: r.signedPeerRecord != null
  }
}

function connJson (event, conn) {
  return {
    event,
    peerId: conn.remotePeer.toString(),
    remoteAddr: conn.remoteAddr.toString(),
    direction: conn.direction,
    encryption: conn.encryption ?? null,
    multiplexer: conn.multiplexer ?? null,
    limited: conn.limits != null
  }
}

// Resolves with the first identify result for peerId seen after this call
// (or already seen), rejects after timeoutMs.
function identifyWaiter (node, seen) {
  return (peerId, timeoutMs) => new Promise((resolve, reject) => {
    const key = peerId.toString()
    if (seen.has(key)) return resolve(seen.get(key))
    const timer = setTimeout(() => {
      node.removeEventListener('peer:identify', onId)
      reject(new Error(`no identify from ${key} within ${timeoutMs} ms`))
    }, timeoutMs)
    function onId (evt) {
      if (evt.detail.peerId.toString() !== key) return
      clearTimeout(timer)
      node.removeEventListener('peer:identify', onId)
      resolve(evt.detail)
    }
    node.addEventListener('peer:identify', onId)
  })
}

async function echoSend (node, peerId, protocol, message) {
  const stream = await node.dialProtocol(peerId, protocol, { runOnLimitedConnection: true })
  const payload = new TextEncoder().encode(message)
  if (!stream.send(payload)) await stream.onDrain()
  await stream.close() // half-close: the echo side sees EOF and closes too
  const parts = []
  for await (const chunk of stream) parts.push(bytesOf(chunk))
  const reply = Buffer.concat(parts).toString('utf8')
  emit({ event: 'echo-reply', protocol, peerId: peerId.toString(), message: reply, bytes: Buffer.concat(parts).length })
  if (reply !== message) throw new Error(`echo mismatch: sent ${JSON.stringify(message)}, got ${JSON.stringify(reply)}`)
}

async function dialActions (node, opts, waitIdentify) {
  const ma = multiaddr(opts.dial)
  const conn = await node.dial(ma)
  const limited = { runOnLimitedConnection: true }
  emit(connJson('connected', conn))
  const peerId = conn.remotePeer
  if (!opts['no-identify-wait']) {
    await waitIdentify(peerId, opts.identifyTimeoutMs)
  }
  if (opts.ping) {
    for (let i = 0; i < opts.pingCount; i++) {
      const rtt = await node.services.ping.ping(peerId, limited)
      emit({ event: 'ping', peerId: peerId.toString(), rttMs: rtt })
    }
  }
  if (opts['echo-send'] != null) {
    await echoSend(node, peerId, opts['echo-send'], opts.message)
  }
}

async function main () {
  let opts
  try {
    opts = parse()
  } catch (err) {
    process.stderr.write(USAGE + '\n')
    return finish(2, err)
  }
  if (opts.help) {
    process.stdout.write(USAGE + '\n')
    return process.exit(0)
  }
  if (opts.listen.length === 0 && opts.reserve.length === 0 && opts.dial == null && !opts['id-only']) {
    process.stderr.write(USAGE + '\n')
    return finish(2, new Error('nothing to do: give --listen and/or --dial'))
  }
  if ((opts.ping || opts['echo-send'] != null) && opts.dial == null) {
    return finish(2, new Error('--ping and --echo-send need --dial'))
  }

  let dialDone = opts.dial == null
  if (opts.exitAfterMs != null) {
    setTimeout(() => {
      if (dialDone) finish(0)
      else finish(1, new Error(`timeout: dial actions unfinished after ${opts.exitAfterMs} ms`))
    }, opts.exitAfterMs).unref()
  }
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => finish(0))

  const privateKey = await privateKeyFrom(opts.seed)
  if (opts['id-only']) {
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    emit({ event: 'id', peerId: peerIdFromPrivateKey(privateKey).toString() })
    return process.exit(0)
  }

  const node = await createNode(opts, privateKey)
  globalThis.__node = node
  // Keep the event loop alive while listening (libp2p's own handles may not).
  const keepAlive = setInterval(() => {}, 1 << 30)

  const seen = new Map()
  node.addEventListener('peer:identify', (evt) => {
    seen.set(evt.detail.peerId.toString(), evt.detail)
    emit(identifyJson(evt.detail))
  })
  node.addEventListener('connection:open', (evt) => {
    if (evt.detail.direction === 'inbound') emit(connJson('inbound', evt.detail))
  })
  node.addEventListener('connection:close', (evt) => {
    emit({ event: 'closed', peerId: evt.detail.remotePeer.toString(), remoteAddr: evt.detail.remoteAddr.toString() })
  })
  for (const proto of opts.echo) {
    await node.handle(proto, echoHandler(proto, true), { runOnLimitedConnection: true })
  }

  emit({
    event: 'listening',
    peerId: node.peerId.toString(),
    addrs: node.getMultiaddrs().map(String),
    // What we listen on, announced or not: js announces only verified
    // addresses, so with FLARE_JS_PUBLIC_CIDRS "addrs" can be empty.
    listenAddrs: node.components.transportManager.getAddrs()
      .map((a) => `${a}/p2p/${node.peerId}`),
    protocols: node.getProtocols()
  })

  if (opts['autonat-v2']) {
    emit(selfAddrsJson(node, 'start'))
    node.addEventListener('self:peer:update', () => emit(selfAddrsJson(node, 'update')))
  }

  if (opts.reserve.length > 0) await waitReserved(node, opts.reserve.length)

  if (opts.dial != null) {
    await dialActions(node, opts, identifyWaiter(node, seen))
    dialDone = true
    emit({ event: 'done' })
    if (!opts.stay) return finish(0)
  }
  void keepAlive
}

process.on('unhandledRejection', (err) => finish(1, err))
main().catch((err) => finish(1, err))
