/**
 * attention: every mask kind, GQA/MQA, decode over a long cache that is only partly
 * filled (the rows past kvLength hold NaN, so a kernel that reads them fails), and
 * chunked prefill with a causal offset.
 */
import type { AttentionMask, Backend, Tensor } from '@omniweb/core';
import { compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/**
 * The output is a convex combination of v rows, so errors are judged against max|v|.
 * Logits of a few units: f32 dot products over D ≤ 128 and exp (3 + 2|x| ulp) keep the
 * weights to ~1e-6 relative.
 */
const BOUND = 1e-5;
/**
 * Logits up to ±100: exp is good to ~200 ulp there and each logit carries the f32
 * rounding of a dot product of size ~100, so weights are good to ~1e-5 and outputs to
 * a few times that. Without subtracting the running maximum the sum overflows (NaN).
 */
const LARGE_LOGIT_BOUND = 1e-4;

interface AttentionShape {
  T: number; Hq: number; Hkv: number; D: number;
  /** Rows of the k/v buffers; rows from kvLength on are NaN. */
  capacity: number;
  kvLength?: number;
  mask: AttentionMask;
  scale?: number;
  /** Spread of q and k values. */
  qkScale?: number;
  allocate?: boolean;
}

function attentionCase(label: string, spec: AttentionShape, bound = BOUND): KernelCase {
  const name = `attention/${label}`;
  return defineCase(name, 'attention', bound, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const { T, Hq, Hkv, D, capacity } = spec;
    const kvLength = spec.kvLength ?? capacity;
    const q = uniform(random, T * Hq * D, spec.qkScale ?? 2);
    const k = uniform(random, capacity * Hkv * D, spec.qkScale ?? 2);
    const v = uniform(random, capacity * Hkv * D);
    k.fill(NaN, kvLength * Hkv * D);
    v.fill(NaN, kvLength * Hkv * D);
    const opts = { kvLength: spec.kvLength, scale: spec.scale, mask: spec.mask };
    const run = (be: Backend, out?: Tensor) =>
      be.attention(be.tensor(q, [T, Hq, D]), be.tensor(k, [capacity, Hkv, D]), be.tensor(v, [capacity, Hkv, D]), opts, out);
    const actual = await backend.read(spec.allocate ? run(backend) : run(backend, poisoned(backend, [T, Hq, D])));
    const expected = await oracle.read(run(oracle));
    const maxV = v.subarray(0, kvLength * Hkv * D).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    return compare(actual, expected, maxV);
  });
}

const none: AttentionMask = { kind: 'none' };
const causal = (queryStart: number): AttentionMask => ({ kind: 'causal', queryStart });

export const attentionCases: KernelCase[] = [
  attentionCase('none, T=1 S=1, D=64', { T: 1, Hq: 1, Hkv: 1, D: 64, capacity: 1, mask: none }),
  attentionCase('none, T=3 S=33, 4 heads, D=64', { T: 3, Hq: 4, Hkv: 4, D: 64, capacity: 33, mask: none }),
  attentionCase('none, scale 0.5, D=17', { T: 5, Hq: 2, Hkv: 1, D: 17, capacity: 9, mask: none, scale: 0.5 }),
  attentionCase('none, MQA 8:1, T=S=33, D=64, allocated out', { T: 33, Hq: 8, Hkv: 1, D: 64, capacity: 33, mask: none, allocate: true }),
  attentionCase('causal prefill, GQA 4:2, T=S=17, D=128', { T: 17, Hq: 4, Hkv: 2, D: 128, capacity: 17, mask: causal(0) }),
  attentionCase('causal chunk at 33, T=17, kvLength 50 of 64, GQA 6:2, D=80', { T: 17, Hq: 6, Hkv: 2, D: 80, capacity: 64, kvLength: 50, mask: causal(33) }),
  attentionCase('causal, T=5 at 10, kvLength 15 of 16, D=64', { T: 5, Hq: 2, Hkv: 2, D: 64, capacity: 16, kvLength: 15, mask: causal(10) }),
  attentionCase('decode T=1, kvLength 4000 of 4097, GQA 16:2, D=128', { T: 1, Hq: 16, Hkv: 2, D: 128, capacity: 4097, kvLength: 4000, mask: causal(3999) }),
  attentionCase('decode T=1, first token, kvLength 1 of 64, GQA 4:2, D=128', { T: 1, Hq: 4, Hkv: 2, D: 128, capacity: 64, kvLength: 1, mask: causal(0) }),
  attentionCase('decode T=1 without mask, kvLength 300 of 512, D=64', { T: 1, Hq: 2, Hkv: 1, D: 64, capacity: 512, kvLength: 300, mask: none }),
  // Key runs split across units (flash-decoding): most runs of the 1024 keys lie past the 2–3 a query sees.
  attentionCase('causal T=2 at 1, kvLength 1024 of 1100, GQA 7:1, D=64', { T: 2, Hq: 7, Hkv: 1, D: 64, capacity: 1100, kvLength: 1024, mask: causal(1) }),
  // D = 2·16 + 4: the value sums' 16-wide passes and then a 4-wide one, for a pair of heads and a last single one; 71 keys: odd chunk tails.
  attentionCase('none, GQA 6:2, T=3 S=71, D=36', { T: 3, Hq: 6, Hkv: 2, D: 36, capacity: 71, mask: none }),
  attentionCase('decode T=1 without mask, kvLength 1031 of 1100, GQA 7:1, D=64', { T: 1, Hq: 7, Hkv: 1, D: 64, capacity: 1100, kvLength: 1031, mask: none }),
  attentionCase('segments [0, 1, 17, 33], T=S=33, D=64', { T: 33, Hq: 4, Hkv: 4, D: 64, capacity: 33, mask: { kind: 'segments', bounds: Int32Array.from([0, 1, 17, 33]) } }),
  attentionCase('segments one segment, T=S=37, D=80, allocated out', { T: 37, Hq: 2, Hkv: 2, D: 80, capacity: 37, mask: { kind: 'segments', bounds: Int32Array.from([0, 37]) }, allocate: true }),
  attentionCase('blockWindow 8 back 2 ahead 1, T=S=37, D=64', { T: 37, Hq: 2, Hkv: 2, D: 64, capacity: 37, mask: { kind: 'blockWindow', blockSize: 8, back: 2, ahead: 1 } }),
  attentionCase('blockWindow 4 back 0 ahead 0, T=S=13, D=64', { T: 13, Hq: 3, Hkv: 1, D: 64, capacity: 13, mask: { kind: 'blockWindow', blockSize: 4, back: 0, ahead: 0 } }),
  attentionCase('none, logits to ±100, T=5 S=65, D=64', { T: 5, Hq: 2, Hkv: 2, D: 64, capacity: 65, mask: none, qkScale: 10 }, LARGE_LOGIT_BOUND),
];
