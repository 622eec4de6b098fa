/**
 * The headless-Chromium half of `pnpm bench:thinker`: bundles page.ts (esbuild), serves it
 * cross-origin isolated with e2e/server.ts (our kernels, the checkpoint, the GGUF files,
 * wllama's wasm from node_modules, the floor probes), and runs in one page, in turn:
 * the floors, our Thinker on threaded wasm (and WebGPU on SwiftShader, a few tokens for the
 * record), and llama.cpp (wllama) on the same weights as GGUF f32 and q8_0.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { WeightFormat } from '@omniweb/core';
import { launchChromium } from '../../e2e/chromium.js';
import { startStaticServer } from '../../e2e/server.js';
import type { GgufWeights } from './gguf.js';
import type { GreedyCheck, PairOptions, PeerRun, ThinkerPageApi, WasmChoice } from './page.js';
import { decodeLabel, floorsLine, type PeerFigures, type TargetResult } from './rows.js';
import { ensureGguf, GGUF_DIR, ggufName, repoRoot } from './source.js';
import { DECODE_WARMUP_TOKENS, type ThinkerBenchOptions, type ThinkerResult } from './suite.js';
import { bestOf } from '../lib/computePeak.js';

const oursFigures = (r: ThinkerResult): PeerFigures => {
  const f: PeerFigures = {};
  if (r.prefill) f[`prefill ${r.prefill.tokens}`] = r.prefill.tokPerS;
  for (const d of r.decode) f[decodeLabel(d.context)] = d.tokPerS;
  return f;
};

const here = fileURLToPath(new URL('.', import.meta.url));
const pageDir = `${here}../.build/thinker-page`;

type PageCall = <K extends keyof ThinkerPageApi>(name: K, ...args: Parameters<ThinkerPageApi[K]>) => ReturnType<ThinkerPageApi[K]>;

export interface BrowserRun {
  checkpointDir: string;
  quick: boolean;
  peer: boolean;
  /** Also run our Thinker on WebGPU (SwiftShader here: minutes per token). */
  webgpu: boolean;
  formats: WeightFormat[];
  log: (line: string) => void;
}

export interface BrowserResults {
  results: TargetResult[];
  /** llama.cpp tok/s per "<gguf weights> <threads>T", per phase label (paired with our Chromium rows). */
  peers: Record<string, PeerFigures>;
  peerNote: string;
  peerRuns: PeerRun[];
  notes: string[];
  checks: (GreedyCheck & { pair: string })[];
}

/** @omniweb/<pkg> → its TypeScript sources, as tsconfig's paths map them for tsx and tsc. */
const workspaceSources = {
  name: 'omniweb-workspace-sources',
  setup(b: import('esbuild').PluginBuild) {
    b.onResolve({ filter: /^@omniweb\/[\w-]+$/ }, (args) => {
      const pkg = args.path.slice('@omniweb/'.length);
      return { path: pkg === 'kernels' ? `${repoRoot}kernels/index.ts` : `${repoRoot}packages/${pkg}/src/index.ts` };
    });
  },
};

export async function bundlePage(): Promise<void> {
  mkdirSync(`${pageDir}/build`, { recursive: true });
  await build({
    entryPoints: [`${here}page.ts`],
    outfile: `${pageDir}/build/page.js`,
    bundle: true, format: 'esm', platform: 'browser', target: 'es2022', sourcemap: true, logLevel: 'warning',
    plugins: [workspaceSources],
    // Node-only branches of our loader (fs, paths) are behind runtime checks.
    external: ['node:*'],
  });
  writeFileSync(`${pageDir}/index.html`, '<!doctype html>\n<meta charset="utf-8">\n<title>Thinker benchmark</title>\n<script type="module" src="./build/page.js"></script>\n');
}

