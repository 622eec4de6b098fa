/**
 * `pnpm bench:e2e` — what running the pipeline in workers costs and gains, on wasm, in Node
 * (worker_threads) and in headless Chromium (Web Workers).
 *
 * - Hops: round trips of a comlink call to a worker and back, each way carrying a payload of
 *   the pipeline's typical sizes as transferables (moved, not copied), at the 7B Thinker width
 *   (3584): a 2-s audio block's encoder rows (50 rows), one reply token's hidden + embedding
 *   rows (the Talker's input), one streaming PCM chunk (72 mel frames × 240 = 17 280 samples
 *   at 24 kHz), and an empty call. A hop is half a round trip.
 * - Turns: the embedded tiny checkpoint (f32, greedy Thinker and Talker, speech on) in-thread
 *   and in workers; one turn of 2 s of audio + text per fresh session: end of input → first
 *   text token and first text → first audio (the session's TurnStats), and load time. On wasm,
 *   and on WebGPU — here that is SwiftShader (Vulkan on the CPU, through Dawn in Node and in
 *   Chromium), so those rows say what the pipeline costs around the kernels, not what a GPU gives.
 *
 * Flags: --hops N (300 round trips per payload) --turns N (5 per pipeline on wasm)
 * --gpu-turns N (2 per pipeline on WebGPU) --no-gpu --no-browser
 * Prints a table and writes bench/results/e2e-node.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { connectWorker } from '@omniweb/orchestrator';
import { Omni, type PipelineKind } from '@omniweb/sdk';
import { launchChromium } from '../../e2e/chromium.js';
import { startStaticServer } from '../../e2e/server.js';
import { ensureEmbeddedModel } from '../../packages/cli/src/run.js';
import { formatTable, type Row } from '../lib/report.js';
import { parseFlags, swiftShaderEnv } from '../lib/towerBench.js';
import { measureHops, measureTurns, WIDTH, type Echo, type HopResult, type TurnTimes } from './measure.js';
import type { E2ePageApi } from './page.js';

const flags = parseFlags(process.argv.slice(2));
const hopReps = Number(flags.get('hops') ?? 300);
const turnReps = Number(flags.get('turns') ?? 5);
const gpuTurnReps = Number(flags.get('gpu-turns') ?? 2);
const devices: Device[] = flags.has('no-gpu') ? ['wasm'] : ['wasm', 'webgpu'];
const PIPELINES: readonly PipelineKind[] = ['in-thread', 'workers'];
const here = fileURLToPath(new URL('.', import.meta.url));
const root = `${here}../../`;
const log = (line: string) => console.error(line);

type Device = 'wasm' | 'webgpu';
type Turns = TurnTimes & { pipeline: PipelineKind; loadMs: number; deviceName: string };
interface TargetResult { target: string; device: Device; hops: HopResult[]; turns: Turns[] }

const repsOn = (device: Device) => (device === 'wasm' ? turnReps : gpuTurnReps);

async function nodeHops(): Promise<HopResult[]> {
  let done = false;
  const worker = await connectWorker<Echo>(new URL('./echoWorker.ts', import.meta.url), 'echo', (why) => {
    if (!done) throw new Error(`the echo worker stopped: ${why}`);
  });
  try {
    return await measureHops(worker.remote as unknown as Echo, hopReps);
  } finally {
    done = true;
    worker.terminate();
  }
}

async function nodeTurns(model: string, device: Device, pipeline: PipelineKind): Promise<Turns> {
  const started = performance.now();
  const omni = await Omni.load({ model, device, pipeline });
  const loadMs = performance.now() - started;
  try {
    if (omni.device.kind !== device) throw new Error(`asked for ${device}, got ${omni.device.name}`);
    log(`node ${device} ${pipeline}: ${omni.device.name}`);
    return { pipeline, loadMs, deviceName: omni.device.name, ...(await measureTurns(omni, repsOn(device))) };
  } finally {
    await omni.close();
  }
}

async function browserRun(model: string): Promise<TargetResult[]> {
  const pageDir = `${here}../.build/e2e-page`;
  mkdirSync(`${pageDir}/build`, { recursive: true });
  // esbuild resolves @omniweb/* to the packages' sources through tsconfig.json's paths; the
  // stage worker is the orchestrator's worker entry, bundled as its own script.
  await build({
    entryPoints: { page: `${here}page.ts`, echo: `${here}echoWorker.ts`, worker: `${root}packages/orchestrator/src/worker.ts` },
    outdir: `${pageDir}/build`, tsconfig: `${root}tsconfig.json`,
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', sourcemap: true, logLevel: 'error',
    // Node-only branches (fs, worker_threads; media's Node image decoders) sit behind runtime checks.
    external: ['node:*', 'pngjs', 'jpeg-js'],
  });
  writeFileSync(`${pageDir}/index.html`, '<!doctype html>\n<meta charset="utf-8">\n<title>e2e benchmark</title>\n<script type="module" src="./build/page.js"></script>\n');
  const server = await startStaticServer({ '/': pageDir, '/build/': `${pageDir}/build`, '/assets/': `${root}packages/core/assets`, '/ckpt/': model });
  try {
    // WebGPU in Chromium here is SwiftShader (e2e/chromium.ts's flags give the adapter).
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      page.on('pageerror', (e) => log(`  [page error] ${String(e)}`));
      page.on('console', (m) => { if (m.type() === 'error' && !m.text().includes('404')) log(`  [page] ${m.text()}`); });
      await page.goto(server.url);
      await page.waitForFunction(() => 'e2eBench' in globalThis, null, { timeout: 60_000 });
      page.setDefaultTimeout(0);
      // Functions given to evaluate run in the page: each reaches the page's API itself.
      const hops = await page.evaluate(([r]) => (globalThis as unknown as { e2eBench: E2ePageApi }).e2eBench.hops(r), [hopReps] as const);
      const results: TargetResult[] = [];
      for (const device of devices) {
        const turns: Turns[] = [];
        for (const pipeline of PIPELINES) {
          const t = await page.evaluate(([d, p, r]) => (globalThis as unknown as { e2eBench: E2ePageApi }).e2eBench.turns(d, p, r), [device, pipeline, repsOn(device)] as const);
          log(`chromium ${device} ${pipeline}: ${t.deviceName}`);
          turns.push({ pipeline, ...t });
        }
        results.push({ target: 'chromium', device, hops: device === 'wasm' ? hops : [], turns });
      }
      return results;
    } finally {
      await browser.close();
    }
  } finally {
    await server.close();
  }
}

swiftShaderEnv();
const model = await ensureEmbeddedModel(log);
const targets: TargetResult[] = [];
for (const device of devices) {
  const turns: Turns[] = [];
  for (const pipeline of PIPELINES) turns.push(await nodeTurns(model, device, pipeline));
  targets.push({ target: 'node', device, hops: device === 'wasm' ? await nodeHops() : [], turns });
}
if (!flags.has('no-browser')) targets.push(...(await browserRun(model)));

const targetName = ({ target, device }: TargetResult) => (device === 'wasm' ? `${target} wasm` : `${target} webgpu (SwiftShader)`);

const TURN_MEASURES = {
  loadMs: 'load (tiny)', firstTextMs: 'end of input → first text', firstAudioAfterTextMs: 'first text → first audio',
  firstAudioAfterTextEulerMs: 'first text → first audio, euler DiT', totalMs: 'turn total',
} as const;
const rows: Row[] = targets.flatMap((result) => [
  ...result.hops.map((h) => ({
    target: targetName(result), measure: `hop: ${h.payload}`, 'in-thread ms': null, 'workers ms': h.hopMs, 'p95 ms': h.p95RoundTripMs / 2,
    note: `${(h.bytes / 1024).toFixed(0)} KiB each way, transferred`,
  })),
  ...(Object.keys(TURN_MEASURES) as (keyof typeof TURN_MEASURES)[]).map((key) => ({
    target: targetName(result), measure: TURN_MEASURES[key],
    'in-thread ms': result.turns.find((t) => t.pipeline === 'in-thread')![key], 'workers ms': result.turns.find((t) => t.pipeline === 'workers')![key], 'p95 ms': null,
    note: key === 'loadMs' ? 'one load' : `median of ${repsOn(result.device)} turns (2 s audio + text, 8 tokens, ≤ 60 codes)`,
  })),
]);
console.log(formatTable(rows));
const worst = Math.max(...targets.flatMap((t) => t.hops.map((h) => h.hopMs)));
console.log(`\nworst median hop ${worst.toFixed(3)} ms (goal ≤ 5 ms)`);
mkdirSync(`${here}../results`, { recursive: true });
writeFileSync(`${here}../results/e2e-node.json`, JSON.stringify({ date: new Date().toISOString(), node: process.version, hopReps, width: WIDTH, targets }, null, 2));
