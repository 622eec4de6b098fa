// Smoke checks of every WebGPU op against small JS computations (the full random suite at odd
// sizes lives in kernels/test). Needs a WebGPU adapter: in Node, Dawn over SwiftShader (see
// vitest.config.ts); a missing adapter fails these tests.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AttentionMask, HostMatrix, RopeSpec, Tensor, WeightFormat } from '../src/backend.js';
import { isOmniError, type OmniErrorCode } from '../src/errors.js';
import { dequantize, f16ToF32, quantize, toF16Array } from '../src/quant.js';
import { createWebGPUBackend, type WebGPUBackend } from '../src/webgpu/index.js';
import { chooseTuning } from '../src/webgpu/tuning.js';

/** Max relative error per check, printed at the end for the report. */
const worst = new Map<string, number>();

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    s ^= s + Math.imul(s ^ (s >>> 7), 61);
    return (((s ^ (s >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  };
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => r() * scale);
}

/** max |got - want| / max |want|, recorded under `name` and checked against `tol`. */
function expectClose(name: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5): void {
  expect(got.length).toBe(want.length);
  let err = 0;
  let top = 1e-30;
  for (let i = 0; i < want.length; i++) {
    top = Math.max(top, Math.abs(want[i]));
    const d = Math.abs(got[i] - want[i]);
    err = Math.max(err, Number.isNaN(d) ? Infinity : d);
  }
  const rel = err / top;
  worst.set(name, Math.max(worst.get(name) ?? 0, rel));
  expect(rel, `${name}: relative error ${rel}`).toBeLessThanOrEqual(tol);
}

function expectCode(fn: () => unknown, code: OmniErrorCode): void {
  let caught: unknown = null;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(isOmniError(caught, code), `expected OmniError ${code}, got ${String(caught)}`).toBe(true);
}

/** The f32 matrix a host weight stands for. */
function hostValues(m: HostMatrix): Float32Array {
  if (m.format === 'f32') return m.data;
  if (m.format === 'f16') return Float32Array.from(m.data, f16ToF32);
  return dequantize(m);
}

function hostMatrix(values: Float32Array, rows: number, cols: number, format: WeightFormat, f16Scales = false): HostMatrix {
  if (format === 'f32') return { format, rows, cols, data: values };
  if (format === 'f16') return { format, rows, cols, data: toF16Array(values) };
  return quantize(values, rows, cols, format, f16Scales ? 'f16' : 'f32');
}

/** y[M, N] = x[M, K] · Wᵀ + bias, in doubles. */
function refLinear(x: Float32Array, w: Float32Array, M: number, N: number, K: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  }
  return y;
}

let be: WebGPUBackend;

beforeAll(async () => {
  be = await createWebGPUBackend();
});

afterAll(() => {
  be?.destroy();
  console.log(`webgpu max relative error per check:\n${[...worst].map(([k, v]) => `  ${k}: ${v.toExponential(2)}`).join('\n')}`);
});

async function values(t: Tensor): Promise<Float32Array | Int32Array> {
  return be.read(t);
}

