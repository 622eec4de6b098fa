/**
 * `pnpm bench:load` — loading full-size synthetic checkpoints the way a page would: from an
 * HTTP server on 127.0.0.1, shard by shard, onto the wasm backend in Node. For each size and
 * weight format: the official bf16 folder converted while loading, and the folder
 * `omniweb convert` wrote for that format (verified by sha256 per shard, matrices already in
 * their device format). Each load runs in a fresh process (loadOnce.ts) so its peak resident
 * set (VmHWM) is its own; the table shows load time, device bytes per module, and the peak
 * above what stays resident against the streaming budget (largest tensor's stored bytes + its
 * device bytes + 256 MiB). Prints a table and writes bench/results/load-*.json.
 *
 * Flags: --sizes 0.5b,3b  --formats q4,q8,f16 (per size: 3B gets only the formats whose
 * Thinker fits the 4 GiB wasm heap, unless --formats names them)  --sources official,converted
 * --modules thinker,audio,vision (default: all three).
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
import type { LoadReport } from './loadOnce.js';
import { startModelServer } from './server.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const cacheDir = join(repoRoot, '.cache');
const argv = process.argv.slice(2);
const list = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return (i >= 0 ? argv[i + 1] : fallback).split(',').filter(Boolean);
};
const log = (line: string) => console.error(line);

const SIZES = {
  '0.5b': { shape: '0.5b-thinker', dir: 'thinker-0.5b', formats: ['q4', 'q8', 'f16'] },
  // The 3B Thinker is 1.9 GB at q4, 3.5 GB at q8, 6.2 GB at f16: only q4 leaves the 4 GiB wasm heap room.
  '3b': { shape: '3b', dir: 'synthetic-3b', formats: ['q4'] },
} as const;
type Size = keyof typeof SIZES;

const sizes = list('sizes', '0.5b,3b') as Size[];
const formatsFlag = argv.includes('--formats') ? (list('formats', '') as WeightFormat[]) : null;
const sources = list('sources', 'official,converted');
const modules = list('modules', 'thinker,audio,vision').join(',');
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
    execFile(tsx, [join(repoRoot, 'bench/load/loadOnce.ts'), '--model', model, '--weights', weights, '--modules', modules], { cwd: repoRoot, maxBuffer: 16 * MiB }, (error, stdout, stderr) => {
      if (error) reject(new Error(`loading ${model} (${weights}) failed: ${stderr}`));
      else resolve(JSON.parse(stdout) as LoadReport);
    });
  });
}

const server = await startModelServer({ '/': cacheDir });
const reports: (LoadReport & { size: Size; source: string; bytesFetched: number })[] = [];
try {
  for (const size of sizes) {
    if (!SIZES[size]) throw new Error(`--sizes: choose from ${Object.keys(SIZES).join(', ')}`);
    const official = await ensureOfficial(size);
    for (const weights of formatsFlag ?? SIZES[size].formats) {
      for (const source of sources) {
        const dir = source === 'official' ? official : await ensureConverted(size, official, weights);
        const url = `${server.url}${dir.slice(cacheDir.length + 1)}/`;
        log(`loading ${size} ${source} at ${weights} from ${url} …`);
        server.resetCounts();
        const report = await loadOnce(url, weights);
        reports.push({ ...report, size, source, bytesFetched: server.bytesSent() });
      }
    }
  }
} finally {
  await server.close();
}

const rows: Row[] = reports.map((r) => ({
  size: r.size,
  source: r.source,
  weights: r.weights,
  'fetched MiB': Math.round(r.bytesFetched / MiB),
  'load s': Math.round(r.loadMs / 100) / 10,
  ...Object.fromEntries(r.modules.map((m) => [`${m.module} MiB`, Math.round(m.deviceBytes / MiB)])),
  'peak RSS MiB': Math.round(r.peakRssBytes / MiB),
  'peak over resident MiB': Math.round(r.peakOverheadBytes / MiB),
  'budget MiB': Math.round(r.budgetBytes / MiB),
  within: r.peakOverheadBytes <= r.budgetBytes ? 'yes' : 'NO',
}));
console.log(formatTable(rows));
const resultsDir = join(repoRoot, 'bench/results');
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `load-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), modules, reports }, null, 2)}\n`);
console.log(`wrote ${file}`);