export async function runBrowserBenchmarks(run: BrowserRun): Promise<BrowserResults> {
  const { log, quick } = run;
  const notes: string[] = [];
  await bundlePage();
  const wllamaDir = dirname(createRequire(import.meta.url).resolve('@wllama/wllama'));
  const server = await startStaticServer({
    '/': pageDir,
    '/build/': `${pageDir}/build`,
    '/assets/': `${repoRoot}packages/core/assets`,
    '/ckpt/': run.checkpointDir,
    '/gguf/': GGUF_DIR,
    '/wllama/': wllamaDir,
    '/probe/': `${here}../.build`,
  });
  const browser = await launchChromium();
  const results: TargetResult[] = [];
  const peers: Record<string, PeerFigures> = {};
  const peerRuns: PeerRun[] = [];
  const checks: (GreedyCheck & { pair: string })[] = [];
  let peerNote = run.peer ? '' : 'not run (--no-peer)';
  /** A fresh page per phase: what a phase loaded (blobs, wasm heaps) goes when its page closes. */
  const inPage = async <T>(body: (call: PageCall) => Promise<T>): Promise<T> => {
    const page = await browser.newPage();
    try {
      page.on('console', (m) => { if (m.type() === 'error' || /prefill|decode|greedy/.test(m.text())) log(`  [page] ${m.text().split('\n')[0]}`); });
      page.on('pageerror', (e) => log(`  [page error] ${String(e)}`));
      await page.goto(server.url);
      await page.waitForFunction(() => 'thinkerBench' in globalThis, null, { timeout: 60_000 });
      page.setDefaultTimeout(0);
      const call: PageCall = (name, ...args) =>
        page.evaluate(([n, a]) => (thinkerBench[n as keyof ThinkerPageApi] as (...x: unknown[]) => unknown)(...(a as unknown[])), [name, args] as const) as never;
      if (!(await call('isolated'))) throw new Error('the benchmark page is not cross-origin isolated: no wasm threads');
      return await body(call);
    } finally {
      await page.close();
    }
  };
  try {
    const { roofline, peaks } = await inPage(async (call) => {
      const floors = await call('floors', [1, 2]);
      log(floorsLine('Chromium, start', floors));
      return floors;
    });
    const pairOpts: PairOptions = { prefillTokens: quick ? 128 : 512, decodeTokens: quick ? 6 : 10, warmupTokens: DECODE_WARMUP_TOKENS, rounds: 1 };
    // gguf null: ours alone (the peer's figures in the brief are f32 and q8_0). q4 also runs
    // on the baseline SIMD128 build, against the relaxed one the page picks by default, and so
    // does q8 (whose kernels are the same in both builds: the check that the relaxed build's
    // compiler and link cost nothing elsewhere); and q4 with 15-bit GEMV activations ('int16',
    // where the default 'auto' gives q4 8-bit ones).
    // `long`: ours alone also decodes at 1k and 4k (the q8 2T pair adds those to its paired row).
    const pairs: { format: WeightFormat; gguf: GgufWeights | null; threads: number; rounds: number; wasm?: WasmChoice; long?: boolean; kvInt8?: boolean }[] = quick
      ? [{ format: 'q8', gguf: 'q8_0', threads: 2, rounds: 1 }]
      : [
        { format: 'q8', gguf: 'q8_0', threads: 2, rounds: 2 },
        { format: 'q8', gguf: null, threads: 2, rounds: 1, long: true },
        { format: 'f32', gguf: 'f32', threads: 2, rounds: 1 },
        { format: 'q8', gguf: 'q8_0', threads: 1, rounds: 1 },
        { format: 'q8', gguf: null, threads: 2, rounds: 1, wasm: { simd: 'baseline' } },
        { format: 'q4', gguf: null, threads: 2, rounds: 1, long: true },
        { format: 'q4', gguf: null, threads: 2, rounds: 1, wasm: { simd: 'baseline' } },
        { format: 'q4', gguf: null, threads: 2, rounds: 1, wasm: { quantizedActivations: 'int16' } },
        { format: 'q4', gguf: null, threads: 1, rounds: 1, long: true },
        // An int8 KV cache: decode only (it changes nothing else); @0 warms the fresh page up (node.ts).
        { format: 'q8', gguf: null, threads: 2, rounds: 1, kvInt8: true },
        { format: 'q4', gguf: null, threads: 2, rounds: 1, kvInt8: true },
        { format: 'q4', gguf: null, threads: 1, rounds: 1, kvInt8: true },
        { format: 'q4', gguf: null, threads: 1, rounds: 1, wasm: { simd: 'baseline' } },
        { format: 'q4', gguf: null, threads: 1, rounds: 1, wasm: { quantizedActivations: 'int16' } },
        { format: 'f16', gguf: null, threads: 2, rounds: 1 },
      ];
    for (const [i, pair] of pairs.filter((p) => run.formats.includes(p.format)).entries()) {
      // The floors again before every pair, the best kept (as in Node: the bandwidth swings).
      if (i > 0) {
        const again = await inPage((call) => call('floors', [1, 2]));
        Object.assign(roofline, bestOf(roofline, again.roofline));
        Object.assign(peaks, bestOf(peaks, again.peaks));
      }
      const label = `${pair.format} ↔ llama.cpp ${pair.gguf}, ${pair.threads}T`;
      try {
        const gguf = pair.gguf;
        if (!run.peer || gguf === null) {
          // A long run of the format paired with llama.cpp measures only what that pair does not.
          const pairedToo = gguf === null && !pair.wasm && pairs.some((p) => p.format === pair.format && p.threads === pair.threads && p.gguf !== null && !p.wasm);
          const contexts = pair.kvInt8 ? [0, 1024, 4096] : [...(pairedToo ? [] : [0, pairOpts.prefillTokens]), ...(pair.long ? [1024, 4096] : [])];
          const r = await inPage((call) => call('ours', 'wasm', pair.format, pair.threads, {
            prefillTokens: pairOpts.prefillTokens, contexts, decodeTokens: pairOpts.decodeTokens, warmupTokens: pairOpts.warmupTokens,
            skipPrefill: pairedToo || pair.kvInt8, kvCache: pair.kvInt8 ? 'int8' : 'f32',
          }, pair.wasm));
          const variant = [r.info.wasmSimd === 'baseline' ? 'simd128' : '', pair.wasm?.quantizedActivations ?? '', pair.kvInt8 ? 'kv int8' : ''].filter(Boolean).join(' ');
          results.push({
            target: `wasm Chromium${variant ? ` ${variant}` : ''}`, weights: pair.format, threads: r.info.threads,
            result: r.result, work: r.work, roofline, peaks, prefillPassRows: 256, wasmSimd: r.info.wasmSimd, wasmDotBytes: r.info.wasmDotBytes,
          });
          continue;
        }
        await ensureGguf(gguf, log);
        const r = await inPage((call) => call('pair', pair.format, ggufName(gguf), pair.threads, { ...pairOpts, rounds: pair.rounds }));
        peerRuns.push(r.peer);
        if (r.check) checks.push({ pair: label, ...r.check });
        const figures: PeerFigures = {};
        if (r.peer.prefill) figures[`prefill ${r.peer.prefill.tokens}`] = r.peer.prefill.tokPerS;
        for (const d of r.peer.decode) figures[decodeLabel(d.context <= 1 ? 0 : d.context)] = d.tokPerS;
        peers[`${pair.gguf} ${r.peer.threads}T`] = figures;
        results.push({
          target: 'wasm Chromium', weights: pair.format, threads: r.ours.info.threads, result: r.ours.result, work: r.ours.work, roofline, peaks,
          prefillPassRows: 256, peer: { label: `llama.cpp ${pair.gguf}`, figures }, wasmSimd: r.ours.info.wasmSimd, wasmDotBytes: r.ours.info.wasmDotBytes,
        });
        const fmt = (f: PeerFigures) => Object.entries(f).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
        log(`${label} (${pair.rounds} round${pair.rounds > 1 ? 's' : ''}, best kept): ours ${fmt(oursFigures(r.ours.result))}; llama.cpp (wllama ${r.peer.multithread ? 'multi' : 'single'}-thread) ${fmt(figures)} tok/s`);
      } catch (e) {
        const msg = `${label} did not run: ${(e as Error).message.split('\n')[0]}`;
        peerNote += `${msg}; `;
        notes.push(msg);
        log(msg);
      }
    }

    // The floors once more at the end.
    const end = await inPage((call) => call('floors', [1, 2]));
    log(floorsLine('Chromium, end', end));
    Object.assign(roofline, bestOf(roofline, end.roofline));
    Object.assign(peaks, bestOf(peaks, end.peaks));
    log(floorsLine('Chromium, used', { roofline, peaks }));
    if (run.peer && !peerNote) {
      peerNote = 'measured in this run, paired: @wllama/wllama 3.13 (llama.cpp, wasm64 + SIMD, CPU only) and our Thinker loaded in the same '
        + 'cross-origin-isolated Chromium page on the same weights (GGUF conversion) and measured in alternation; text prompt " the" × n';
    }

    if (run.webgpu) {
      // WebGPU on SwiftShader (a CPU rasterizer) is a correctness device: a few tokens for the record.
      try {
        const gpuOpts: ThinkerBenchOptions = { prefillTokens: 16, contexts: [0], decodeTokens: 2, warmupTokens: 1 };
        const r = await inPage((call) => call('ours', 'webgpu', 'q8', 1, gpuOpts));
        log(`webgpu Chromium q8 (${r.info.name}): prefill 16 ${r.result.prefill?.tokPerS.toFixed(3)} tok/s, decode ${r.result.decode[0].tokPerS.toFixed(4)} tok/s`);
        results.push({ target: `webgpu Chromium (${r.info.name.split(' ').slice(0, 2).join(' ')})`, weights: 'q8', threads: 2, result: r.result, work: r.work, roofline, peaks, prefillPassRows: 256, recordOnly: true });
      } catch (e) {
        notes.push(`WebGPU in Chromium did not run: ${(e as Error).message.split('\n')[0]}`);
        log(notes[notes.length - 1]);
      }
    } else {
      notes.push('WebGPU in Chromium (SwiftShader) not run: pass --webgpu (≈5 min for 16 prompt tokens and 3 decoded ones).');
    }
  } finally {
    await browser.close();
    await server.close();
  }
  for (const c of checks) {
    notes.push(`same-model check (${c.pair}): greedy continuation of " the and of to in is that for it with as was on be at by" (16 tokens), ours ${JSON.stringify(c.ours)} vs llama.cpp ${JSON.stringify(c.peer)}: `
      + (c.identical ? 'identical' : `first ${c.commonPrefixChars} characters agree`));
  }
  return { results, peers, peerNote, peerRuns, notes, checks };
}