describe('webgpu backend: memory', () => {
  it('reports its adapter and limits', () => {
    expect(be.info.kind).toBe('webgpu');
    expect(be.info.name.length).toBeGreaterThan(0);
    expect(be.info.maxBufferBytes).toBeGreaterThanOrEqual(128 << 20);
    expect(be.info.shaderF16).toBe(be.device.features.has('shader-f16'));
  });

  it('round-trips f32 and i32 tensors, ranges, zeros, views and copies', async () => {
    const data = randn(13, 1);
    const t = be.tensor(data, [13]);
    expect(Array.from(await values(t))).toEqual(Array.from(data));
    expect(Array.from(await be.read(t, { offset: 3, count: 4 }))).toEqual(Array.from(data.subarray(3, 7)));
    const ints = be.tensor(Int32Array.from([5, -7, 9]), [3]);
    const back = await values(ints);
    expect(back).toBeInstanceOf(Int32Array);
    expect(Array.from(back)).toEqual([5, -7, 9]);
    expect(Array.from(await values(be.empty([2, 3])))).toEqual([0, 0, 0, 0, 0, 0]);

    const view = be.reshape(t, [1, 13]);
    expect(view.shape).toEqual([1, 13]);
    const dst = be.empty([20]);
    be.copy(view, dst, 2, 10, 5);
    const copied = await values(dst);
    expect(Array.from(copied.subarray(10, 15))).toEqual(Array.from(data.subarray(2, 7)));
    expect(copied[9]).toBe(0);
    // Overlapping copy inside one buffer behaves like memmove.
    be.copy(t, t, 0, 2, 8);
    const moved = Array.from(data);
    moved.splice(2, 8, ...data.subarray(0, 8));
    expect(Array.from(await values(t))).toEqual(moved);
    be.dispose(view);
    await expect(be.read(t)).rejects.toSatisfy((e: unknown) => isOmniError(e, 'BAD_INPUT'));
  });

  it('rejects bad input with OmniError codes', () => {
    const x = be.tensor(randn(6, 2), [2, 3]);
    expectCode(() => be.tensor(new Float32Array(5), [2, 3]), 'SHAPE_MISMATCH');
    expectCode(() => be.tensor(new Float64Array(2) as unknown as Float32Array, [2]), 'WRONG_DTYPE');
    expectCode(() => be.empty([2, -1]), 'BAD_INPUT');
    expectCode(() => be.reshape(x, [4]), 'SHAPE_MISMATCH');
    expectCode(() => be.softmax(be.tensor(Int32Array.from([1, 2]), [2])), 'WRONG_DTYPE');
    expectCode(() => be.add(x, be.tensor(randn(2, 3), [2])), 'SHAPE_MISMATCH');
    expectCode(() => be.gelu(x, 'exact' as 'erf'), 'BAD_INPUT');
    expectCode(() => be.softmax(x, be.empty([3, 2])), 'SHAPE_MISMATCH');
    expectCode(() => be.softmax(x, x), 'BAD_INPUT');
    expectCode(() => be.copy(x, be.empty([4]), 0, 0, 5), 'BAD_INPUT');
    expectCode(() => be.rmsnorm(x, be.tensor(randn(2, 4), [2]), 1e-6), 'SHAPE_MISMATCH');
    expectCode(() => be.weight({ format: 'f32', rows: 2, cols: 3, data: new Float32Array(5) }), 'SHAPE_MISMATCH');
    expectCode(() => be.weight({ ...quantize(randn(6, 5), 2, 3, 'q8'), paddedCols: 3 }), 'BAD_INPUT');
    const w = be.weight({ format: 'f32', rows: 4, cols: 3, data: randn(12, 6) });
    expectCode(() => be.linear(be.tensor(randn(4, 7), [4]), w), 'SHAPE_MISMATCH');
    expectCode(() => be.embedding(w, Int32Array.from([0, 4])), 'BAD_INPUT');
    be.dispose(w);
    expectCode(() => be.linear(x, w), 'BAD_INPUT');
  });
});

describe('webgpu tuning: the kernel for each matmul shape', () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupStorageSize: 16384 } as GPUSupportedLimits;
  const plan = chooseTuning(limits).matmulPlan;
  it('decode rows: barrier-free per output for short K, the reducing GEMV for long K (not conv1d)', () => {
    expect(plan(1, 151936, 32, true)).toMatchObject({ kind: 'direct', blockM: 1, blockN: 1 });
    expect(plan(4, 896, 256, true)).toMatchObject({ kind: 'direct', blockM: 4, blockN: 1 });
    expect(plan(1, 896, 257, true)).toMatchObject({ kind: 'gemv' });
    expect(plan(2, 896, 4096, false)).toMatchObject({ kind: 'direct', blockM: 2, blockN: 1 });
  });
  it('skinny, short-K and small products avoid the 64 × 64 tile; large ones keep it', () => {
    expect(plan(16, 151936, 896, true)).toMatchObject({ kind: 'direct', blockM: 16, blockN: 4 });
    expect(plan(11520, 1, 224, false)).toMatchObject({ kind: 'direct', blockM: 4, blockN: 1 });
    expect(plan(152, 151936, 32, true)).toMatchObject({ kind: 'direct', blockM: 16, blockN: 4 });
    expect(plan(96, 32, 32, true)).toMatchObject({ kind: 'direct' });
    expect(plan(240, 32, 352, false)).toMatchObject({ kind: 'tiled' });
    expect(plan(512, 896, 896, true)).toMatchObject({ kind: 'tiled' });
  });
});

