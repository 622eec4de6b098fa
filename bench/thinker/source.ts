/**
 * The benchmark's checkpoint (Node side): the 0.5B-shaped synthetic Thinker, made once into
 * .cache/, and its GGUF conversions for the llama.cpp peer, made once beside it.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadOmniConfig, openCheckpoint } from '@omniweb/core';
import { makeCheckpoint } from '../../packages/cli/src/makeCheckpoint.js';
import { thinkerToGguf, type GgufWeights } from './gguf.js';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const CHECKPOINT_DIR = `${repoRoot}.cache/thinker-0.5b`;
export const GGUF_DIR = `${repoRoot}.cache/thinker-0.5b-gguf`;

/** Writes the checkpoint (≈1 GB of bf16, ≈30 s) unless it is there already. */
export async function ensureCheckpoint(log: (line: string) => void): Promise<string> {
  if (!existsSync(`${CHECKPOINT_DIR}/model.safetensors`)) {
    log(`writing the 0.5b-thinker synthetic checkpoint into ${CHECKPOINT_DIR} …`);
    await makeCheckpoint({ shape: '0.5b-thinker', out: CHECKPOINT_DIR, seed: 0, dtype: 'bf16', shardBytes: 5e9, log });
  }
  return CHECKPOINT_DIR;
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
