/**
 * `pnpm --filter @omniweb/bench speech:browser` — the DiT rows of `bench:speech` on headless
 * Chromium's WebGPU (SwiftShader here, like Node's Dawn): one evaluation of the first N of the
 * 22 blocks on a steady-state 144-frame window, scaled to a chunk per ODE solver
 * (bench/speech/webgpu.ts). The same evaluation on Node's Dawn runs beside it in this run
 * (a shared machine's speed moves between runs), unless --no-node.
 *
 * The page reads the 3B-shaped synthetic checkpoint of bench:speech by HTTP range requests.
 * Flags: --shape 3b|7b (3b) --layers N (1) --reps N (1, after a warm-up) --no-node
 * Prints a table and writes bench/results/speech-chromium.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import * as core from '@omniweb/core';
import { DIT_SOLVERS } from '@omniweb/vocoder';
import { launchChromium } from '../../e2e/chromium.js';
import { startStaticServer } from '../../e2e/server.js';
import { profileBackend, type OpStat } from '../lib/opProfile.js';
import { formatTable, type Row } from '../lib/report.js';
import { cacheDir, ensureTowerCheckpoint } from '../lib/towerCheckpoint.js';
import { parseFlags, swiftShaderEnv, type PassTiming } from '../lib/towerBench.js';
import { ditEvaluations } from './ditPass.js';
import type { PageRun, SpeechPageApi } from './page.js';
import { ditRows, WEBGPU_TARGET } from './webgpu.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const root = `${here}../../`;
const pageDir = `${here}../.build/speech-page`;
const flags = parseFlags(process.argv.slice(2));
const shape = (flags.get('shape') ?? '3b') as '3b' | '7b';
if (shape !== '3b' && shape !== '7b') throw new Error('--shape is 3b or 7b');
const layers = Number(flags.get('layers') ?? 1);
const reps = Number(flags.get('reps') ?? 1);
const log = (line: string) => console.error(line);
const started = performance.now();
const CHROMIUM_TARGET = 'webgpu Chromium (SwiftShader)';

// The checkpoint bench:speech writes (token2wav with the talker parts), reused when there.
const ckpt = await ensureTowerCheckpoint(shape, ['token2wav', 'talker', 'thinker-stub'], `${cacheDir()}bench-${shape}-speech`, log);
const config = core.parseOmniConfigText(readFileSync(join(ckpt.dir, 'config.json'), 'utf8'));
const ditConfig = config.token2wav!.dit;
const ran = Math.min(layers, ditConfig.layers);

mkdirSync(`${pageDir}/build`, { recursive: true });
// esbuild resolves @omniweb/* to the packages' sources through tsconfig.json's paths.
await build({
  entryPoints: [`${here}page.ts`], outfile: `${pageDir}/build/page.js`, tsconfig: `${root}tsconfig.json`,
  bundle: true, format: 'esm', platform: 'browser', target: 'es2022', sourcemap: true, logLevel: 'warning',
  // Node-only branches of our loader (fs, paths) are behind runtime checks.
  external: ['node:*'],
});
writeFileSync(`${pageDir}/index.html`, '<!doctype html>\n<meta charset="utf-8">\n<title>Speech benchmark</title>\n<script type="module" src="./build/page.js"></script>\n');

const fromPage = (r: PageRun): PassTiming => ({
  ms: r.ms, layersMs: r.layersMs, profile: new Map(r.profile.map(([phase, ops]) => [phase, new Map<string, OpStat>(ops)])),
});

const server = await startStaticServer({ '/': pageDir, '/build/': `${pageDir}/build`, '/assets/': `${root}packages/core/assets`, '/ckpt/': ckpt.dir });
const results = [];
let adapter = '';
try {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => log(`  [page error] ${String(e)}`));
    await page.goto(server.url);
    await page.waitForFunction(() => 'speechBench' in globalThis, null, { timeout: 60_000 });
    page.setDefaultTimeout(0);
    log(`${CHROMIUM_TARGET}:`);
    const out = await page.evaluate(([l, r]) => speechBench.dit(l, r), [ran, reps] as Parameters<SpeechPageApi['dit']>);
    for (const line of out.log) log(line);
    adapter = out.adapter;
    results.push(...ditRows(CHROMIUM_TARGET, out.runs.map(fromPage), ditConfig, ran, DIT_SOLVERS));
  } finally {
    await browser.close();
  }
} finally {
  await server.close();
}
if (!flags.has('no-node')) {
  swiftShaderEnv();
  const checkpoint = await core.openCheckpoint(ckpt.dir);
  const [voice] = core.readSpeakers(readFileSync(join(ckpt.dir, core.SPEAKERS_FILE))).values();
  const prof = profileBackend(await core.createWebGPUBackend());
  try {
    log(`${WEBGPU_TARGET}:`);
    results.push(...ditRows(WEBGPU_TARGET, await ditEvaluations(prof, checkpoint, ditConfig, voice, ran, reps, log), ditConfig, ran, DIT_SOLVERS));
  } finally {
    prof.backend.destroy();
    await checkpoint.close();
  }
}

const rows: Row[] = results.map((r) => ({
  target: r.target, what: r.what, weights: r.weights, ran: r.ran, ms: r.ms,
  RTF: r.audioSeconds === null ? null : r.ms / 1000 / r.audioSeconds, GFLOP: r.flops / 1e9, 'GFLOP/s': r.flops / r.ms / 1e6,
}));
console.log(`\nDiT chunk on WebGPU, Qwen2.5-Omni-${shape.toUpperCase()} token2wav shape, synthetic weights; Chromium adapter ${adapter}`);
console.log(formatTable(rows));
mkdirSync(`${root}bench/results`, { recursive: true });
const outPath = `${root}bench/results/speech-chromium.json`;
writeFileSync(outPath, JSON.stringify({
  date: new Date().toISOString(), shape, layers: ran, reps, adapter, loadAverage: loadavg(), seconds: (performance.now() - started) / 1000, rows,
  details: results.map((r) => ({ ...r, ops: Object.fromEntries(r.ops) })),
}, null, 2));
console.log(`wrote ${outPath}`);
process.exit(0);