describe('webgpu backend: linear and matmul', () => {
  const K = 37;
  const N = 19;
  const cases: [WeightFormat, boolean][] = [['f32', false], ['f16', false], ['q8', false], ['q8', true], ['q4', false], ['q4', true]];
  for (const [format, f16Scales] of cases) {
    for (const M of [1, 3, 70]) {
      it(`${format}${f16Scales ? ' (f16 scales)' : ''} weight, M = ${M}`, async () => {
        const host = hostMatrix(randn(N * K, 10 + M), N, K, format, f16Scales);
        const x = randn(M * K, 20 + M);
        const bias = randn(N, 30);
        const w = be.weight(host);
        const y = be.linear(be.tensor(x, [M, K]), w, M === 3 ? null : be.tensor(bias, [N]));
        expect(y.shape).toEqual([M, N]);
        const want = refLinear(x, hostValues(host), M, N, K, M === 3 ? undefined : bias);
        expectClose(`linear ${format}${f16Scales ? '/f16 scales' : ''} ${M === 1 ? 'gemv' : M === 3 ? 'gemv×3' : 'M=70'}`, await values(y), want);
      });
    }
  }

  it('splits weights over buffers bigger than maxBufferBytes', async () => {
    const small = await createWebGPUBackend({ maxBufferBytes: 1024 });
    try {
      // f32 rows take 160 bytes (6 per part), q4 rows 16 bytes (64 per part); the tiled
      // kernel's 6 output rows of the q4 weight would not fit one buffer here.
      for (const [format, rows, Ms] of [['f32', 23, [1, 6]], ['q4', 150, [1]]] as const) {
        const host = hostMatrix(randn(rows * K, 40), rows, K, format);
        const w = small.weight(host);
        expect((w.byteSize)).toBeGreaterThan(1024);
        for (const M of Ms) {
          const x = randn(M * K, 41 + M);
          const y = small.linear(small.tensor(x, [M, K]), w);
          expectClose(`linear split ${format}`, await small.read(y), refLinear(x, hostValues(host), M, rows, K));
        }
        const ids = Int32Array.from([rows - 1, 0, 7, rows - 2]);
        const e = small.embedding(w, ids);
        const table = hostValues(host);
        const want = Array.from(ids).flatMap((id) => Array.from(table.subarray(id * K, (id + 1) * K)));
        expectClose(`embedding split ${format}`, await small.read(e), want, 0);
      }
      expectCode(() => small.empty([300]), 'OUT_OF_MEMORY');
    } finally {
      small.destroy();
    }
  });

  for (const transposeB of [false, true]) {
    for (const M of [1, 9]) {
      it(`matmul f32 ${transposeB ? 'a·bᵀ' : 'a·b'}, M = ${M}`, async () => {
        const a = randn(M * K, 50);
        const b = randn(K * N, 51);
        const bT = new Float32Array(N * K); // [N, K] form for the reference
        for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) bT[n * K + k] = transposeB ? b[n * K + k] : b[k * N + n];
        const y = be.matmul(be.tensor(a, [M, K]), be.tensor(b, transposeB ? [N, K] : [K, N]), { transposeB });
        expectClose('matmul', await values(y), refLinear(a, bT, M, N, K));
      });
    }
  }
});

