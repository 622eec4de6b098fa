// Test plumbing shared by the audio and vision encoder tests: golden files, the tiny
// checkpoint, the backends under test and a table of golden errors (core's relativeError).
import { afterAll, expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import {
  createWebGPUBackend, isOmniError, loadOmniConfig, openCheckpoint, readCase, relativeError,
  type Backend, type Checkpoint, type HostArray, type OmniConfig, type OmniErrorCode,
} from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
import { createWasmBackend } from '../../core/src/wasm/index.js';

export const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
export const TINY = `${GOLDEN}tiny-omni`;

/** Every backend the encoders must match the golden files on. WebGPU runs on SwiftShader in Node. */
export const BACKENDS: { name: string; create: () => Promise<Backend> }[] = [
  { name: 'oracle', create: async () => createOracleBackend() },
  { name: 'wasm', create: () => createWasmBackend() },
  { name: 'webgpu', create: () => createWebGPUBackend() },
];

export async function openTiny(): Promise<{ checkpoint: Checkpoint; config: OmniConfig }> {
  const checkpoint = await openCheckpoint(TINY);
  return { checkpoint, config: await loadOmniConfig(checkpoint, ['thinker']) };
}

export type GoldenCase = (name: string) => HostArray;

export async function goldenCase(file: 'audio' | 'image' | 'video'): Promise<GoldenCase> {
  const arrays = await readCase(`${GOLDEN}${file}.safetensors`);
  return (name) => {
    const a = arrays.get(name);
    if (!a) throw new Error(`${file}.safetensors has no ${name}`);
    return a;
  };
}

/** [rows, cols] → [cols, rows]. */
export function transposed(data: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  return out;
}

/** Largest relative error seen per `backend format tensor`, printed once at the end of a file. */
const table = new Map<string, number>();
afterAll(() => {
  if (table.size === 0) return;
  const lines = [...table].map(([key, err]) => `${key.padEnd(44)} ${err.toExponential(2)}`);
  console.info(`golden relative errors (‖out − ref‖ / ‖ref‖):\n${lines.join('\n')}`);
});

/** Records the error of `got` against the golden `want` and checks it against `bound`. */
export function expectGolden(key: string, got: ArrayLike<number>, want: ArrayLike<number>, bound: number): void {
  const err = relativeError(got, want);
  table.set(key, Math.max(table.get(key) ?? 0, err));
  expect(err, `${key}: relative error ${err}`).toBeLessThanOrEqual(bound);
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
