/**
 * linear: y = x·Wᵀ + b for every weight format, at the GEMV (M = 1) and batched paths.
 * Quantized weights go to both backends in the same host form, so the oracle multiplies
 * by exactly the values the kernel dequantizes and only summation error remains.
 */
import { QUANT_GROUP, type Backend, type HostMatrix, type Tensor } from '@omniweb/core';
import {
  WEIGHT_VARIANTS, absolute, compare, defineCase, hostMatrix, matrixValues, poisoned, seedOf, seededRandom,
  uniform, variantName, weightBound, type KernelCase, type WeightVariant,
} from './harness.js';

/**
 * f32 sums over K: each partial sum rounds to 2^-24 of its size, which stays far below
 * 1e-5 of Σ|x||w| for K ≤ 4097 whatever the summation order; dropping or doubling one
 * term of 4096 costs ~2e-4, so the bound still catches an off-by-one.
 */
const F32_SUM_BOUND = 1e-5;

/**
 * A GEMV (1–12 rows) against q8/q4 weights may round each group of 32 activations to one
 * 15-bit part (the wasm backend's 'int16' mode, which the kernel suites run; its default
 * 'auto' rounds to 8 bits against q4, held to its exact rounding by
 * kernels/test/gemvActivations.test.ts): each output then moves by up to
 * (1/32766)·Σ_g max_g|x|·Σ_{i∈g}|w_i|. Those products are judged against that per-group
 * scale (`groupMagnitude`), to 1/32766 plus the f32 sum bound, rounded up.
 */
const QUANTIZED_GEMV_BOUND = 5e-5;
const QUANTIZED_GEMV_MAX_ROWS = 12;

/** Σ_g max_{k∈g}|x_mk| · Σ_{k∈g}|w_nk| (+ |b_n|) for every output [m, n]; x [M, K], w [N, K]. */
export function groupMagnitude(x: Float32Array, w: Float32Array, M: number, K: number, N: number, bias?: Float32Array | null): Float64Array {
  const groups = Math.ceil(K / QUANT_GROUP);
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    const peaks = new Float64Array(groups);
    for (let k = 0; k < K; k++) peaks[Math.floor(k / QUANT_GROUP)] = Math.max(peaks[Math.floor(k / QUANT_GROUP)], Math.abs(x[m * K + k]));
    for (let n = 0; n < N; n++) {
      let sum = 0;
      for (let k = 0; k < K; k++) sum += peaks[Math.floor(k / QUANT_GROUP)] * Math.abs(w[n * K + k]);
      out[m * N + n] = sum + (bias ? Math.abs(bias[n]) : 0);
    }
  }
  return out;
}

interface LinearShape { leading: number[]; K: number; N: number; bias: boolean; allocate?: boolean }

/** Whether a product of M rows runs the quantized GEMV, which may round activations (see QUANTIZED_GEMV_BOUND). */
function roundsActivations(variant: WeightVariant, M: number): boolean {
  return (variant.format === 'q8' || variant.format === 'q4') && M <= QUANTIZED_GEMV_MAX_ROWS;
}

function productBound(variant: WeightVariant, M: number) {
  return roundsActivations(variant, M) ? QUANTIZED_GEMV_BOUND : weightBound(variant.format, F32_SUM_BOUND);
}

/** actual against the oracle's x [M, K] · Wᵀ (+ bias), each output judged at its own scale (Σ|x||w|, or per group). */
async function productError(
  oracle: Backend, variant: WeightVariant, actual: Float32Array | Int32Array, expected: Float32Array | Int32Array,
  x: Float32Array, host: HostMatrix, bias: Float32Array | null, M: number, K: number,
): Promise<number> {
  const N = host.rows;
  if (roundsActivations(variant, M)) return compare(actual, expected, groupMagnitude(x, absolute(matrixValues(host)), M, K, N, bias));
  const magnitude = await oracle.read(oracle.linear(
    oracle.tensor(absolute(x), [M, K]),
    oracle.weight({ format: 'f32', rows: N, cols: K, data: absolute(matrixValues(host)) }),
    bias && oracle.tensor(absolute(bias), [N]),
  ));
  return compare(actual, expected, magnitude as Float32Array);
}

function linearCase(label: string, variant: WeightVariant, shape: LinearShape): KernelCase {
  const name = `linear/${variantName(variant)} ${label}`;
  const { leading, K, N } = shape;
  const M = leading.reduce((a, b) => a * b, 1);
  return defineCase(name, 'linear', productBound(variant, M), async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const x = uniform(random, M * K);
    const host = hostMatrix(uniform(random, N * K, 0.5), N, K, variant);
    const bias = shape.bias ? uniform(random, N) : null;
    const outShape = [...leading, N];
    const run = (b: Backend, out?: Tensor) =>
      b.linear(b.tensor(x, [...leading, K]), b.weight(host), bias && b.tensor(bias, [N]), out);
    const actual = await backend.read(shape.allocate ? run(backend) : run(backend, poisoned(backend, outShape)));
    const expected = await oracle.read(run(oracle));
    return productError(oracle, variant, actual, expected, x, host, bias, M, K);
  });
}

