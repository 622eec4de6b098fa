/**
 * The benchmark's checkpoints (Node side): the 0.5B-shaped synthetic Thinker, or the whole
 * 3B-shaped synthetic model (the folder bench:load uses too), made once into .cache/; and the
 * 0.5B's GGUF conversions for the llama.cpp peer, made once beside it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadOmniConfig, openCheckpoint } from '@omniweb/core';
import { makeCheckpoint } from '../../packages/cli/src/makeCheckpoint.js';
import { thinkerToGguf, type GgufWeights } from './gguf.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const CHECKPOINT_DIR = `${repoRoot}.cache/thinker-0.5b`;
export const GGUF_DIR = `${repoRoot}.cache/thinker-0.5b-gguf`;

export type BenchShape = '0.5b' | '3b';

const SHAPES: Record<BenchShape, { shape: '0.5b-thinker' | '3b'; dir: string; lastFile: string }> = {
  '0.5b': { shape: '0.5b-thinker', dir: CHECKPOINT_DIR, lastFile: 'model.safetensors' },
  '3b': { shape: '3b', dir: `${repoRoot}.cache/synthetic-3b`, lastFile: 'model.safetensors.index.json' },
};

/** Writes the checkpoint (0.5B: ≈1 GB of bf16, ≈30 s; 3B: ≈12 GB, ≈4 min) unless it is there already. */
export async function ensureCheckpoint(size: BenchShape, log: (line: string) => void): Promise<string> {
  const { shape, dir, lastFile } = SHAPES[size];
  if (!existsSync(`${dir}/${lastFile}`)) {
    log(`writing the ${shape} synthetic checkpoint into ${dir} …`);
    await makeCheckpoint({ shape, out: dir, seed: 0, dtype: 'bf16', shardBytes: 5e9, log });
  }
  return dir;
}

export const ggufName = (weights: GgufWeights) => `thinker-0.5b-${weights}.gguf`;

/** Converts the checkpoint to GGUF (f32 ≈2 GB, q8_0 ≈0.5 GB) unless that file is there already. */
export async function ensureGguf(weights: GgufWeights, log: (line: string) => void): Promise<string> {
  const path = `${GGUF_DIR}/${ggufName(weights)}`;
  if (existsSync(path)) return path;
  mkdirSync(GGUF_DIR, { recursive: true });
  const t0 = performance.now();
  const checkpoint = await openCheckpoint(CHECKPOINT_DIR);
  try {
    const config = await loadOmniConfig(checkpoint, ['thinker']);
    const bytes = await thinkerToGguf(checkpoint, CHECKPOINT_DIR, config.thinker, weights, path);
    log(`wrote ${path} (${(bytes / 1e9).toFixed(2)} GB, ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  } finally {
    await checkpoint.close();
  }
  return path;
}
