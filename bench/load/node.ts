/**
 * `pnpm bench:load` — loading full-size synthetic checkpoints the way a page would: from an
 * HTTP server on 127.0.0.1, shard by shard, onto the wasm backend, in Node and in headless
 * Chromium (chromium.ts: the page's renderer measured by the OS). For each size and
 * weight format: the official bf16 folder converted while loading, and the folder
 * `omniweb convert` wrote for that format (verified by sha256 per shard, matrices already in
 * their device format). Each Node load runs in a fresh process (loadOnce.ts) so its peak
 * resident set (VmHWM) is its own; each Chromium load in a fresh browser context, its renderer's
 * peak reset before it. The table shows load time, device bytes per module, and the peak above
 * what stays resident against the streaming budget (largest tensor's stored bytes + its device
 * bytes + 256 MiB); for Chromium also the GPU and network processes' peak rise and the page's
 * JS-visible maximum (measureUserAgentSpecificMemory, without the wasm heap). Prints a table
 * and writes bench/results/load-*.json.
 *
 * Flags: --sizes 0.5b,3b  --formats q4,q8,f16 (per size: 3B gets only the formats whose
 * Thinker fits the 4 GiB wasm heap, unless --formats names them)  --sources official,converted
 * --modules thinker,audio,vision (default: all three)  --targets node,chromium (per size: 3B
 * loads only in Node, where a load takes minutes, unless --targets names chromium).
 * The checkpoints are made once into .cache/ (3B: 12 GB bf16, ≈3 min; its q4 conversion ≈7 min).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WeightFormat } from '@omniweb/core';
import { convertCheckpoint } from '../../packages/cli/src/convert.js';
import { makeCheckpoint } from '../../packages/cli/src/makeCheckpoint.js';
import { formatTable, type Row } from '../lib/report.js';
import { bundleLoadPage, CORE_ASSETS_DIR, launchLoadBrowser, LOAD_PAGE_DIR, measureChromiumLoad, type ChromiumLoadReport } from './chromium.js';
import { processOfType, peakRise, type ProcessPeak } from './chromiumMemory.js';
import type { LoadReport } from './loadOnce.js';
import { checkModules } from './modules.js';
import { PAGE_CONTENT_TYPES, startModelServer } from './server.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cacheDir = join(repoRoot, '.cache');
const argv = process.argv.slice(2);
const list = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return (i >= 0 ? argv[i + 1] : fallback).split(',').filter(Boolean);
};
const log = (line: string) => console.error(line);

const TARGETS = ['node', 'chromium'] as const;
type Target = (typeof TARGETS)[number];

const SIZES = {
  '0.5b': { shape: '0.5b-thinker', dir: 'thinker-0.5b', formats: ['q4', 'q8', 'f16'], targets: ['node', 'chromium'] },
  // The 3B Thinker is 1.9 GB at q4, 3.5 GB at q8, 6.2 GB at f16: only q4 leaves the 4 GiB wasm heap room.
  '3b': { shape: '3b', dir: 'synthetic-3b', formats: ['q4'], targets: ['node'] },
} as const;
type Size = keyof typeof SIZES;

const sizes = list('sizes', '0.5b,3b') as Size[];
const formatsFlag = argv.includes('--formats') ? (list('formats', '') as WeightFormat[]) : null;
const sources = list('sources', 'official,converted');
const modules = checkModules(list('modules', 'thinker,audio,vision'));
const targetsFlag = argv.includes('--targets') ? (list('targets', '') as Target[]) : null;
if (targetsFlag && !targetsFlag.every((t) => (TARGETS as readonly string[]).includes(t))) throw new Error(`--targets: choose from ${TARGETS.join(', ')}`);
const MiB = 2 ** 20;

async function ensureOfficial(size: Size): Promise<string> {
  const dir = join(cacheDir, SIZES[size].dir);
  if (!existsSync(join(dir, 'config.json'))) {
    log(`writing the ${size} synthetic checkpoint into ${dir} …`);
    await makeCheckpoint({ shape: SIZES[size].shape, out: dir, seed: 0, dtype: 'bf16', shardBytes: 5e9, log });
  }
  return dir;
}

async function ensureConverted(size: Size, official: string, weights: WeightFormat): Promise<string> {
  const dir = join(cacheDir, `${SIZES[size].dir}-web-${weights}`);
  if (!existsSync(join(dir, 'omniweb.json'))) {
    log(`converting ${official} to ${weights} into ${dir} …`);
    const result = await convertCheckpoint({ source: official, out: dir, weights: weights as 'q4' | 'q8' | 'f16', shardBytes: 256 * MiB, log });
    log(`converted in ${result.seconds} s, peak RSS ${(result.peakRssBytes / MiB).toFixed(0)} MiB`);
  }
  return dir;
}

function loadOnce(model: string, weights: WeightFormat): Promise<LoadReport> {
  const tsx = join(repoRoot, 'node_modules/.bin/tsx');
  return new Promise((resolve, reject) => {
    execFile(tsx, [join(repoRoot, 'bench/load/loadOnce.ts'), '--model', model, '--weights', weights, '--modules', modules.join(',')], { cwd: repoRoot, maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      if (error) reject(new Error(`loading ${model} (${weights}) failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as LoadReport);
    });
  });
}

type RowOf = { size: Size; source: string; bytesFetched: number };
/** In the order measured, so each Node row sits next to its Chromium row. */
const reports: ({ target: 'node' } & LoadReport & RowOf | { target: 'chromium' } & ChromiumLoadReport & RowOf)[] = [];
const server = await startModelServer({ '/': LOAD_PAGE_DIR, '/assets/': CORE_ASSETS_DIR, '/models/': cacheDir }, PAGE_CONTENT_TYPES);
let browser: Awaited<ReturnType<typeof launchLoadBrowser>> | null = null;
try {
  for (const size of sizes) {
    if (!SIZES[size]) throw new Error(`--sizes: choose from ${Object.keys(SIZES).join(', ')}`);
    const official = await ensureOfficial(size);
    for (const weights of formatsFlag ?? SIZES[size].formats) {
      for (const source of sources) {
        const dir = source === 'official' ? official : await ensureConverted(size, official, weights);
        const url = `${server.url}models/${dir.slice(cacheDir.length + 1)}/`;
        for (const target of targetsFlag ?? SIZES[size].targets) {
          log(`loading ${size} ${source} at ${weights} from ${url} in ${target} …`);
          if (target === 'node') {
            server.resetCounts();
            const report = await loadOnce(url, weights);
            reports.push({ target, ...report, size, source, bytesFetched: server.bytesSent() });
            continue;
          }
          if (!browser) {
            await bundleLoadPage();
            browser = await launchLoadBrowser();
          }
          reports.push({ target, ...(await measureChromiumLoad(browser, server, url, weights, modules)), size, source });
        }
      }
    }
  }
} finally {
  await browser?.close();
  await server.close();
}

