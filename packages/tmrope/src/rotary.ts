/**
 * Rotary descriptions (`RopeSpec`) the kernels consume, and `ropeCosSin`, the
 * cos/sin tables a spec gives for a set of positions (small, plain JS: it
 * validates specs against the reference's rotary tables).
 */
import { OmniError, type RopeSpec } from '@omniweb/core';

function badInput(message: string): OmniError {
  return new OmniError('BAD_INPUT', message);
}

function checkRotary(where: string, rotaryDim: number, theta: number): void {
  if (!Number.isSafeInteger(rotaryDim) || rotaryDim < 2 || rotaryDim % 2 !== 0) {
    throw badInput(`${where}: rotary width ${String(rotaryDim)} must be an even integer ≥ 2`);
  }
  if (typeof theta !== 'number' || !Number.isFinite(theta) || theta <= 1) throw badInput(`${where}: theta is ${String(theta)}; expected the rotary base (> 1), e.g. rope_theta`);
}

/**
 * inv_freq_j = 1 / θ^(2j / dim), j < dim/2, rounded as the reference computes
 * it: exponent, power and reciprocal each in float32.
 */
function inverseFrequencies(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  const base = Math.fround(theta);
  for (let j = 0; j < out.length; j++) out[j] = Math.fround(1 / Math.fround(base ** Math.fround((2 * j) / dim)));
  return out;
}

/**
 * The Thinker's and Talker's M-RoPE (fact sheet §5.1): headDim/2 frequencies
 * paired half-split (j, j + headDim/2); frequency j reads the T stream for
 * j < section[0], H below section[0] + section[1], W after. The reference
 * states this as the section list doubled over the head; per frequency it is
 * the same choice for both halves.
 */
export function mropeSpec(headDim: number, theta: number, mropeSection: readonly number[]): RopeSpec {
  checkRotary('mropeSpec', headDim, theta);
  if (!Array.isArray(mropeSection) || mropeSection.length !== 3 || !mropeSection.every((s) => Number.isSafeInteger(s) && s >= 0)) {
    throw badInput(`mropeSpec: mropeSection is ${JSON.stringify(mropeSection)}; expected three frequency counts [T, H, W] (rope_scaling.mrope_section)`);
  }
  const [t, h, w] = mropeSection;
  if (t + h + w !== headDim / 2) throw badInput(`mropeSpec: mropeSection [${t}, ${h}, ${w}] sums to ${t + h + w}; it must cover headDim/2 = ${headDim / 2} frequencies`);
  const invFreq = inverseFrequencies(headDim, theta);
  const stream = new Int32Array(invFreq.length);
  for (let j = 0; j < stream.length; j++) stream[j] = j < t ? 0 : j < t + h ? 1 : 2;
  return { invFreq, stream, style: 'half' };
}

/**
 * The ViT's 2-D rotary (fact sheet §4.3 step 2): frequencies of a headDim/2
 * wide rotary, once for the patch row (stream 0) and once for the column
 * (stream 1), concatenated and paired half-split over the whole head.
 */
export function visionRopeSpec(headDim: number, theta: number): RopeSpec {
  checkRotary('visionRopeSpec', headDim, theta);
  if (headDim % 4 !== 0) throw badInput(`visionRopeSpec: headDim ${headDim} must be a multiple of 4: each half of the head splits between rows and columns`);
  const base = inverseFrequencies(headDim / 2, theta);
  const invFreq = new Float32Array(2 * base.length);
  invFreq.set(base, 0);
  invFreq.set(base, base.length);
  const stream = new Int32Array(invFreq.length);
  stream.fill(1, base.length);
  return { invFreq, stream, style: 'half' };
}

/**
 * cos and sin of every rotated dimension, [L, 2 · invFreq.length] row-major,
 * for positions stream-major [streams · L]: angle = position · invFreq in
 * float32, as the reference's float32 matmul gives it. 'half' lays frequency j
 * at j and j + F; 'interleaved' at 2j and 2j + 1.
 */
export function ropeCosSin(spec: RopeSpec, positions: Int32Array, length: number): { cos: Float32Array; sin: Float32Array } {
  if (spec === null || typeof spec !== 'object' || !(spec.invFreq instanceof Float32Array) || !(spec.stream instanceof Int32Array)) {
    throw badInput('ropeCosSin: spec must be a RopeSpec { invFreq: Float32Array, stream: Int32Array, style } (mropeSpec / visionRopeSpec)');
  }
  if (spec.style !== 'half' && spec.style !== 'interleaved') throw badInput(`ropeCosSin: spec.style is ${String(spec.style)}; expected 'half' or 'interleaved'`);
  const F = spec.invFreq.length;
  if (F === 0 || spec.stream.length !== F) throw badInput(`ropeCosSin: spec has ${F} frequencies and ${spec.stream.length} stream entries; expected the same count, ≥ 1`);
  if (!(positions instanceof Int32Array)) throw badInput('ropeCosSin: positions must be an Int32Array, stream-major [streams · length]');
  if (!Number.isSafeInteger(length) || length < 1 || positions.length % length !== 0) {
    throw badInput(`ropeCosSin: ${positions.length} positions do not split into streams of length ${String(length)}`);
  }
  const streams = positions.length / length;
  for (let j = 0; j < F; j++) {
    const s = spec.stream[j];
    if (!(s >= 0 && s < streams)) throw badInput(`ropeCosSin: frequency ${j} reads stream ${s}, but positions hold ${streams} streams`);
  }
  const width = 2 * F;
  const cos = new Float32Array(length * width);
  const sin = new Float32Array(length * width);
  for (let t = 0; t < length; t++) {
    for (let j = 0; j < F; j++) {
      const angle = Math.fround(positions[spec.stream[j] * length + t] * spec.invFreq[j]);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const [a, b] = spec.style === 'half' ? [j, j + F] : [2 * j, 2 * j + 1];
      cos[t * width + a] = cos[t * width + b] = c;
      sin[t * width + a] = sin[t * width + b] = s;
    }
  }
  return { cos, sin };
}
