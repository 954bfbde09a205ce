// js-libp2p QUIC peer for flare interop tests (@chainsafe/libp2p-quic): QUIC
// only (TLS + QUIC streams; no TCP, no Noise, no yamux), identify, ping and
// an echo handler. One JSON object per line on stdout, like peer.mjs:
// "listening", "connected", "inbound", "identify", "ping", "echo",
// "echo-reply", "error", "exit".
//
//   quic.mjs --listen /ip4/127.0.0.1/udp/0/quic-v1 [--echo PROTO] [--seed HEX]
//   quic.mjs --dial MADDR [--ping] [--echo-send PROTO --message TEXT]
//            [--exit-after-ms N]

import { quic } from '@chainsafe/libp2p-quic'
import { main } from './common.mjs'

main({ userAgent: 'flare-interop-js-quic/0.0.0', transports: [quic()] })