describe('webgpu backend: row ops', () => {
  for (const cols of [7, 300]) {
    const rows = 3;
    const x = randn(rows * cols, cols, 3);
    const w = randn(cols, cols + 1);
    const b = randn(cols, cols + 2);
    const rowsOf = (fn: (row: Float32Array, r: number) => number[]): number[] =>
      Array.from({ length: rows }, (_, r) => fn(x.subarray(r * cols, (r + 1) * cols), r)).flat();

    it(`rmsnorm, layernorm, softmax, argmax over ${cols} columns`, async () => {
      const xt = be.tensor(x, [rows, cols]);
      const rms = rowsOf((row) => {
        const ms = row.reduce((s, v) => s + v * v, 0) / cols;
        return Array.from(row, (v, c) => (v / Math.sqrt(ms + 1e-6)) * w[c]);
      });
      expectClose('rmsnorm', await values(be.rmsnorm(xt, be.tensor(w, [cols]), 1e-6)), rms);
      for (const affine of [true, false]) {
        const ln = rowsOf((row) => {
          const mean = row.reduce((s, v) => s + v, 0) / cols;
          const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / cols;
          return Array.from(row, (v, c) => ((v - mean) / Math.sqrt(variance + 1e-5)) * (affine ? w[c] : 1) + (affine ? b[c] : 0));
        });
        const got = be.layernorm(xt, affine ? be.tensor(w, [cols]) : null, affine ? be.tensor(b, [cols]) : null, 1e-5);
        expectClose('layernorm', await values(got), ln);
      }
      const sm = rowsOf((row) => {
        const top = Math.max(...row);
        const e = Array.from(row, (v) => Math.exp(v - top));
        const s = e.reduce((p, q) => p + q, 0);
        return e.map((v) => v / s);
      });
      expectClose('softmax', await values(be.softmax(xt)), sm);
      // Ties: the first index wins.
      const tied = Float32Array.from(x);
      tied[cols - 1] = 10;
      tied[Math.floor(cols / 2)] = 10;
      const am = rowsOf((_, r) => {
        const src = tied.subarray(r * cols, (r + 1) * cols);
        return [src.indexOf(Math.max(...src))];
      });
      const got = await values(be.argmax(be.tensor(tied, [rows, cols])));
      expect(got).toBeInstanceOf(Int32Array);
      expect(Array.from(got)).toEqual(am);
    });
  }
});

describe('webgpu backend: elementwise', () => {
  const n = 1000;
  const a = randn(n, 60, 12);
  const b = randn(n, 61, 3);

  it('siluMul, gelu (erf and tanh), add and mul with row broadcast', async () => {
    const at = be.tensor(a, [40, 25]);
    const bt = be.tensor(b, [40, 25]);
    const row = randn(25, 62);
    const rowT = be.tensor(row, [25]);
    expectClose('siluMul', await values(be.siluMul(at, bt)), Array.from(a, (g, i) => (g / (1 + Math.exp(-g))) * b[i]));
    const erf = (z: number): number => {
      // Series / continued fraction accurate to ~1e-15 for the reference.
      if (Math.abs(z) < 3) {
        let term = z;
        let sum = z;
        for (let k = 1; k < 60; k++) {
          term *= (-z * z) / k;
          sum += term / (2 * k + 1);
        }
        return (2 / Math.sqrt(Math.PI)) * sum;
      }
      const t = Math.abs(z);
      let f = 0;
      for (let k = 60; k >= 1; k--) f = (k / 2) / (t + f);
      return Math.sign(z) * (1 - Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f));
    };
    expectClose('gelu erf', await values(be.gelu(at, 'erf')), Array.from(a, (v) => 0.5 * v * (1 + erf(v / Math.SQRT2))), 2e-6);
    expectClose('gelu tanh', await values(be.gelu(at, 'tanh')),
      Array.from(a, (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)))), 2e-6);
    expectClose('add', await values(be.add(at, bt)), Array.from(a, (v, i) => v + b[i]), 1e-7);
    expectClose('add (row broadcast)', await values(be.add(at, rowT)), Array.from(a, (v, i) => v + row[i % 25]), 1e-7);
    expectClose('mul', await values(be.mul(at, bt)), Array.from(a, (v, i) => v * b[i]), 1e-7);
    expectClose('mul (row broadcast)', await values(be.mul(at, rowT)), Array.from(a, (v, i) => v * row[i % 25]), 1e-7);
  });
});

