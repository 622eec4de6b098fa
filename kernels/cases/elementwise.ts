/** Elementwise ops: siluMul, gelu (erf and tanh), and add/mul with row broadcast. */
import type { Backend, Tensor } from '@omniweb/core';
import { absolute, compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

const SHAPES: readonly number[][] = [[1], [3, 17], [4097], [2, 3, 33]];

function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function label(shape: readonly number[], allocate: boolean): string {
  return `[${shape.join(', ')}]${allocate ? ' allocated out' : ''}`;
}

/** Gate values that make a naive sigmoid overflow: e^100 / (1 + e^100) is ∞/∞. */
const EXTREME_GATES = [0, 100, -100, 88.8, -88.8, 40, -40, 1e-30];

/**
 * silu(g)·u: the sigmoid goes through exp (3 + 2|x| ulp in WGSL), ≲ 1e-5 relative for
 * |g| ≤ 40; below 1e-6·|u| (where the sigmoid underflows anyway) errors count absolutely.
 */
const SILU_BOUND = 1e-5;

function siluMulCase(shape: number[], allocate: boolean, gates?: readonly number[]): KernelCase {
  const name = `siluMul/${gates ? 'extreme gates' : label(shape, allocate)}`;
  return defineCase(name, 'siluMul', SILU_BOUND, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const gate = gates ? Float32Array.from(gates) : uniform(random, sizeOf(shape), 8);
    const up = uniform(random, gate.length, 2);
    const dims = gates ? [gates.length] : shape;
    const run = (be: Backend, out?: Tensor) => be.siluMul(be.tensor(gate, dims), be.tensor(up, dims), out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, dims)));
    return compare(actual, await oracle.read(run(oracle)), absolute(up).map((u) => 1e-6 * u));
  });
}

/** Inputs where 1 + erf and tanh saturate, plus tiny and zero ones. */
const EXTREME_GELU_INPUTS = [0, -0, 1e-20, -1e-20, 20, -20, 100, -100, 10, -10, 5.5, -5.5];

/**
 * 0.5·x·(1 + erf(x/√2)) in f32 cancels for negative x (1 + erf → 0), so all an f32
 * kernel — or torch — promises there is an absolute error of a few 2^-24·|x|: errors are
 * judged against max(|y|, |x|). Erf approximations good to ~1e-7 pass; the tanh form
 * differs from the erf form by up to ~2e-4·|x|, so swapping them fails.
 */
const GELU_BOUND = 1e-5;

function geluCase(mode: 'erf' | 'tanh', shape: number[], allocate: boolean, inputs?: readonly number[]): KernelCase {
  const name = `gelu/${mode} ${inputs ? 'saturating inputs' : label(shape, allocate)}`;
  return defineCase(name, 'gelu', GELU_BOUND, async (backend, oracle) => {
    const x = inputs ? Float32Array.from(inputs) : uniform(seededRandom(seedOf(name)), sizeOf(shape), 6);
    const dims = inputs ? [inputs.length] : shape;
    const run = (be: Backend, out?: Tensor) => be.gelu(be.tensor(x, dims), mode, out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, dims)));
    return compare(actual, await oracle.read(run(oracle)), absolute(x));
  });
}

/** IEEE f32 + and × are correctly rounded (WGSL and wasm both), as is the oracle's f64 result rounded once: bound 0. */
function binaryCase(op: 'add' | 'mul', shape: number[], broadcast: boolean, allocate: boolean): KernelCase {
  const name = `${op}/${label(shape, allocate)} ${broadcast ? '+ one broadcast row' : 'same shape'}`;
  return defineCase(name, op, 0, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const bShape = broadcast ? [shape[shape.length - 1]] : shape;
    const a = uniform(random, sizeOf(shape), 3);
    const b = uniform(random, sizeOf(bShape), 3);
    const run = (be: Backend, out?: Tensor) => be[op](be.tensor(a, shape), be.tensor(b, bShape), out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, shape)));
    return compare(actual, await oracle.read(run(oracle)));
  });
}

export const elementwiseCases: KernelCase[] = [
  ...SHAPES.map((shape, i) => siluMulCase(shape, i === SHAPES.length - 1)),
  siluMulCase([], false, EXTREME_GATES),
  ...(['erf', 'tanh'] as const).flatMap((mode) => [
    ...SHAPES.map((shape, i) => geluCase(mode, shape, i === SHAPES.length - 1)),
    geluCase(mode, [], false, EXTREME_GELU_INPUTS),
  ]),
  ...(['add', 'mul'] as const).flatMap((op) => [
    binaryCase(op, [1], false, false),
    binaryCase(op, [3, 17], true, false),
    binaryCase(op, [4097], false, false),
    binaryCase(op, [2, 3, 33], true, true),
    binaryCase(op, [33, 4097], true, false),
    binaryCase(op, [5, 1], false, true),
  ]),
];
