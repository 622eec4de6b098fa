// The wasm GEMV against q8/q4 weights in its two activation modes (kernels/wasm/linear.c):
// 'int16', 'int8' and 'auto' (int8 for q4, int16 for q8) must equal an f32 product with the
// activations rounded as the kernel documents (emulated here), and stay within its stated
// bound of the exact product; 'exact' must equal the f32 product itself. Odd sizes, both
// scale types, 1 and 2 threads.
import { afterAll, describe, expect, it } from 'vitest';
import { isOmniError, quantize, toF16Array, type Backend, type QuantizedActivations } from '@omniweb/core';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend } from '../../packages/core/src/wasm/index.js';
import { createOracleBackend } from '@omniweb/kernels';
import { absolute, compare, matrixValues, seedOf, seededRandom, uniform } from '../cases/harness.js';
import { groupMagnitude } from '../cases/linear.js';

const GROUP = 32;
/** f32 summation over K ≤ 4097 (kernels/cases/linear.ts). */
const F32_SUM_BOUND = 1e-5;

/** Round half to even, as f32x4.nearest. */
function nearestEven(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The largest |q| of each one-part mode (linear.c): 15 bits for 'int16', 8 for 'int8'. */
const TOP = { int16: 16383, int8: 127 } as const;

/** x [M, K] as a one-part mode rounds it: per group of 32, s = max|x|/top and s·round(x·(top/max|x|)), in f32 steps. */
function roundedActivations(x: Float32Array, M: number, K: number, top: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let m = 0; m < M; m++) {
    for (let k0 = 0; k0 < K; k0 += GROUP) {
      const end = Math.min(K, k0 + GROUP);
      let peak = 0;
      for (let k = k0; k < end; k++) peak = Math.max(peak, Math.abs(x[m * K + k]));
      const scale = Math.fround(peak / top);
      const inv = peak > 0 ? Math.fround(top / peak) : 0;
      for (let k = k0; k < end; k++) out[m * K + k] = nearestEven(Math.fround(x[m * K + k] * inv)) * scale;
    }
  }
  return out;
}

// Products under 256 KB of weights run on one thread (linear.c GEMV_SERIAL_BYTES); 1×1000 → 2053 is split across the pool.
const SHAPES: readonly [number, number, number][] = [[1, 4097, 17], [1, 33, 1031], [3, 257, 65], [4, 1, 3], [2, 31, 9], [1, 1000, 2053]];
const VARIANTS = [['q8', 'f32'], ['q8', 'f16'], ['q4', 'f32'], ['q4', 'f16']] as const;
const oracle = createOracleBackend();

async function product(be: Backend, x: Float32Array, M: number, K: number, host: ReturnType<typeof quantize>, bias: Float32Array): Promise<Float32Array> {
  const xs = be.tensor(x, [M, K]);
  const w = be.weight(host);
  const b = be.tensor(bias, [host.rows]);
  const y = be.linear(xs, w, b);
  const out = (await be.read(y)) as Float32Array;
  for (const t of [xs, w, b, y]) be.dispose(t);
  return out;
}

function magnitude(x: Float32Array, w: Float32Array, bias: Float32Array, M: number, K: number, N: number): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let sum = Math.abs(bias[n]);
      for (let k = 0; k < K; k++) sum += Math.abs(x[m * K + k] * w[n * K + k]);
      out[m * N + n] = sum;
    }
  }
  return out;
}