const mib = (bytes: number) => Math.round(bytes / MiB);
const moduleColumns = (m: readonly { module: string; deviceBytes: number }[]) => Object.fromEntries(m.map((x) => [`${x.module} MiB`, mib(x.deviceBytes)]));
const rise = (processes: readonly ProcessPeak[], type: string) => {
  const p = processOfType(processes, type);
  return p ? mib(peakRise(p)) : null;
};
const rows: Row[] = reports.map((r) => {
  const node = r.target === 'node';
  const peakBytes = node ? r.peakRssBytes : r.renderer.peakBytes;
  return {
    target: r.target, size: r.size, source: r.source, weights: r.weights,
    'fetched MiB': mib(r.bytesFetched), 'load s': Math.round(r.loadMs / 100) / 10, ...moduleColumns(r.modules),
    process: node ? 'node' : 'renderer', 'peak RSS MiB': mib(peakBytes), 'peak over resident MiB': mib(r.peakOverheadBytes),
    'budget MiB': mib(r.budgetBytes), within: r.peakOverheadBytes <= r.budgetBytes ? 'yes' : 'NO',
    'GPU peak rise MiB': node ? null : rise(r.processes, 'GPU'),
    'network peak rise MiB': node ? null : rise(r.processes, 'network.mojom.NetworkService'),
    'JS-visible max MiB (no wasm heap)': node ? null
      : r.jsMemory.maxBytes !== null ? mib(r.jsMemory.maxBytes) : r.jsMemory.timedOut ? 'timed out' : 'n/a',
  };
});
console.log(formatTable(rows));
const resultsDir = join(repoRoot, 'bench/results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `load-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), modules, reports }, null, 2)}\n`);
console.log(`wrote ${file}`);
