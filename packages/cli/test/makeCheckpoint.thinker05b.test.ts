/**
 * A full-size run: the 0.5b-thinker shape (≈ 1 GB of bf16 in one shard),
 * written by the real command in a child process so its peak memory can be
 * measured, then opened with the project's loader.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadOmniConfig } from '../../core/src/config.js';
import { openCheckpoint, type Checkpoint } from '../../core/src/weights/index.js';
import type { MakeCheckpointResult } from '../src/makeCheckpoint.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const tsx = join(root, 'node_modules/.bin/tsx');
const main = join(root, 'packages/cli/src/main.ts');

describe('omniweb make-checkpoint --shape 0.5b-thinker', () => {
  let scratch: string;
  let out: string;
  let result: MakeCheckpointResult;
  /** The same command writing the tiny shape (43 MB): the process's own footprint. */
  let baseline: MakeCheckpointResult;
  let checkpoint: Checkpoint;

  const make = (shape: string, dir: string) => new Promise<MakeCheckpointResult>((resolve, reject) => {
    execFile(tsx, [main, 'make-checkpoint', '--shape', shape, '--out', dir, '--seed', '1'], { cwd: root }, (error, text, stderr) => {
      if (error) reject(new Error(`make-checkpoint failed: ${stderr}`));
      else resolve(JSON.parse(text) as MakeCheckpointResult);
    });
  });

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'omniweb-make-05b-'));
    out = join(scratch, 'thinker');
    result = await make('0.5b-thinker', out);
    baseline = await make('tiny', join(scratch, 'tiny'));
    checkpoint = await openCheckpoint(out);
  }, 600_000);

  afterAll(async () => {
    await checkpoint?.close();
    rmSync(scratch, { recursive: true });
  });

  it('streams a ~1 GB shard with peak memory far below it', () => {
    const shard = statSync(join(out, 'model.safetensors')).size;
    expect(shard).toBeGreaterThan(0.95e9);
    expect(result.files.find((f) => f.name === 'model.safetensors')?.bytes).toBe(shard);
    // Streamed: the ~1 GB shard adds little to what the process (Node, tsx, the CLI's modules, the
    // 11 MB tokenizer JSON) takes to write a 43 MB one; buffering it would add about its size.
    expect(baseline.peakRssBytes).toBeGreaterThan(0);
    const added = result.peakRssBytes - baseline.peakRssBytes;
    console.log(`make-checkpoint peak RSS: 0.5b-thinker ${(result.peakRssBytes / 2 ** 20).toFixed(0)} MiB, tiny ${(baseline.peakRssBytes / 2 ** 20).toFixed(0)} MiB (shard ${(shard / 2 ** 20).toFixed(0)} MiB)`);
    expect(added).toBeLessThan(shard / 8);
  });

  it('is a thinker-only Omni config of the Qwen2.5-0.5B text shape that the loader accepts', async () => {
    const config = await loadOmniConfig(checkpoint);
    expect(config.thinker.text).toMatchObject({
      layers: 24, hidden: 896, heads: 14, kvHeads: 2, headDim: 64, intermediate: 4864, vocab: 151936, tieWordEmbeddings: true, mropeSection: [8, 12, 12],
    });
    expect(config.thinker.audio.outputDim).toBe(896);
    expect(config.thinker.vision.outHidden).toBe(896);
    expect(config.talker).toBeNull();
    expect(config.token2wav).toBeNull();
    expect(config.enableAudioOutput).toBe(false);
    // Thinker only: no speaker file; tokenizer files as for every shape.
    expect(existsSync(join(out, 'spk_dict.pt'))).toBe(false);
    expect(existsSync(join(out, 'tokenizer.json'))).toBe(true);
  });

  it('holds the Qwen2.5-0.5B text tensors (tied: no lm_head) and ~494 M parameters', () => {
    const text = checkpoint.names().filter((n) => n.startsWith('thinker.model.'));
    expect(text).toHaveLength(24 * 12 + 2);
    expect(checkpoint.has('thinker.lm_head.weight')).toBe(false);
    expect(checkpoint.info('thinker.model.embed_tokens.weight').shape).toEqual([151936, 896]);
    expect(checkpoint.info('thinker.model.layers.23.self_attn.k_proj.weight').shape).toEqual([128, 896]);
    expect(checkpoint.info('thinker.model.layers.23.mlp.down_proj.weight').shape).toEqual([896, 4864]);
    // Qwen2.5-0.5B has 494.0 M parameters; the tiny audio and vision towers add 0.3 M.
    expect(result.parameters.thinker / 1e6).toBeCloseTo(494.3, 1);
  });

  it('stores finite weights at the planned scale in the last layer', async () => {
    const x = await checkpoint.readF32('thinker.model.layers.23.mlp.down_proj.weight');
    let sum = 0;
    let squares = 0;
    for (const v of x) { sum += v; squares += v * v; }
    expect(Number.isFinite(squares)).toBe(true);
    expect(sum / x.length).toBeCloseTo(0, 3);
    expect(Math.sqrt(squares / x.length) * Math.sqrt(4864)).toBeCloseTo(1, 2);
  });
});