describe('webgpu backend: model-shaped ops', () => {
  for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
    it(`embedding from a ${format} table, host and device ids`, async () => {
      const V = 11;
      const D = 21;
      const host = hostMatrix(randn(V * D, 70), V, D, format, format === 'q4');
      const table = be.weight(host);
      const full = hostValues(host);
      const ids = Int32Array.from([3, 0, 10, 3, 7]);
      const want = Array.from(ids).flatMap((id) => Array.from(full.subarray(id * D, (id + 1) * D)));
      expectClose(`embedding ${format}`, await values(be.embedding(table, ids)), want, 0);
      expectClose(`embedding ${format}`, await values(be.embedding(table, be.tensor(ids, [5]))), want, 0);
    });
  }

  function refRotary(x: Float32Array, T: number, H: number, D: number, pos: Int32Array, rope: RopeSpec): Float64Array {
    const y = Float64Array.from(x);
    const half = rope.invFreq.length;
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < (rope.heads ?? H); h++) {
        for (let j = 0; j < half; j++) {
          const angle = Math.fround(pos[rope.stream[j] * T + t] * rope.invFreq[j]);
          const [i1, i2] = rope.style === 'half' ? [j, j + half] : [2 * j, 2 * j + 1];
          const base = (t * H + h) * D;
          const [x1, x2] = [x[base + i1], x[base + i2]];
          y[base + i1] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
          y[base + i2] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
        }
      }
    }
    return y;
  }

  for (const style of ['half', 'interleaved'] as const) {
    it(`rotary (${style}), 3 position streams, partial dims and heads, in place and not`, async () => {
      const [T, H, D] = [5, 3, 12];
      const half = 5; // rotaryDim 10 < D
      const invFreq = Float32Array.from({ length: half }, (_, j) => 10000 ** (-j / half));
      const rope: RopeSpec = { invFreq, stream: Int32Array.from([0, 1, 1, 2, 2]), style, heads: 2 };
      const pos = Int32Array.from({ length: 3 * T }, (_, i) => (i * 7919) % 40000);
      const x = randn(T * H * D, 80);
      const want = refRotary(x, T, H, D, pos, rope);
      const positions = be.tensor(pos, [3, T]);
      const xt = be.tensor(x, [T, H, D]);
      expectClose(`rotary ${style}`, await values(be.rotary(xt, positions, rope)), want, 1e-6);
      expect(Array.from(await values(xt))).toEqual(Array.from(x));
      be.rotary(xt, positions, rope, xt);
      expectClose(`rotary ${style}`, await values(xt), want, 1e-6);
    });
  }

  function refAttention(q: Float32Array, k: Float32Array, v: Float32Array, T: number, Hq: number, Hkv: number, D: number,
    kvLength: number, visible: (i: number, j: number) => boolean): Float64Array {
    const out = new Float64Array(T * Hq * D);
    for (let i = 0; i < T; i++) {
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / (Hq / Hkv));
        const scores: [number, number][] = [];
        for (let j = 0; j < kvLength; j++) {
          if (!visible(i, j)) continue;
          let s = 0;
          for (let d = 0; d < D; d++) s += q[(i * Hq + h) * D + d] * k[(j * Hkv + g) * D + d];
          scores.push([j, s / Math.sqrt(D)]);
        }
        if (scores.length === 0) continue;
        const top = Math.max(...scores.map(([, s]) => s));
        const total = scores.reduce((p, [, s]) => p + Math.exp(s - top), 0);
        for (const [j, s] of scores) {
          const p = Math.exp(s - top) / total;
          for (let d = 0; d < D; d++) out[(i * Hq + h) * D + d] += p * v[(j * Hkv + g) * D + d];
        }
      }
    }
    return out;
  }

  const attentionCases: { name: string; T: number; S: number; kvLength: number; D: number; mask: AttentionMask;
    visible: (i: number, j: number) => boolean }[] = [
    { name: 'decode, causal, cache longer than kvLength', T: 1, S: 700, kvLength: 613, D: 64,
      mask: { kind: 'causal', queryStart: 612 }, visible: (i, j) => j <= 612 + i },
    { name: 'decode ×3, no mask', T: 3, S: 40, kvLength: 33, D: 16, mask: { kind: 'none' }, visible: () => true },
    { name: 'prefill, causal chunk after a cache', T: 37, S: 64, kvLength: 50, D: 64,
      mask: { kind: 'causal', queryStart: 13 }, visible: (i, j) => j <= 13 + i },
    { name: 'prefill, segments', T: 45, S: 45, kvLength: 45, D: 80,
      mask: { kind: 'segments', bounds: Int32Array.from([0, 7, 7, 30, 45]) },
      visible: (i, j) => [0, 7, 30, 45].findIndex((b) => i < b) === [0, 7, 30, 45].findIndex((b) => j < b) },
    { name: 'prefill, blockWindow', T: 50, S: 50, kvLength: 50, D: 32,
      mask: { kind: 'blockWindow', blockSize: 6, back: 1, ahead: 0 },
      visible: (i, j) => Math.floor(j / 6) >= Math.floor(i / 6) - 1 && Math.floor(j / 6) <= Math.floor(i / 6) },
  ];
  for (const c of attentionCases) {
    it(`attention: ${c.name} (GQA 6/2 heads)`, async () => {
      const [Hq, Hkv] = [6, 2];
      const q = randn(c.T * Hq * c.D, 90);
      const k = randn(c.S * Hkv * c.D, 91);
      const v = randn(c.S * Hkv * c.D, 92);
      const got = be.attention(be.tensor(q, [c.T, Hq, c.D]), be.tensor(k, [c.S, Hkv, c.D]), be.tensor(v, [c.S, Hkv, c.D]),
        { kvLength: c.kvLength, mask: c.mask });
      const want = refAttention(q, k, v, c.T, Hq, Hkv, c.D, c.kvLength, c.visible);
      expectClose(`attention ${c.T === 1 || c.T === 3 ? 'decode' : 'prefill'}`, await values(got), want, 2e-5);
    });
  }

  it('attention rejects inconsistent masks and shapes', () => {
    const q = be.tensor(randn(2 * 4 * 8, 1), [2, 4, 8]);
    const kv = be.tensor(randn(3 * 3 * 8, 2), [3, 3, 8]);
    expectCode(() => be.attention(q, kv, kv, { mask: { kind: 'none' } }), 'SHAPE_MISMATCH');
    const kv2 = be.tensor(randn(3 * 2 * 8, 2), [3, 2, 8]);
    expectCode(() => be.attention(q, kv2, kv2, { mask: { kind: 'segments', bounds: Int32Array.from([0, 2]) } }), 'SHAPE_MISMATCH');
    expectCode(() => be.attention(q, kv2, kv2, { kvLength: 4, mask: { kind: 'none' } }), 'SHAPE_MISMATCH');
    expectCode(() => be.attention(q, kv2, kv2, { kvLength: -1, mask: { kind: 'none' } }), 'BAD_INPUT');
    expectCode(() => be.attention(q, kv2, kv2, { mask: { kind: 'blockWindow', blockSize: 0, back: 0, ahead: 0 } }), 'BAD_INPUT');
  });

  function refConv1d(x: Float32Array, L: number, Cin: number, w: Float32Array, Cout: number, kernel: number,
    stride: number, pad: number, dilation: number, reflect: boolean, bias: Float32Array | null): Float64Array {
    const Lout = Math.floor((L + 2 * pad - dilation * (kernel - 1) - 1) / stride) + 1;
    const y = new Float64Array(Lout * Cout);
    for (let l = 0; l < Lout; l++) {
      for (let co = 0; co < Cout; co++) {
        let s = bias ? bias[co] : 0;
        for (let ci = 0; ci < Cin; ci++) {
          for (let j = 0; j < kernel; j++) {
            let p = l * stride + j * dilation - pad;
            if (reflect) p = p < 0 ? -p : p >= L ? 2 * (L - 1) - p : p;
            else if (p < 0 || p >= L) continue;
            s += x[p * Cin + ci] * w[co * Cin * kernel + ci * kernel + j];
          }
        }
        y[l * Cout + co] = s;
      }
    }
    return y;
  }

  for (const [format, padMode, stride, dilation] of [['f32', 'zeros', 1, 1], ['q8', 'reflect', 2, 1], ['f16', 'zeros', 3, 2]] as const) {
    it(`conv1d ${format} weight, ${padMode} padding, stride ${stride}, dilation ${dilation}`, async () => {
      const [L, Cin, Cout, kernel, pad] = [29, 5, 9, 3, 2];
      const host = hostMatrix(randn(Cout * Cin * kernel, 100), Cout, Cin * kernel, format);
      const x = randn(L * Cin, 101);
      const bias = randn(Cout, 102);
      const y = be.conv1d(be.tensor(x, [L, Cin]), be.weight(host), be.tensor(bias, [Cout]),
        { kernel, stride, padding: pad, dilation, padMode });
      const want = refConv1d(x, L, Cin, hostValues(host), Cout, kernel, stride, pad, dilation, padMode === 'reflect', bias);
      expect(y.shape).toEqual([want.length / Cout, Cout]);
      expectClose('conv1d', await values(y), want);
    });
  }

  it('gatherRows, transpose, avgPoolRows', async () => {
    const [R, C] = [37, 19];
    const x = randn(R * C, 110);
    const xt = be.tensor(x, [R, C]);
    const idx = Int32Array.from([36, 0, 5, 5]);
    const gathered = Array.from(idx).flatMap((r) => Array.from(x.subarray(r * C, (r + 1) * C)));
    expectClose('gatherRows', await values(be.gatherRows(xt, idx)), gathered, 0);
    expectClose('gatherRows', await values(be.gatherRows(xt, be.tensor(idx, [4]))), gathered, 0);
    const tr = await values(be.transpose(xt));
    expectClose('transpose', tr, Array.from({ length: R * C }, (_, i) => x[(i % R) * C + Math.floor(i / R)]), 0);
    // Data movement is bitwise, so i32 tensors work too.
    const ints = be.tensor(Int32Array.from({ length: 6 }, (_, i) => -i * 1000003), [2, 3]);
    expect(Array.from(await values(be.transpose(ints)))).toEqual([0, -3000009, -1000003, -4000012, -2000006, -5000015]);
    expect(Array.from(await values(be.gatherRows(ints, Int32Array.from([1]))))).toEqual([-3000009, -4000012, -5000015]);
    const pooled = Array.from({ length: 9 * C }, (_, i) => {
      const [r, c] = [Math.floor(i / C), i % C];
      return [0, 1, 2, 3].reduce((s, k) => s + x[(r * 4 + k) * C + c], 0) / 4;
    });
    expectClose('avgPoolRows', await values(be.avgPoolRows(xt, 4)), pooled, 1e-6);
  });
});