/**
 * linears: several weights of one x (rows[i] outputs each, the first with a bias), every
 * output checked as linear's. Odd block counts put a lone 4-row block inside the shared job.
 */
function linearsCase(label: string, variant: WeightVariant, M: number, K: number, rows: readonly number[]): KernelCase {
  const name = `linears/${variantName(variant)} ${label}`;
  return defineCase(name, 'linears', productBound(variant, M), async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const x = uniform(random, M * K);
    const hosts = rows.map((N) => hostMatrix(uniform(random, N * K, 0.5), N, K, variant));
    const biases = rows.map((N, i) => (i === 0 ? uniform(random, N) : null));
    const run = (b: Backend, outs: Tensor[]) => b.linears(b.tensor(x, [M, K]), hosts.map((host, i) => ({
      w: b.weight(host), bias: biases[i] && b.tensor(biases[i], [rows[i]]), out: outs[i],
    })));
    const actual = run(backend, rows.map((N) => poisoned(backend, [M, N])));
    const expected = run(oracle, rows.map((N) => oracle.empty([M, N])));
    let worst = 0;
    for (const [i, host] of hosts.entries()) {
      const error = await productError(oracle, variant, await backend.read(actual[i]), await oracle.read(expected[i]), x, host, biases[i], M, K);
      worst = Math.max(worst, error);
    }
    return worst;
  });
}

const perFormat: KernelCase[] = WEIGHT_VARIANTS.flatMap((variant) => [
  linearCase('gemv 1×4097 → 17', variant, { leading: [1], K: 4097, N: 17, bias: false }),
  linearCase('gemv 1×33 → 4097 + bias', variant, { leading: [1], K: 33, N: 4097, bias: true }),
  linearCase('33×65 → 67 + bias', variant, { leading: [33], K: 65, N: 67, bias: true }),
  linearCase('3×1 → 3', variant, { leading: [3], K: 1, N: 3, bias: false }),
  // The kernel follows the shape (webgpu tuning.matmulPlan): M ≤ 16 taken whole per thread,
  // short K over many outputs, and a product large enough for the tiled kernel.
  linearCase('9×40 → 70 + bias', variant, { leading: [9], K: 40, N: 70, bias: true }),
  linearCase('37×32 → 2053 + bias', variant, { leading: [37], K: 32, N: 2053, bias: true }),
  linearCase('40×72 → 521 + bias', variant, { leading: [40], K: 72, N: 521, bias: true }),
]);

export const linearCases: KernelCase[] = [
  ...perFormat,
  linearCase('gemv 1×1 → 1 + bias', { format: 'f32' }, { leading: [1], K: 1, N: 1, bias: true }),
  linearCase('gemv 4096×4096', { format: 'f32' }, { leading: [1], K: 4096, N: 4096, bias: false }),
  // lm_head of the tiny checkpoint: short K, a vocabulary of outputs (one thread per output).
  linearCase('gemv 1×32 → 151936 + bias', { format: 'f32' }, { leading: [1], K: 32, N: 151936, bias: true }),
  linearCase('gemv 2×256 → 1031', { format: 'q4', scales: 'f16' }, { leading: [2], K: 256, N: 1031, bias: false }),
  linearCase('gemv 4×257 → 65', { format: 'q8', scales: 'f32' }, { leading: [4], K: 257, N: 65, bias: true }),
  // Few outputs per row over many rows (N ≤ 16: blocks of 4 rows × ≤ 4 outputs per thread).
  linearCase('203×64 → 6 + bias', { format: 'f32' }, { leading: [203], K: 64, N: 6, bias: true }),
  linearCase('rank-3 [2, 3, 64] → 65, allocated out', { format: 'f32' }, { leading: [2, 3], K: 64, N: 65, bias: true, allocate: true }),
  // A decode step's q/k/v (257 blocks: odd) and gate/up, in one job of the pool where they share x.
  ...WEIGHT_VARIANTS.flatMap((variant) => [
    linearsCase('gemv 1×1000 → 1027, 13, 1030', variant, 1, 1000, [1027, 13, 1030]),
    linearsCase('gemv 1×33 → 9, 8', variant, 1, 33, [9, 8]),
    linearsCase('3×70 → 21, 64', variant, 3, 70, [21, 64]),
  ]),
];
