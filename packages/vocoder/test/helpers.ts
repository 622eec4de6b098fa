// Shared test plumbing: the tiny checkpoint, golden arrays and layouts.
import { expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { isOmniError, loadOmniConfig, openCheckpoint, readCase, type Backend, type HostArray, type OmniErrorCode, type WeightFormat } from '@omniweb/core';
import { Token2Wav } from '../src/index.js';

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
export const TINY = `${GOLDEN}tiny-omni`;

export async function loadTiny(backend: Backend, format: WeightFormat = 'f32'): Promise<Token2Wav> {
  const checkpoint = await openCheckpoint(TINY);
  try {
    const config = await loadOmniConfig(checkpoint, ['token2wav']);
    return await Token2Wav.load(backend, checkpoint, config.token2wav!, { format });
  } finally {
    await checkpoint.close();
  }
}

export type GoldenCase = (name: string) => HostArray;

export async function goldenCase(file: 'token2wav' | 'talker_p1'): Promise<GoldenCase> {
  const arrays = await readCase(`${GOLDEN}${file}.safetensors`);
  return (name) => {
    const a = arrays.get(name);
    if (!a) throw new Error(`${file} lacks ${name}`);
    return a;
  };
}

/** [rows, cols] → [cols, rows] (torch's channel-major [C, T] against our time-major [T, C]). */
export function transposed(values: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c];
  return out;
}

/** Rows 2t + b of an interleaved [2T, C] → batch-major [2, T, C] (the reference's CFG batch). */
export function branchMajor(values: ArrayLike<number>, frames: number, cols: number): Float32Array {
  const out = new Float32Array(2 * frames * cols);
  for (let t = 0; t < frames; t++) {
    for (let b = 0; b < 2; b++) {
      for (let c = 0; c < cols; c++) out[(b * frames + t) * cols + c] = values[(2 * t + b) * cols + c];
    }
  }
  return out;
}

export async function expectOmniError(run: () => unknown, code: OmniErrorCode, message?: RegExp): Promise<void> {
  let caught: unknown;
  try {
    await run();
  } catch (e) {
    caught = e;
  }
  expect(isOmniError(caught, code), `expected OmniError ${code}, got ${String(caught)}`).toBe(true);
  if (message) expect((caught as Error).message).toMatch(message);
}
