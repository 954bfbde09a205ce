// Drives the browser test: bundles page.js with esbuild, starts Debian's
// Chromium headless through playwright-core, loads the bundle into a blank
// page and runs window.flareTest once per --addr, printing one JSON line
// per run ({"event":"browser", ...}). Exit 0 if every run passed.
//
//   node run.mjs --chromium /usr/bin/chromium [--spki HASH] --addr MADDR... [--echo PROTO] [--size N]
//                [--page page-webrtc.js [--sizes N,N...] [--bench-bytes N]]
//
// --page: the bundle entry (default page.js); page-webrtc.js takes a list of
// echo sizes and an optional timed echo (--bench-bytes).
// --spki: the base64 SHA-256 of the server certificate's public key, which
// Chromium then accepts for wss (--ignore-certificate-errors-spki-list).
import { parseArgs } from 'node:util'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import * as esbuild from 'esbuild'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const { values: o } = parseArgs({
  options: {
    chromium: { type: 'string', default: '/usr/bin/chromium' },
    spki: { type: 'string' },
    addr: { type: 'string', multiple: true, default: [] },
    echo: { type: 'string', default: '/echo/1.0.0' },
    size: { type: 'string', default: '1024' },
    page: { type: 'string', default: 'page.js' },
    sizes: { type: 'string' },
    'bench-bytes': { type: 'string' },
    timeout: { type: 'string', default: '30000' }
  }
})

const built = await esbuild.build({
  entryPoints: [join(here, o.page)],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2022',
  write: false,
  logLevel: 'error'
})
const bundle = built.outputFiles[0].text

const args = ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage']
// WebRTC candidates must be IP addresses (the peers cannot resolve mDNS names).
args.push('--disable-features=WebRtcHideLocalIpsWithMdns')
if (o.spki) args.push('--ignore-certificate-errors-spki-list=' + o.spki)
const browser = await chromium.launch({ executablePath: o.chromium, headless: true, args })
let failed = 0
try {
  for (const addr of o.addr) {
    const page = await browser.newPage()
    const logs = []
    page.on('console', (m) => logs.push(m.text()))
    page.on('pageerror', (e) => logs.push('pageerror: ' + e.message))
    await page.setContent('<!doctype html><title>flare</title>')
    await page.addScriptTag({ content: bundle })
    const res = await Promise.race([
      page.evaluate((opts) => window.flareTest(opts), {
        addr,
        echo: o.echo,
        size: Number(o.size),
        sizes: o.sizes?.split(',').map(Number),
        benchBytes: o['bench-bytes'] != null ? Number(o['bench-bytes']) : undefined
      }),
      new Promise((resolve) => setTimeout(() => resolve({ error: 'timeout', steps: [] }), Number(o.timeout)))
    ])
    const ok = res.error == null && res.echoOk === true
    if (!ok) failed++
    process.stdout.write(JSON.stringify({ event: 'browser', addr, ok, ...res, logs: ok ? [] : logs.slice(-20) }) + '\n')
    await page.close()
  }
} finally {
  await browser.close()
}
process.exit(failed ? 1 : 0)
