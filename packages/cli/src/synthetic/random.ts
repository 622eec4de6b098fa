/**
 * Seeded weights, streamed: each tensor gets its own random stream keyed by
 * (seed, tensor name), so its values do not depend on shard size, tensor
 * order or chunk size, and a tensor is produced a chunk at a time.
 */
import { encodeFloat, type FloatDtype } from '@omniweb/core';
import type { TensorPlan } from './layout.js';

/** Values generated per step: 4 MiB of f32 scratch, whatever the tensor's size. */
export const CHUNK_ELEMENTS = 1 << 20;

/** splitmix32: spreads a 32-bit key into well-mixed words for seeding. */
function splitmix32(state: number): [next: number, output: number] {
  const next = (state + 0x9e3779b9) | 0;
  let z = next;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [next, (z ^ (z >>> 16)) >>> 0];
}

/** FNV-1a of the UTF-16 code units: a stable 32-bit key for a name. */
function hashName(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/**
 * Standard-normal values for one (seed, key) stream: xoshiro128** for the
 * uniforms, Box–Muller for the normals. Consecutive calls continue the
 * stream, so filling [a, b) then [b, c) equals filling [a, c) at once.
 */
export function normalStream(seed: number, key: string): (out: Float32Array) => void {
  const words: number[] = [];
  let state = (seed ^ Math.imul(hashName(key), 0x27d4eb2f)) | 0;
  for (let i = 0; i < 4; i++) {
    let word: number;
    [state, word] = splitmix32(state);
    words.push(word);
  }
  let [a, b, c, d] = words;
  if ((a | b | c | d) === 0) a = 1; // the all-zero state would repeat forever
  const uniform32 = (): number => {
    const result = Math.imul(rotl(Math.imul(b, 5), 7), 9) >>> 0;
    const t = b << 9;
    c ^= a; d ^= b; b ^= c; a ^= d; c ^= t; d = rotl(d, 11);
    return result;
  };
  let spare: number | null = null;
  return (out) => {
    let i = 0;
    if (spare !== null && out.length > 0) { out[i++] = spare; spare = null; }
    while (i < out.length) {
      // u1 in (0, 1] so the logarithm stays finite.
      const u1 = (uniform32() + 1) / 4294967296;
      const u2 = uniform32() / 4294967296;
      const radius = Math.sqrt(-2 * Math.log(u1));
      out[i++] = radius * Math.cos(2 * Math.PI * u2);
      const second = radius * Math.sin(2 * Math.PI * u2);
      if (i < out.length) out[i++] = second;
      else spare = second;
    }
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A tensor's stored bytes, `CHUNK_ELEMENTS` values at a time. */
export function* tensorChunks(tensor: TensorPlan, dtype: FloatDtype, seed: number): Generator<Uint8Array> {
  const { init } = tensor;
  if (init.kind === 'values') {
    yield encodeFloat(dtype, init.values);
    return;
  }
  const count = tensor.shape.reduce((x, y) => x * y, 1);
  const fill = normalStream(seed, tensor.name);
  const scratch = new Float32Array(Math.min(count, CHUNK_ELEMENTS));
  for (let done = 0; done < count; done += scratch.length) {
    const chunk = scratch.subarray(0, Math.min(scratch.length, count - done));
    fill(chunk);
    for (let i = 0; i < chunk.length; i++) chunk[i] = init.mean + init.std * chunk[i];
    yield encodeFloat(dtype, chunk);
  }
}
