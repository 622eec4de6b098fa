// The wasm backend op by op against small plain-JS computations (f64 sums), on the
// single-threaded module and on the pthread pool. The full randomized suite against the
// JS oracle is kernels/test/kernels.test.ts; these checks stay with the kernels' sources.
import { afterAll, describe, expect, it } from 'vitest';
import { erfc } from '@omniweb/kernels';
import type { Backend, HostMatrix, Tensor, WeightFormat } from '../src/backend.js';
import { isOmniError } from '../src/errors.js';
import { dequantize, f16ToF32, quantize, toF16Array } from '../src/quant.js';
import { createWasmBackend } from '../src/wasm/index.js';
import { relaxedDotAvailable, relaxedDotReadsUnsignedBytes } from '../src/wasm/module.js';

function random(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

/**
 * max |a − e| / max(|e|, floor) over all elements; `floor` (a number or one per element)
 * is the scale below which errors count absolutely, e.g. Σ|x||w| for a dot product.
 */
function relErr(actual: ArrayLike<number>, expected: ArrayLike<number>, floor: number | ArrayLike<number> = 1e-6): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    const f = typeof floor === 'number' ? floor : floor[i];
    worst = Math.max(worst, Number.isNaN(diff) ? Infinity : diff / Math.max(Math.abs(expected[i]), f));
  }
  return worst;
}

const absolute = (values: Float32Array) => values.map(Math.abs);

function hostMatrix(values: Float32Array, rows: number, cols: number, format: WeightFormat, scales: 'f32' | 'f16'): HostMatrix {
  if (format === 'f32') return { format, rows, cols, data: values };
  if (format === 'f16') return { format, rows, cols, data: toF16Array(values) };
  return quantize(values, rows, cols, format, scales);
}

function valuesOf(m: HostMatrix): Float32Array {
  if (m.format === 'f32') return m.data;
  if (m.format === 'f16') return Float32Array.from(m.data, f16ToF32);
  return dequantize(m);
}

