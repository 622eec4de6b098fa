/**
 * The 8-bit KV cache (Backend.kv8): rows written in two pieces and read back, and attention
 * over them for every mask kind, GQA with paired and single query heads, head sizes that pad
 * (D = 16, 36, 80), caches whose length is not a multiple of the 4-row blocks or of the
 * 128-row chunks, and decode steps long enough to be split over the pool's threads.
 *
 * The oracle runs the same integer scheme (its codes come out identical: both quantize in
 * f32), so what differs is f32 against f64 in the scores and exponentials (~1e-7 of max|v|,
 * against which errors are judged, as attention's), and, rarely, a value weight's code that
 * lands on the other side of a rounding boundary, which would move an output by up to
 * max|v|/127 of one key's weight: none of these cases has one.
 */
import { isOmniError, type AttentionMask, type Backend, type KV8, type KV8Ops, type OmniErrorCode } from '@omniweb/core';
import { compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

const BOUND = 1e-5;

interface KV8Shape {
  T: number; Hq: number; Hkv: number; D: number;
  rows: number;
  kvLength: number;
  mask: AttentionMask;
  /** Spread of q and k values. */
  qkScale?: number;
}

function kv8Ops(backend: Backend): KV8Ops {
  if (!backend.kv8) throw new Error(`the ${backend.info.kind} backend has no 8-bit KV cache`);
  return backend.kv8;
}

/** A cache of `rows` rows on `backend` with rows [0, kvLength) written from k and v, in two calls. */
function filled(backend: Backend, s: KV8Shape, k: Float32Array, v: Float32Array): KV8 {
  const ops = kv8Ops(backend);
  const cache = ops.create(s.rows, s.Hkv, s.D);
  const split = Math.max(1, Math.floor(s.kvLength / 3));
  for (const [from, to] of [[0, split], [split, s.kvLength]]) {
    if (to <= from) continue;
    const n = (to - from) * s.Hkv * s.D, at = from * s.Hkv * s.D;
    ops.write(backend.tensor(k.slice(at, at + n), [to - from, s.Hkv, s.D]), backend.tensor(v.slice(at, at + n), [to - from, s.Hkv, s.D]), cache, from);
  }
  return cache;
}

function kv8Case(label: string, s: KV8Shape): KernelCase {
  const name = `kv8 attention/${label}`;
  return defineCase(name, 'kv8', BOUND, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const q = uniform(random, s.T * s.Hq * s.D, s.qkScale ?? 2);
    const k = uniform(random, s.kvLength * s.Hkv * s.D, s.qkScale ?? 2);
    const v = uniform(random, s.kvLength * s.Hkv * s.D);
    const opts = { kvLength: s.kvLength, mask: s.mask };
    const run = async (be: Backend) => {
      const cache = filled(be, s, k, v);
      try {
        return await be.read(kv8Ops(be).attention(be.tensor(q, [s.T, s.Hq, s.D]), cache, opts, poisoned(be, [s.T, s.Hq, s.D])));
      } finally {
        kv8Ops(be).dispose(cache);
      }
    };
    const maxV = v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    return compare(await run(backend), await run(oracle), maxV);
  });
}

/** Rows read back as codes · scale: exactly the oracle's; a zero vector and rows never written read as zeros. */
function kv8ReadCase(label: string, s: KV8Shape): KernelCase {
  const name = `kv8 read/${label}`;
  return defineCase(name, 'kv8', 0, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const k = uniform(random, s.kvLength * s.Hkv * s.D, 3);
    const v = uniform(random, s.kvLength * s.Hkv * s.D);
    k.fill(0, 0, s.D);
    const from = Math.max(1, s.kvLength - 5);
    const run = async (be: Backend) => {
      const cache = filled(be, s, k, v);
      try {
        const out: number[] = [];
        for (const [row, count] of [[0, 1], [from, s.rows - from]]) {
          const kt = poisoned(be, [count, s.Hkv, s.D]), vt = poisoned(be, [count, s.Hkv, s.D]);
          kv8Ops(be).read(cache, row, kt, vt);
          out.push(...await be.read(kt), ...await be.read(vt));
        }
        return Float32Array.from(out);
      } finally {
        kv8Ops(be).dispose(cache);
      }
    };
    return compare(await run(backend), await run(oracle), 1);
  });
}

type Misuse = [label: string, code: OmniErrorCode, call: (be: Backend, ops: KV8Ops, cache: KV8) => unknown];

