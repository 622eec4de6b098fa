/** Row reductions that pick or weigh: softmax and argmax. */
import type { Backend, Tensor } from '@omniweb/core';
import { compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/**
 * exp in WGSL is good to 3 + 2|x| ulp, so a probability e^(x−max)/Σ keeps ~1e-6
 * relative for |x − max| ≲ 20 and 1e-5 up to ~80; below 1e-7 errors count
 * absolutely (those are far under any sampling threshold, and f32 flushes them anyway).
 */
const SOFTMAX_BOUND = 1e-5;
const SOFTMAX_FLOOR = 1e-7;

function softmaxCase(label: string, shape: number[], fill: (random: () => number, size: number) => Float32Array, allocate = false): KernelCase {
  const name = `softmax/${label}`;
  return defineCase(name, 'softmax', SOFTMAX_BOUND, async (backend, oracle) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const x = fill(seededRandom(seedOf(name)), size);
    const run = (be: Backend, out?: Tensor) => be.softmax(be.tensor(x, shape), out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, shape)));
    return compare(actual, await oracle.read(run(oracle)), SOFTMAX_FLOOR);
  });
}

/** Uniform logits with every seventh one masked to −∞, as a causal or vocabulary mask leaves them. */
function withMaskedLogits(random: () => number, size: number): Float32Array {
  const x = uniform(random, size, 5);
  for (let i = 3; i < size; i += 7) x[i] = -Infinity;
  return x;
}

/**
 * argmax is exact: the index must match the oracle's (first on ties), so the error is
 * the index difference judged against 1 and the bound is 0.
 */
function argmaxCase(label: string, rows: number, cols: number, prepare: (x: Float32Array, random: () => number) => void): KernelCase {
  const name = `argmax/${label}`;
  return defineCase(name, 'argmax', 0, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const x = uniform(random, rows * cols, 10);
    prepare(x, random);
    const run = (be: Backend, out?: Tensor) => be.argmax(be.tensor(x, [rows, cols]), out);
    const actual = await backend.read(run(backend, poisoned(backend, [rows], 'i32')));
    return compare(actual, await oracle.read(run(oracle)), 1);
  });
}

/** Copies each row's maximum to a later column and, in odd rows, to an earlier one: ties the kernel must break to the first. */
function tieMaxima(cols: number) {
  return (x: Float32Array, random: () => number) => {
    for (let r = 0; r < x.length / cols; r++) {
      const row = x.subarray(r * cols, (r + 1) * cols);
      const top = row.reduce((best, v, i) => (v > row[best] ? i : best), 0);
      if (top < cols - 1) row[top + 1 + Math.floor(random() * (cols - 1 - top))] = row[top];
      if (r % 2 === 1 && top > 0) row[Math.floor(random() * top)] = row[top];
    }
  };
}

export const softmaxCases: KernelCase[] = [
  softmaxCase('1×1', [1, 1], (random, n) => uniform(random, n)),
  softmaxCase('3×17', [3, 17], (random, n) => uniform(random, n, 3)),
  softmaxCase('2×4097', [2, 4097], (random, n) => uniform(random, n, 8)),
  // Logits of ±1000: exp without subtracting the row maximum overflows to ∞/∞ = NaN.
  softmaxCase('4×33 logits ±1000', [4, 33], (random, n) => uniform(random, n, 1000)),
  softmaxCase('3×151 with −∞ entries', [3, 151], withMaskedLogits),
  softmaxCase('[2, 3, 65] allocated out', [2, 3, 65], (random, n) => uniform(random, n, 4), true),
];

export const argmaxCases: KernelCase[] = [
  argmaxCase('1×1', 1, 1, () => {}),
  argmaxCase('3×17 with ties', 3, 17, tieMaxima(17)),
  argmaxCase('4×4097 with ties', 4, 4097, tieMaxima(4097)),
  argmaxCase('2×4097 maximum at the ends', 2, 4097, (x) => {
    x[4096] = 100;
    x[4097] = 100;
    x[2 * 4097 - 1] = 100;
  }),
  argmaxCase('5×33 constant rows', 5, 33, (x) => x.fill(-2.5)),
  argmaxCase('3×65 negative with −∞', 3, 65, (x) => {
    for (let i = 0; i < x.length; i++) x[i] = i % 5 === 0 ? -Infinity : -Math.abs(x[i]) - 1;
  }),
  argmaxCase('1×151936 vocabulary', 1, 151936, (x) => {
    x[151900] = 1e30;
  }),
];
