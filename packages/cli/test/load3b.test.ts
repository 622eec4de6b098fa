/**
 * The synthetic 3B checkpoint (official layout, 12 GB of bf16 in three 5 GB shards) loaded
 * in Node the way a tab must: the 3B Thinker streamed tensor by tensor onto the wasm backend
 * at q4, with the peak resident set measured in a fresh process against the budget (the
 * largest tensor's bf16 bytes + its q4 bytes + 256 MiB above what stays resident), then a
 * prompt and 4 decoded tokens with finite logits. Then the whole model through `omniweb run`
 * with a worker per stage: the fit is checked per worker heap (5 GiB at q4 in one heap would
 * not fit), the text-only turn loads no speech stage, a spoken one all four. And the 7B config over these shards fails
 * before any weight is read. Generating the checkpoint takes ≈4 min here, each load ≈5 min.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isOmniError, loadOmniConfig, openCheckpoint } from '@omniweb/core';
import { decodeWav } from '@omniweb/media';
import { Omni } from '@omniweb/sdk';
import type { LoadReport } from '../../../bench/load/loadOnce.js';
import { hfJson, SHAPES, shapeConfig } from '../src/synthetic/shapes.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tsx = join(root, 'node_modules/.bin/tsx');

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(tsx, args, { cwd: root, maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${args.join(' ')} failed: ${stderr}`));
      else resolve(stdout);
    });
  });
}

interface RunJson {
  pipeline: string;
  loadMs: number;
  ids: number[];
  speech: { samples: number; sampleRate: number } | null;
  stats: { promptTokens: number; tokens: number; codes: number; firstTextMs: number; totalMs: number };
  peakRssBytes: number;
}

describe('the synthetic 3B checkpoint in Node (wasm, q4)', () => {
  let scratch: string;
  let dir: string;

  /** `omniweb run` on the 3B at q4 with its default worker pipeline: "Hello", 4 tokens, plus `extra` flags; its JSON, checked for what every turn has. */
  async function runTurn3b(extra: string[]): Promise<RunJson> {
    const started = performance.now();
    const args = ['run', '--model', dir, '--weights', 'q4', '--text', 'Hello', '--max-new-tokens', '4', ...extra, '--json'];
    const report = JSON.parse(await run([join(root, 'packages/cli/src/main.ts'), ...args])) as RunJson;
    const MiB = 2 ** 20;
    console.log(
      `omniweb run <3B> ${args.slice(3).join(' ')}: load ${(report.loadMs / 1000).toFixed(0)} s, ${report.stats.tokens} tokens and ${report.stats.codes} codes `
      + `in ${(report.stats.totalMs / 1000).toFixed(1)} s, peak RSS ${(report.peakRssBytes / MiB).toFixed(0)} MiB, ${((performance.now() - started) / 1000).toFixed(0)} s in all`,
    );
    expect(report.pipeline).toBe('workers');
    expect(report.stats.tokens).toBe(4);
    expect(report.ids).toHaveLength(4);
    expect(report.ids.every((id) => Number.isInteger(id) && id >= 0 && id < 151936)).toBe(true);
    expect(report.stats.promptTokens).toBeGreaterThan(0);
    for (const ms of [report.loadMs, report.stats.firstTextMs, report.stats.totalMs]) expect(Number.isFinite(ms) && ms > 0).toBe(true);
    expect(Number.isFinite(report.peakRssBytes)).toBe(true);
    return report;
  }

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-3b-'));
    dir = join(scratch, '3b');
    const started = performance.now();
    await run([join(root, 'packages/cli/src/main.ts'), 'make-checkpoint', '--shape', '3b', '--out', dir]);
    console.log(`3B synthetic checkpoint written in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }, 1_200_000);

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('loads the Thinker within the streaming memory budget and decodes 4 tokens to finite logits', async () => {
    const report = JSON.parse(await run([join(root, 'bench/load/loadOnce.ts'), '--model', dir, '--weights', 'q4', '--modules', 'thinker', '--decode', '4'])) as LoadReport;
    const MiB = 2 ** 20;
    console.log(
      `3B Thinker q4: load ${(report.loadMs / 1000).toFixed(0)} s, device ${(report.deviceBytes / MiB).toFixed(0)} MiB, `
      + `peak RSS ${(report.peakRssBytes / MiB).toFixed(0)} MiB, peak over resident ${(report.peakOverheadBytes / MiB).toFixed(0)} MiB `
      + `(budget ${(report.budgetBytes / MiB).toFixed(0)} MiB), 4 tokens in ${(report.decode!.ms / 1000).toFixed(1)} s`,
    );
    const [thinker] = report.modules;
    // 3.09 B parameters at 5 bits (q4 + an f32 scale per 32) with f32 norms: about 1.8 GiB.
    expect(thinker.deviceBytes).toBeGreaterThan(1.6 * 2 ** 30);
    expect(thinker.deviceBytes).toBeLessThan(2 * 2 ** 30);
    // The largest tensor is the tied 151936 × 2048 embedding: 594 MiB of bf16.
    expect(thinker.largestTensor).toMatchObject({ name: 'thinker.model.embed_tokens.weight', storedBytes: 151936 * 2048 * 2 });
    expect(report.peakOverheadBytes).toBeLessThanOrEqual(report.budgetBytes);
    expect(report.decode!.tokens).toHaveLength(4);
    expect(report.decode!.tokens.every((id) => Number.isInteger(id) && id >= 0 && id < 151936)).toBe(true);
    expect(report.decode!.finiteLogits).toBe(true);
  }, 1_800_000);

  it('fits at q4 with a worker per stage, not in one heap; `omniweb run` (workers, text only) loads it and answers 4 tokens', async () => {
    const workers = await Omni.check({ model: dir, device: 'wasm', weights: 'q4', pipeline: 'workers' });
    expect(workers.problems).toEqual([]);
    expect(workers.heaps.map((h) => h.heap)).toEqual(['perception', 'thinker', 'talker', 'speech']);
    const inThread = await Omni.check({ model: dir, device: 'wasm', weights: 'q4' });
    expect(inThread.fits).toBe(false);
    expect(inThread.problems.join('\n')).toMatch(/the in-thread heap .* needs 5.01 GiB, one wasm heap holds at most 4.00 GiB/);

    const report = await runTurn3b([]);
    expect(report.speech).toBeNull();
    expect(report.stats.codes).toBe(0);
    // The process's peak covers the worker threads: it holds at least the two stage heaps' weights (thinker + encoders at q4).
    const loaded = workers.heaps.filter((h) => h.heap === 'perception' || h.heap === 'thinker').reduce((s, h) => s + h.bytes, 0);
    expect(report.peakRssBytes).toBeGreaterThan(loaded);
  }, 1_800_000);

  it('`omniweb run --out` (workers): the Talker and token2wav workers fit too and speak 8 codes at most', async () => {
    const out = join(scratch, 'reply.wav');
    const report = await runTurn3b(['--max-codes', '8', '--out', out]);
    expect(report.stats.codes).toBeGreaterThan(0);
    expect(report.stats.codes).toBeLessThanOrEqual(8);
    const wav = decodeWav(readFileSync(out));
    expect(wav.samples.length).toBe(480 * report.stats.codes);
    expect(report.speech).toMatchObject({ samples: wav.samples.length, sampleRate: 24000 });
    expect(wav.samples.every(Number.isFinite)).toBe(true);
    const weights = (await Omni.check({ model: dir, device: 'wasm', weights: 'q4', pipeline: 'workers' })).totalBytes;
    expect(report.peakRssBytes).toBeGreaterThan(weights);
  }, 1_800_000);

  it('the 7B config over the 3B shards: SHAPE_MISMATCH before any weight is read', async () => {
    // The shards by symlink: 12 GB are not copied.
    const wrong = mkdtempSync(join(scratch, '7b-config-'));
    for (const file of readdirSync(dir)) if (file !== 'config.json') symlinkSync(join(dir, file), join(wrong, file));
    writeFileSync(join(wrong, 'config.json'), hfJson(shapeConfig(SHAPES['7b'], 'bfloat16')));
    const checkpoint = await openCheckpoint(wrong, { onProgress: () => { throw new Error('a weight was read'); } });
    try {
      const error = await loadOmniConfig(checkpoint).then(() => null, (e: unknown) => e);
      expect(isOmniError(error, 'SHAPE_MISMATCH'), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/is \[151936, 2048\], but config.json implies \[152064, 3584\]/);
    } finally {
      await checkpoint.close();
    }
  });
});
