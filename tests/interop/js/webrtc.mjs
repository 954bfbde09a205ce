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

import { webRTCDirect } from '@libp2p/webrtc'
import { main } from './common.mjs'

main({ userAgent: 'flare-interop-js-webrtc/0.0.0', transports: [webRTCDirect({ rtcConfiguration: { iceServers: [] } })] })
