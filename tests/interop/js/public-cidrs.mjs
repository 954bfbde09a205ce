// Lab-only: make js-libp2p treat some documentation ranges as public.
//
// js-libp2p's isPrivate() counts every TEST-NET range as private, so its
// AutoNAT servers refuse to dial back addresses in the NAT lab's "internet"
// (203.0.113.0/24). Loaded with
//   FLARE_JS_PUBLIC_CIDRS=203.0.113.0/24 node --import ./public-cidrs.mjs peer.mjs ...
// it removes exactly those ranges from @libp2p/utils' private list, and
// nothing else in js-libp2p changes. Without the variable it does nothing.
import { register } from 'node:module'

const cidrs = (process.env.FLARE_JS_PUBLIC_CIDRS ?? '').split(',').map(s => s.trim()).filter(Boolean)
if (cidrs.length > 0) {
  register('./public-cidrs-hooks.mjs', import.meta.url, { data: { cidrs } })
}