/** Each against a fresh 8-row cache of 2 heads × 16. */
const MISUSES: readonly Misuse[] = [
  ['a cache of 0 rows', 'BAD_INPUT', (_be, ops) => ops.create(0, 2, 16)],
  ['a write of keys and values of different shapes', 'SHAPE_MISMATCH', (be, ops, c) => ops.write(be.empty([2, 2, 16]), be.empty([3, 2, 16]), c, 0)],
  ['a write with another number of heads', 'SHAPE_MISMATCH', (be, ops, c) => ops.write(be.empty([2, 1, 16]), be.empty([2, 1, 16]), c, 0)],
  ['a write of i32 keys', 'WRONG_DTYPE', (be, ops, c) => ops.write(be.empty([2, 2, 16], 'i32'), be.empty([2, 2, 16]), c, 0)],
  ['a write past the last row', 'BAD_INPUT', (be, ops, c) => ops.write(be.empty([2, 2, 16]), be.empty([2, 2, 16]), c, 7)],
  ['a read into i32 values', 'WRONG_DTYPE', (be, ops, c) => ops.read(c, 0, be.empty([2, 2, 16]), be.empty([2, 2, 16], 'i32'))],
  ['attention with another head size', 'SHAPE_MISMATCH', (be, ops, c) => ops.attention(be.empty([1, 2, 8]), c, { mask: { kind: 'none' } })],
  ['attention with query heads not a multiple of the cache\'s', 'SHAPE_MISMATCH', (be, ops, c) => ops.attention(be.empty([1, 3, 16]), c, { mask: { kind: 'none' } })],
  ['attention over more rows than the cache holds', 'SHAPE_MISMATCH', (be, ops, c) => ops.attention(be.empty([1, 2, 16]), c, { kvLength: 9, mask: { kind: 'none' } })],
  ['attention over a disposed cache', 'BAD_INPUT', (be, ops, c) => {
    ops.dispose(c);
    return ops.attention(be.empty([1, 2, 16]), c, { mask: { kind: 'none' } });
  }],
  ['attention over another backend\'s cache', 'BAD_INPUT', (be, ops) => {
    const foreign = be.info.kind === 'oracle' ? 'wasm' : 'oracle';
    return ops.attention(be.empty([1, 2, 16]), { rows: 8, heads: 2, headDim: 16, backend: foreign, byteSize: 0 }, { mask: { kind: 'none' } });
  }],
];

/** Bound 0: the error is the number of misuses refused wrongly (each named in the thrown message); then the ops still run. */
function kv8MisuseCase(): KernelCase {
  return defineCase('kv8 validation/wrong shapes, dtypes, rows and caches are refused', 'kv8', 0, async (backend, oracle) => {
    const wrong: string[] = [];
    for (const [label, code, call] of MISUSES) {
      for (const [who, be] of [['backend', backend], ['oracle', oracle]] as const) {
        const ops = kv8Ops(be);
        const cache = ops.create(8, 2, 16);
        try {
          call(be, ops, cache);
          wrong.push(`${who}: ${label}: no error`);
        } catch (e) {
          if (!isOmniError(e, code)) wrong.push(`${who}: ${label}: expected OmniError ${code}, got ${String(e)}`);
        } finally {
          ops.dispose(cache);
        }
      }
    }
    if (wrong.length > 0) throw new Error(`${wrong.length} misuses not refused as promised:\n${wrong.join('\n')}`);
    const after = await kv8Case('after the refusals', { T: 1, Hq: 2, Hkv: 2, D: 16, rows: 8, kvLength: 8, mask: { kind: 'none' } }).run(backend, oracle);
    return after.maxRelErr <= after.bound ? 0 : after.maxRelErr;
  });
}

const causal = (queryStart: number): AttentionMask => ({ kind: 'causal', queryStart });

export const kv8Cases: KernelCase[] = [
  kv8MisuseCase(),
  kv8ReadCase('10 rows of 2 heads, D=16, 3 never written', { T: 1, Hq: 2, Hkv: 2, D: 16, rows: 13, kvLength: 10, mask: causal(9) }),
  kv8ReadCase('70 rows of 1 head, D=36', { T: 1, Hq: 1, Hkv: 1, D: 36, rows: 70, kvLength: 70, mask: causal(69) }),
  kv8Case('decode, kvLength 4000 of 4097, GQA 14:2, D=64', { T: 1, Hq: 14, Hkv: 2, D: 64, rows: 4097, kvLength: 4000, mask: causal(3999) }),
  kv8Case('decode, kvLength 257 of 300, GQA 16:2, D=128', { T: 1, Hq: 16, Hkv: 2, D: 128, rows: 300, kvLength: 257, mask: causal(256) }),
  kv8Case('decode, first token, kvLength 1 of 64, GQA 7:1, D=64', { T: 1, Hq: 7, Hkv: 1, D: 64, rows: 64, kvLength: 1, mask: causal(0) }),
  kv8Case('decode, tiny model heads 2:1, D=16, kvLength 5 of 7', { T: 1, Hq: 2, Hkv: 1, D: 16, rows: 7, kvLength: 5, mask: causal(4) }),
  kv8Case('causal chunk at 33, T=17, kvLength 50 of 64, GQA 6:2, D=80', { T: 17, Hq: 6, Hkv: 2, D: 80, rows: 64, kvLength: 50, mask: causal(33) }),
  kv8Case('causal prefill T=S=130, GQA 3:1, D=64', { T: 130, Hq: 3, Hkv: 1, D: 64, rows: 130, kvLength: 130, mask: causal(0) }),
  kv8Case('none, GQA 6:2, T=3 S=71, D=36', { T: 3, Hq: 6, Hkv: 2, D: 36, rows: 71, kvLength: 71, mask: { kind: 'none' } }),
  kv8Case('segments [0, 1, 17, 33], T=S=33, D=64', { T: 33, Hq: 4, Hkv: 2, D: 64, rows: 33, kvLength: 33, mask: { kind: 'segments', bounds: Int32Array.from([0, 1, 17, 33]) } }),
  kv8Case('blockWindow 8 back 2 ahead 1, T=S=37, D=64', { T: 37, Hq: 2, Hkv: 2, D: 64, rows: 37, kvLength: 37, mask: { kind: 'blockWindow', blockSize: 8, back: 2, ahead: 1 } }),
  kv8Case('none, logits to ±100, T=2 S=150, D=64', { T: 2, Hq: 2, Hkv: 2, D: 64, rows: 150, kvLength: 150, mask: { kind: 'none' }, qkScale: 10 }),
];
