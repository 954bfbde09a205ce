// Module hooks for public-cidrs.mjs: rewrite @libp2p/utils' private-ip.js
// so that the given CIDRs are no longer in its PRIVATE_IP_RANGES. Fails
// loudly if the source no longer has the expected shape (pinned version).
let cidrs = []

export function initialize (data) {
  cidrs = data?.cidrs ?? []
}

const TARGET = /@libp2p\/utils\/dist\/src\/private-ip\.js$/
const ANCHOR = 'const NETMASK_RANGES = PRIVATE_IP_RANGES.map('

export async function load (url, context, nextLoad) {
  const result = await nextLoad(url, context)
  if (!TARGET.test(url)) {
    return result
  }
  const src = String(result.source)
  for (const c of cidrs) {
    if (!src.includes(`'${c}'`)) {
      throw new Error(`public-cidrs: ${c} is not in js-libp2p's private list`)
    }
  }
  if (!src.includes(ANCHOR)) {
    throw new Error('public-cidrs: @libp2p/utils private-ip.js changed shape')
  }
  const drop = JSON.stringify(cidrs)
  const patched = src.replace(ANCHOR,
    `const NETMASK_RANGES = PRIVATE_IP_RANGES.filter(r => !${drop}.includes(r)).map(`)
  return { ...result, source: patched }
}