/** x [M, K] · Wᵀ [K, N] + bias in f64. */
function linearRef(x: Float32Array, w: Float32Array, bias: Float32Array | null, M: number, K: number, N: number): Float64Array {
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

async function expectOmniError(code: string, call: () => unknown): Promise<void> {
  try {
    await call();
  } catch (e) {
    expect(isOmniError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected OmniError ${code}`);
}

describe('createWasmBackend', () => {
  it('rejects bad options', async () => {
    await expectOmniError('BAD_INPUT', () => createWasmBackend({ threads: 0 }));
    await expectOmniError('BAD_INPUT', () => createWasmBackend({ threads: 1.5 }));
    await expectOmniError('BAD_INPUT', () => createWasmBackend(null as unknown as object));
    await expectOmniError('BAD_INPUT', () => createWasmBackend({ simd: 'avx' as unknown as 'auto' }));
    await expectOmniError('BAD_INPUT', () => createWasmBackend({ dotBytes: 'unsigned' as unknown as 'auto' }));
  });

  // Node 20's V8 has no relaxed SIMD (behind its flag, an older draft's dot product, which the
  // probe in module.ts turns down); the browser suite checks the relaxed build in Chromium.
  it("picks the build the engine runs, and refuses simd 'relaxed' where it does not run", async () => {
    const relaxed = await relaxedDotAvailable();
    const be = await createWasmBackend({ threads: 1 });
    expect(be.info.wasmSimd).toBe(relaxed ? 'relaxed' : 'baseline');
    expect(be.info.name).toMatch(relaxed ? /^wasm relaxed simd, / : /^wasm simd128 /);
    // High nibbles in place only where the relaxed dot reads bytes above 127 as unsigned; the browser suite compares both ways bit for bit.
    const unsigned = await relaxedDotReadsUnsignedBytes();
    if (!relaxed) expect(unsigned).toBe(false);
    expect(be.info.wasmDotBytes).toBe(relaxed ? (unsigned ? 'unsigned' : 'portable') : undefined);
    be.destroy();
    const baseline = await createWasmBackend({ threads: 1, simd: 'baseline' });
    expect(baseline.info.wasmSimd).toBe('baseline');
    expect(baseline.info.wasmDotBytes).toBeUndefined();
    baseline.destroy();
    if (relaxed) (await createWasmBackend({ threads: 1, simd: 'relaxed' })).destroy();
    else await expectOmniError('UNSUPPORTED_CONFIG', () => createWasmBackend({ simd: 'relaxed' }));
  });

  it('refuses use after destroy', async () => {
    const be = await createWasmBackend({ threads: 1 });
    const t = be.tensor(Float32Array.of(1), [1]);
    be.destroy();
    await expectOmniError('BAD_INPUT', () => be.add(t, t));
  });
});

for (const threads of [1, 2]) {
  describe(`wasm backend, ${threads} thread(s)`, () => {
    let started: Promise<Backend> | undefined;
    // The exact GEMV mode: these checks hold every product to f32 accuracy (kernels/test/gemvActivations.test.ts covers int16).
    const backend = () => (started ??= createWasmBackend({ threads, quantizedActivations: 'exact' }));
    afterAll(async () => (await started)?.destroy());

    it('reports its kind and threads', async () => {
      const be = await backend();
      expect(be.info.kind).toBe('wasm');
      expect(be.info.threads).toBe(threads);
      expect(be.info.name).toContain(`${threads} thread`);
    });

    for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
      for (const scales of format === 'q8' || format === 'q4' ? (['f32', 'f16'] as const) : (['f32'] as const)) {
        for (const [M, K, N] of [[1, 77, 37], [1, 1000, 130], [3, 77, 37], [6, 77, 37], [9, 300, 70]]) {
          it(`linear ${format}${format.startsWith('q') ? ` (${scales} scales)` : ''} ${M}×${K} → ${N}`, async () => {
            const be = await backend();
            const x = random(M * K, M + K);
            const host = hostMatrix(random(N * K, N, 0.5), N, K, format, scales);
            const bias = random(N, 3);
            const y = await be.read(be.linear(be.tensor(x, [M, K]), be.weight(host), be.tensor(bias, [N])));
            const magnitude = linearRef(absolute(x), absolute(valuesOf(host)), absolute(bias), M, K, N);
            expect(relErr(y, linearRef(x, valuesOf(host), bias, M, K, N), magnitude)).toBeLessThan(1e-5);
          });
        }
      }
    }

    it('a NaN or Inf in x reaches the output of the quantized GEMV, as in an f32 dot product', async () => {
      const be = await backend();
      const w = be.weight(quantize(random(3 * 40, 21), 3, 40, 'q4', 'f16'));
      for (const bad of [NaN, Infinity]) {
        const x = random(40, 22);
        x[35] = bad;
        const y = await be.read(be.linear(be.tensor(x, [1, 40]), w));
        expect(Array.from(y).every((v) => !Number.isFinite(v))).toBe(true);
      }
    });

    it('matmul, plain and with bᵀ', async () => {
      const be = await backend();
      const [M, K, N] = [7, 45, 19];
      const a = random(M * K, 1);
      const bT = random(N * K, 2);
      const b = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) b[k * N + n] = bT[n * K + k];
      const expected = linearRef(a, bT, null, M, K, N);
      const magnitude = linearRef(absolute(a), absolute(bT), null, M, K, N);
      const plain = await be.read(be.matmul(be.tensor(a, [M, K]), be.tensor(b, [K, N])));
      const transposed = await be.read(be.matmul(be.tensor(a, [M, K]), be.tensor(bT, [N, K]), { transposeB: true }));
      expect(relErr(plain, expected, magnitude)).toBeLessThan(1e-5);
      expect(relErr(transposed, expected, magnitude)).toBeLessThan(1e-5);
    });

    it('rmsnorm, layernorm with and without affine', async () => {
      const be = await backend();
      const [R, C] = [3, 37];
      const x = random(R * C, 4, 3);
      const w = random(C, 5);
      const b = random(C, 6);
      const rms = new Float64Array(R * C), ln = new Float64Array(R * C), plain = new Float64Array(R * C);
      for (let r = 0; r < R; r++) {
        const row = x.subarray(r * C, (r + 1) * C);
        const inv = 1 / Math.sqrt(row.reduce((s, v) => s + v * v, 0) / C + 1e-6);
        const mean = row.reduce((s, v) => s + v, 0) / C;
        const invStd = 1 / Math.sqrt(row.reduce((s, v) => s + (v - mean) ** 2, 0) / C + 1e-5);
        for (let c = 0; c < C; c++) {
          rms[r * C + c] = row[c] * inv * w[c];
          plain[r * C + c] = (row[c] - mean) * invStd;
          ln[r * C + c] = plain[r * C + c] * w[c] + b[c];
        }
      }
      const xt = be.tensor(x, [R, C]);
      // Normalized values are O(1) times the affine terms: errors are judged against those.
      expect(relErr(await be.read(be.rmsnorm(xt, be.tensor(w, [C]), 1e-6)), rms, 1)).toBeLessThan(1e-5);
      expect(relErr(await be.read(be.layernorm(xt, be.tensor(w, [C]), be.tensor(b, [C]), 1e-5)), ln, 2)).toBeLessThan(1e-5);
      expect(relErr(await be.read(be.layernorm(xt, null, null, 1e-5)), plain, 1)).toBeLessThan(1e-5);
    });

    it('softmax (with −∞) and argmax (first of ties)', async () => {
      const be = await backend();
      const x = Float32Array.of(1, 3, -Infinity, 3, 0.5, -2, 7, 7, 1, 0);
      const xt = be.tensor(x, [2, 5]);
      const expected = new Float64Array(10);
      for (let r = 0; r < 2; r++) {
        const row = Array.from(x.subarray(r * 5, r * 5 + 5));
        const max = Math.max(...row);
        const sum = row.reduce((s, v) => s + Math.exp(v - max), 0);
        row.forEach((v, c) => (expected[r * 5 + c] = Math.exp(v - max) / sum));
      }
      expect(relErr(await be.read(be.softmax(xt)), expected, 1e-7)).toBeLessThan(1e-6);
      expect(Array.from(await be.read(be.argmax(xt)))).toEqual([1, 1]);
    });

    it('siluMul, gelu erf and tanh, add and mul with a broadcast row', async () => {
      const be = await backend();
      const x = random(4 * 9, 7, 6);
      const u = random(9, 8);
      const xt = be.tensor(x, [4, 9]);
      const ut = be.tensor(u, [9]);
      const at = (i: number) => u[i % 9];
      const silu = Array.from(x, (v, i) => (v / (1 + Math.exp(-v))) * (i < 9 ? u[i] : 0));
      const gateRow = be.tensor(x.subarray(0, 9), [9]);
      expect(relErr(await be.read(be.siluMul(gateRow, ut)), silu.slice(0, 9))).toBeLessThan(1e-6);
      // x·Φ(x) through erfc, which keeps its relative accuracy for negative x.
      const geluErf = Array.from(x, (v) => 0.5 * v * erfc(-v / Math.SQRT2));
      // 1 + tanh(u) = 2 / (1 + e^{−2u}), which does not cancel for negative u.
      const geluTanh = Array.from(x, (v) => v / (1 + Math.exp(-2 * Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
      expect(relErr(await be.read(be.gelu(xt, 'erf')), geluErf, 1e-30)).toBeLessThan(1e-6);
      expect(relErr(await be.read(be.gelu(xt, 'tanh')), geluTanh, 1e-30)).toBeLessThan(2e-6);
      expect(Array.from(await be.read(be.add(xt, ut)))).toEqual(Array.from(x, (v, i) => Math.fround(v + at(i))));
      expect(Array.from(await be.read(be.mul(xt, ut)))).toEqual(Array.from(x, (v, i) => Math.fround(v * at(i))));
    });

    it('embedding rows of q4 and f16 tables, ids from the host and from a tensor', async () => {
      const be = await backend();
      const [V, D] = [11, 70];
      for (const format of ['q4', 'f16'] as const) {
        const host = hostMatrix(random(V * D, 9), V, D, format, 'f16');
        const values = valuesOf(host);
        const ids = Int32Array.of(10, 0, 3, 3);
        const expected = Array.from(ids).flatMap((id) => Array.from(values.subarray(id * D, (id + 1) * D)));
        const table = be.weight(host);
        expect(Array.from(await be.read(be.embedding(table, ids)))).toEqual(expected);
        expect(Array.from(await be.read(be.embedding(table, be.tensor(ids, [4]))))).toEqual(expected);
        await expectOmniError('BAD_INPUT', () => be.embedding(table, be.tensor(Int32Array.of(11), [1])));
      }
    });

    it('rotary, half style in place and interleaved into out', async () => {
      const be = await backend();
      const [T, H, D] = [3, 2, 8];
      const x = random(T * H * D, 10);
      const invFreq = Float32Array.of(1, 0.1);
      const positions = Int32Array.of(0, 5, 9);
      for (const style of ['half', 'interleaved'] as const) {
        const expected = Float64Array.from(x);
        for (let t = 0; t < T; t++) {
          for (let j = 0; j < 2; j++) {
            const angle = Math.fround(positions[t] * invFreq[j]);
            // heads: 1 — only the first head turns.
            const base = t * H * D;
            const [d1, d2] = style === 'half' ? [j, j + 2] : [2 * j, 2 * j + 1];
            expected[base + d1] = x[base + d1] * Math.cos(angle) - x[base + d2] * Math.sin(angle);
            expected[base + d2] = x[base + d2] * Math.cos(angle) + x[base + d1] * Math.sin(angle);
          }
        }
        const xt = be.tensor(x, [T, H, D]);
        const rope = { invFreq, stream: Int32Array.of(0, 0), style, heads: 1 };
        const pt = be.tensor(positions, [1, T]);
        const y = style === 'half' ? be.rotary(xt, pt, rope, xt) : be.rotary(xt, pt, rope);
        expect(relErr(await be.read(y), expected, 1)).toBeLessThan(1e-6);
      }
    });

    it('attention: causal GQA over a partly filled cache, and a block window', async () => {
      const be = await backend();
      const [T, Hq, Hkv, D, S, kvLength, queryStart] = [3, 4, 2, 12, 9, 7, 4];
      const q = random(T * Hq * D, 11, 2);
      const k = random(S * Hkv * D, 12, 2);
      const v = random(S * Hkv * D, 13);
      k.fill(NaN, kvLength * Hkv * D);
      v.fill(NaN, kvLength * Hkv * D);
      const reference = (visible: (i: number, j: number) => boolean) => {
        const y = new Float64Array(T * Hq * D);
        for (let i = 0; i < T; i++) {
          for (let h = 0; h < Hq; h++) {
            const g = Math.floor(h / (Hq / Hkv));
            const scores = [];
            for (let j = 0; j < kvLength; j++) {
              if (!visible(i, j)) continue;
              let s = 0;
              for (let d = 0; d < D; d++) s += q[(i * Hq + h) * D + d] * k[(j * Hkv + g) * D + d];
              scores.push({ j, s: s / Math.sqrt(D) });
            }
            const max = Math.max(...scores.map((e) => e.s));
            const sum = scores.reduce((a, e) => a + Math.exp(e.s - max), 0);
            for (const { j, s } of scores) {
              for (let d = 0; d < D; d++) y[(i * Hq + h) * D + d] += (Math.exp(s - max) / sum) * v[(j * Hkv + g) * D + d];
            }
          }
        }
        return y;
      };
      const run = (mask: Parameters<Backend['attention']>[3]['mask']) =>
        be.read(be.attention(be.tensor(q, [T, Hq, D]), be.tensor(k, [S, Hkv, D]), be.tensor(v, [S, Hkv, D]), { kvLength, mask }));
      expect(relErr(await run({ kind: 'causal', queryStart }), reference((i, j) => j <= queryStart + i), 1)).toBeLessThan(1e-5);
      expect(relErr(await run({ kind: 'blockWindow', blockSize: 2, back: 1, ahead: 0 }),
        reference((i, j) => Math.floor(j / 2) >= Math.floor(i / 2) - 1 && Math.floor(j / 2) <= Math.floor(i / 2)), 1)).toBeLessThan(1e-5);
    });

    it('conv1d with reflect padding, stride and dilation on a q8 weight', async () => {
      const be = await backend();
      const [L, Cin, Cout, kernel, stride, padding, dilation] = [15, 5, 6, 3, 2, 2, 2];
      const x = random(L * Cin, 14);
      const host = hostMatrix(random(Cout * Cin * kernel, 15), Cout, Cin * kernel, 'q8', 'f32');
      const w = valuesOf(host);
      const Lout = Math.floor((L + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
      const expected = new Float64Array(Lout * Cout);
      for (let t = 0; t < Lout; t++) {
        for (let co = 0; co < Cout; co++) {
          for (let ci = 0; ci < Cin; ci++) {
            for (let tap = 0; tap < kernel; tap++) {
              let src = t * stride + tap * dilation - padding;
              src = src < 0 ? -src : src >= L ? 2 * (L - 1) - src : src;
              expected[t * Cout + co] += x[src * Cin + ci] * w[co * Cin * kernel + ci * kernel + tap];
            }
          }
        }
      }
      const y = be.conv1d(be.tensor(x, [L, Cin]), be.weight(host), null, { kernel, stride, padding, dilation, padMode: 'reflect' });
      expect(y.shape).toEqual([Lout, Cout]);
      expect(relErr(await be.read(y), expected, 1e-2)).toBeLessThan(1e-5);
    });

    it('gatherRows, transpose, avgPoolRows, copy and reshape views', async () => {
      const be = await backend();
      const x = Int32Array.from({ length: 15 }, (_, i) => i * 7 - 20);
      const xt = be.tensor(x, [5, 3]);
      expect(Array.from(await be.read(be.gatherRows(xt, Int32Array.of(4, 0, 4))))).toEqual([64, 71, 78, -20, -13, -6, 64, 71, 78]);
      expect(Array.from(await be.read(be.transpose(xt)))).toEqual([0, 1, 2, 3, 4].flatMap((r) => [x[r * 3]]).concat(
        [0, 1, 2, 3, 4].map((r) => x[r * 3 + 1]), [0, 1, 2, 3, 4].map((r) => x[r * 3 + 2])));
      const f = be.tensor(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), [5, 2]);
      expect(Array.from(await be.read(be.avgPoolRows(f, 2)))).toEqual([2, 3, 6, 7]);
      const flat = be.reshape(f, [10]);
      be.copy(flat, flat, 0, 4, 6);
      expect(Array.from(await be.read(f, { offset: 2, count: 8 }))).toEqual([3, 4, 1, 2, 3, 4, 5, 6]);
    });

    it('unary functions and snakeBeta', async () => {
      const be = await backend();
      const x = Float32Array.of(-3, -0.5, 0, 1e-3, 0.7, 2, 9);
      const xt = be.tensor(x, [7]);
      const cases = [
        [{ kind: 'relu' }, (v: number) => Math.max(v, 0)],
        [{ kind: 'sigmoid' }, (v: number) => 1 / (1 + Math.exp(-v))],
        [{ kind: 'tanh' }, Math.tanh],
        [{ kind: 'silu' }, (v: number) => v / (1 + Math.exp(-v))],
        [{ kind: 'clamp', min: -1, max: Infinity }, (v: number) => Math.max(v, -1)],
        [{ kind: 'affine', scale: 2, shift: -1 }, (v: number) => 2 * v - 1],
      ] as const;
      for (const [fn, f] of cases) expect(relErr(await be.read(be.unary(xt, fn)), Array.from(x, f), 1e-6), fn.kind).toBeLessThan(2e-6);
      expect(Array.from(await be.read(be.unary(be.tensor(Float32Array.of(4, 2.25), [2]), { kind: 'sqrt' })))).toEqual([2, 1.5]);

      // Small arguments of the sine, then ones in the thousands (past 12000 the kernel falls back to libm).
      const [L, C, up, down] = [4, 2, [0.1, 0.4, 0.4, 0.1], [0.5, 0.5]];
      for (const [amplitude, alphaLog] of [[1, Float32Array.of(0.2, -0.3)], [200, Float32Array.of(4.5, 4.4)]] as const) {
        const sx = random(L * C, 16, amplitude);
        const betaLog = Float32Array.of(0.1, 0.4);
        const expected = new Float64Array(L * C);
        for (let c = 0; c < C; c++) {
          const s = [];
          for (let n = 0; n < 2 * L; n++) {
            let u = 0;
            for (let k = (n + 3) % 2; k < 4; k += 2) u += up[k] * sx[Math.min(Math.max((n + 3 - k) / 2 - 1, 0), L - 1) * C + c];
            u *= 2;
            // The sine's argument rounded to f32, as torch forms it.
            s.push(u + Math.sin(Math.fround(Math.fround(u) * Math.fround(Math.exp(alphaLog[c])))) ** 2 / (Math.exp(betaLog[c]) + 1e-9));
          }
          for (let t = 0; t < L; t++) expected[t * C + c] = 0.5 * s[2 * t] + 0.5 * s[Math.min(2 * t + 1, 2 * L - 1)];
        }
        const y = be.snakeBeta(be.tensor(sx, [L, C]), be.tensor(alphaLog, [C]), be.tensor(betaLog, [C]),
          { up: be.tensor(Float32Array.from(up), [4]), down: be.tensor(Float32Array.from(down), [2]) });
        // Judged against the sizes summed: |u| ≤ 2·amplitude and sin²/β ≤ 1.
        expect(relErr(await be.read(y), expected, 2 * amplitude + 1)).toBeLessThan(1e-5);
      }
    });

    it('grows the heap for a 300 MB tensor and reads it back', async () => {
      const be = await backend();
      const n = 75 * 2 ** 20;
      const big = be.empty([n]);
      const patch = be.tensor(Float32Array.of(1.5, -2.5), [2]);
      be.copy(patch, big, 0, n - 2, 2);
      expect(Array.from(await be.read(big, { offset: n - 3, count: 3 }))).toEqual([0, 1.5, -2.5]);
      be.dispose(big);
    });

    it('rejects wrong shapes, dtypes and foreign tensors, and reports heap exhaustion', async () => {
      const be = await backend();
      const w = be.weight({ format: 'f32', rows: 3, cols: 4, data: new Float32Array(12) });
      await expectOmniError('SHAPE_MISMATCH', () => be.linear(be.empty([1, 5]), w));
      await expectOmniError('WRONG_DTYPE', () => be.linear(be.empty([1, 4], 'i32'), w));
      await expectOmniError('SHAPE_MISMATCH', () => be.tensor(new Float32Array(3), [2, 2]));
      await expectOmniError('BAD_INPUT', () => be.add({ shape: [1], dtype: 'f32', size: 1, backend: 'wasm' } as Tensor, be.empty([1])));
      await expectOmniError('BAD_INPUT', () => be.unary(be.empty([2]), { kind: 'clamp', min: 2, max: 1 }));
      const shared = be.empty([2]);
      await expectOmniError('BAD_INPUT', () => be.softmax(shared, be.reshape(shared, [2])));
      await expectOmniError('BAD_INPUT', () => be.rmsnorm(be.empty([2]), be.empty([2]), NaN));
      await expectOmniError('NUMERIC', () => be.weight({ format: 'f16', rows: 1, cols: 2, data: Uint16Array.of(0x3c00, 0x7c00) }));
      const q8 = { format: 'q8', rows: 2, cols: 2, paddedCols: 32, data: new Uint8Array(64) } as const;
      await expectOmniError('NUMERIC', () => be.weight({ ...q8, scales: Uint16Array.of(0x3c00, 0x7e00) }));
      be.dispose(be.weight({ ...q8, scales: Float32Array.of(1, Infinity) }));
      await expectOmniError('OUT_OF_MEMORY', () => be.empty([2 ** 30 + 1]));
      const t = be.empty([4]);
      be.dispose(t);
      await expectOmniError('BAD_INPUT', () => be.read(t));
    });
  });
}
