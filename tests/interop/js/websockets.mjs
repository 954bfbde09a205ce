// WebSocket transport for the js reference peer (peer.mjs --websockets):
// @libp2p/websockets, listening on /ws and, with FLARE_JS_TLS_CERT and
// FLARE_JS_TLS_KEY (PEM files), on /tls/ws too. Dialing wss trusts Node's
// store plus NODE_EXTRA_CA_CERTS (the tests point it at their test CA).
import { readFileSync } from 'node:fs'
import { webSockets } from '@libp2p/websockets'

export function webSocketsTransport () {
  const cert = process.env.FLARE_JS_TLS_CERT
  const key = process.env.FLARE_JS_TLS_KEY
  if (cert == null || key == null) return webSockets()
  return webSockets({ https: { cert: readFileSync(cert), key: readFileSync(key) } })
}