describe('webgpu backend: sharing and lifetime', () => {
  it('hands tfjs the same device and wraps a tensor without a copy', async () => {
    const x = randn(12, 120);
    const t = be.tensor(x, [3, 4]);
    const wrapped = await be.toTf(t);
    const tf = await import('@tensorflow/tfjs-core');
    expect((tf.backend() as unknown as { device: GPUDevice }).device).toBe(be.device);
    const doubled = tf.mul(wrapped, 2);
    expectClose('tfjs on our buffer', await doubled.data(), Array.from(x, (v) => 2 * v), 0);
    // Our later writes are visible through the wrapped tensor: it is the same buffer.
    be.copy(be.tensor(Float32Array.from([42]), [1]), t, 0, 0, 1);
    await be.sync();
    expect((await wrapped.data())[0]).toBe(42);
    doubled.dispose();
    wrapped.dispose();
  });

  it('throws DEVICE_LOST after the device is lost', async () => {
    const other = await createWebGPUBackend();
    const t = other.tensor(randn(4, 130), [4]);
    other.device.destroy();
    const info = await other.lost;
    expect(info.reason).toBe('destroyed');
    expectCode(() => other.softmax(t), 'DEVICE_LOST');
    await expect(other.read(t)).rejects.toSatisfy((e: unknown) => isOmniError(e, 'DEVICE_LOST'));
  });
});