for (const threads of [1, 2]) {
  for (const mode of ['int16', 'int8', 'auto', 'exact'] as const satisfies readonly QuantizedActivations[]) {
    describe(`wasm quantized GEMV, ${mode} activations, ${threads} thread(s)`, () => {
      let started: Promise<Backend> | undefined;
      const backend = () => (started ??= createWasmBackend({ threads, quantizedActivations: mode }));
      afterAll(async () => (await started)?.destroy());

      it('names its mode', async () => {
        expect((await backend()).info.name).toContain(`${mode} q8/q4 GEMV activations`);
      });

      for (const [format, scales] of VARIANTS) {
        for (const [M, K, N] of SHAPES) {
          it(`${format} (${scales} scales) ${M}×${K} → ${N} + bias`, async () => {
            const be = await backend();
            const name = `${mode} ${format} ${scales} ${M} ${K} ${N}`;
            const random = seededRandom(seedOf(name));
            const x = uniform(random, M * K);
            // A few outliers per row: groups whose largest |x| dwarfs the rest, where rounding to the group's step shows most.
            for (let i = 0; i < x.length; i += 37) x[i] *= 40;
            const host = quantize(uniform(random, N * K, 0.5), N, K, format, scales);
            const bias = uniform(random, N);
            const w = matrixValues(host);
            const actual = await product(be, x, M, K, host, bias);
            const exact = await product(oracle, x, M, K, host, bias);
            if (mode === 'exact') {
              expect(compare(actual, exact, magnitude(x, w, bias, M, K, N))).toBeLessThanOrEqual(F32_SUM_BOUND);
              return;
            }
            const top = TOP[mode === 'auto' ? (format === 'q4' ? 'int8' : 'int16') : mode];
            const rounded = roundedActivations(x, M, K, top);
            const emulated = await product(oracle, rounded, M, K, host, bias);
            expect(compare(actual, emulated, magnitude(rounded, w, bias, M, K, N))).toBeLessThanOrEqual(F32_SUM_BOUND);
            // The documented bound: (1/(2·top))·Σ_g max_g|x|·Σ_{i∈g}|w_i| from the exact product, plus f32 summation.
            const groups = groupMagnitude(x, absolute(w), M, K, N);
            const sums = magnitude(x, w, bias, M, K, N);
            for (let i = 0; i < actual.length; i++) {
              expect(Math.abs(actual[i] - exact[i])).toBeLessThanOrEqual(groups[i] / (2 * top) + F32_SUM_BOUND * sums[i]);
            }
          });
        }
      }

      it('linears gives each weight the bits linear gives it (one pool job over several weights)', async () => {
        const be = await backend();
        // q/k/v-like parts (257 blocks: a lone block mid-job) sharing x, with biases, over the pool's threshold.
        const [K, rows] = [1000, [1027, 13, 1030]];
        for (const [format, scales] of [...VARIANTS, ['f32', 'f32'], ['f16', 'f32']] as const) {
          const random = seededRandom(seedOf(`linears ${mode} ${format} ${scales}`));
          const x = be.tensor(uniform(random, K), [1, K]);
          const parts = rows.map((N) => {
            const values = uniform(random, N * K, 0.5);
            const host = format === 'f32' ? { format, rows: N, cols: K, data: values } as const
              : format === 'f16' ? { format, rows: N, cols: K, data: toF16Array(values) } as const
              : quantize(values, N, K, format, scales);
            return { w: be.weight(host), bias: be.tensor(uniform(random, N), [N]), out: be.empty([1, N]) };
          });
          const shared = be.linears(x, parts);
          for (const [i, p] of parts.entries()) {
            const alone = await be.read(be.linear(x, p.w, p.bias));
            expect(Array.from(await be.read(shared[i])), `${format} (${scales} scales) part ${i}`).toEqual(Array.from(alone));
          }
        }
      });

      it('a NaN or Inf in x gives non-finite outputs', async () => {
        const be = await backend();
        for (const format of ['q8', 'q4'] as const) {
          const host = quantize(uniform(seededRandom(5), 3 * 70, 0.5), 3, 70, format, 'f16');
          for (const bad of [NaN, Infinity, -Infinity]) {
            const x = uniform(seededRandom(6), 70);
            x[65] = bad;
            const y = await product(be, x, 1, 70, host, new Float32Array(3));
            expect(Array.from(y).every((v) => !Number.isFinite(v)), `${format} ${bad}`).toBe(true);
          }
        }
      });
    });
  }
}

describe('activation modes', () => {
  it('int16 and exact give different products (the mode reaches the kernel)', async () => {
    const [a, b] = await Promise.all([createWasmBackend({ threads: 1, quantizedActivations: 'int16' }), createWasmBackend({ threads: 1, quantizedActivations: 'exact' })]);
    try {
      const x = uniform(seededRandom(9), 256);
      const host = quantize(uniform(seededRandom(10), 64 * 256, 0.5), 64, 256, 'q8');
      const bias = new Float32Array(64);
      const [ya, yb] = [await product(a, x, 1, 256, host, bias), await product(b, x, 1, 256, host, bias)];
      expect(ya.some((v, i) => v !== yb[i])).toBe(true);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  it('an unknown mode is refused with BAD_INPUT', async () => {
    for (const mode of ['int4', '', null, 1]) {
      const error = await createWasmBackend({ quantizedActivations: mode as unknown as QuantizedActivations }).then(() => null, (e: unknown) => e);
      expect(isOmniError(error) && error.code, String(mode)).toBe('BAD_INPUT');
    }
  });
});
