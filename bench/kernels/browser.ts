/**
 * `pnpm bench:kernels:browser` — the kernel benchmark in headless Chromium (wasm with
 * threads, WebGPU on SwiftShader). Prints a table and writes bench/results/kernels-chromium.json.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { launchChromium } from '../../e2e/chromium.js';
import { startStaticServer } from '../../e2e/server.js';
import { formatTable } from '../lib/report.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = `${here}../../`;
const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');

execFileSync(process.execPath, [require.resolve('rollup/dist/bin/rollup'), '-c', `${root}bench/rollup.config.mjs`, '--silent'], { cwd: root, stdio: 'inherit' });
const server = await startStaticServer({
  '/': `${here}page`,
  '/build/': `${root}bench/.build/page`,
  '/probe/': `${root}bench/.build`,
  '/assets/': `${root}packages/core/assets`,
  '/tfjs-wasm/': require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/]+$/, ''),
});
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error(`page error: ${String(e)}`));
  await page.goto(server.url);
  await page.waitForFunction(() => 'omniBench' in globalThis, null, { timeout: 60_000 });
  const result = await page.evaluate((q) => omniBench.run(q), quick);
  console.log(`roofline in Chromium: read ${JSON.stringify(result.roofline.readGBps)} GB/s, SIMD peak ${JSON.stringify(result.roofline.peakGflops)} GFLOP/s; wasm threads ${result.threads}`);
  console.log(formatTable(result.rows));
  mkdirSync(`${root}bench/results`, { recursive: true });
  const out = `${root}bench/results/kernels-chromium.json`;
  writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), ...result }, null, 2));
  console.log(`wrote ${out}`);
} finally {
  await browser.close();
  await server.close();
}
