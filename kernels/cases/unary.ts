/** unary: relu, sigmoid, tanh, silu, sqrt, clamp and affine, elementwise over any shape. */
import type { Backend, Tensor, UnaryFunction } from '@omniweb/core';
import { absolute, compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

const SHAPES: readonly number[][] = [[1], [3, 17], [4097], [2, 3, 33]];

interface UnarySpec {
  fn: UnaryFunction;
  bound: number;
  /** Inputs are uniform in [low, high). */
  low: number;
  high: number;
  /** Inputs at the edges of the function's range: saturation, underflow, zero. */
  extremes: readonly number[];
  /** Per-element scale below which errors count absolutely (the case's floor for `compare`). */
  floor(x: Float32Array, fn: UnaryFunction): Float32Array | number;
}

/** Judged against |y|, or against |x| times a small factor where the result underflows toward 0. */
const relativeTo = (factor: number) => (x: Float32Array) => absolute(x).map((v) => factor * v);

const SPECS: readonly UnarySpec[] = [
  // max/min/select are exact.
  { fn: { kind: 'relu' }, bound: 0, low: -4, high: 4, extremes: [0, -0, 1e-30, -1e-30, 3e38, -3e38], floor: () => 0 },
  { fn: { kind: 'clamp', min: -1, max: 0.5 }, bound: 0, low: -3, high: 3, extremes: [-1, 0.5, -1.0000001, 0.50000006, 0], floor: () => 0 },
  // Open on one side: ECAPA's std clamp and the mel floor of BigVGAN.
  { fn: { kind: 'clamp', min: 1e-12, max: Infinity }, bound: 0, low: -1e-11, high: 1e-11, extremes: [0, 1e-12, 3e38], floor: () => 0 },
  // Two f32 roundings (product, then sum) against one in the oracle: judged against |scale·x| + |shift|.
  {
    fn: { kind: 'affine', scale: -0.37, shift: 1.5 }, bound: 2.5e-7, low: -8, high: 8, extremes: [0, 4.0540540, -1e30],
    floor: (x, fn) => {
      const { scale, shift } = fn as { scale: number; shift: number };
      return x.map((v) => Math.abs(scale * v) + Math.abs(shift));
    },
  },
  // e^-x in WGSL carries 3 + 2|x| ulp: relative 1e-5 down to y ≈ 1e-6, absolute below.
  { fn: { kind: 'sigmoid' }, bound: 1e-5, low: -12, high: 12, extremes: [0, 100, -100, 88.8, -88.8, 1e-30], floor: () => 1e-6 },
  // Relative to |y| over the whole range, near 0 too (a naive 1 − 2/(e^2x + 1) cancels there).
  { fn: { kind: 'tanh' }, bound: 2e-6, low: -3, high: 3, extremes: [0, -0, 1e-30, -1e-30, 1e-3, 0.1, -0.2, 20, -20, 100, -100], floor: () => 0 },
  { fn: { kind: 'silu' }, bound: 1e-5, low: -12, high: 12, extremes: [0, 100, -100, 88.8, -88.8, 40, -40, 1e-30], floor: relativeTo(1e-6) },
  { fn: { kind: 'sqrt' }, bound: 1e-6, low: 0, high: 16, extremes: [0, 1e-30, 1e-12, 3e38, 2], floor: () => 0 },
];

function label(fn: UnaryFunction): string {
  switch (fn.kind) {
    case 'clamp': return `clamp [${fn.min}, ${fn.max}]`;
    case 'affine': return `affine ${fn.scale}·x + ${fn.shift}`;
    default: return fn.kind;
  }
}

function unaryCase(spec: UnarySpec, shape: readonly number[] | null, allocate: boolean): KernelCase {
  const name = `unary/${label(spec.fn)} ${shape ? `[${shape.join(', ')}]${allocate ? ' allocated out' : ''}` : 'extreme inputs'}`;
  return defineCase(name, 'unary', spec.bound, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const dims = shape ?? [spec.extremes.length];
    const size = dims.reduce((a, b) => a * b, 1);
    const x = shape
      ? uniform(random, size, (spec.high - spec.low) / 2, (spec.high + spec.low) / 2)
      : Float32Array.from(spec.extremes);
    const run = (be: Backend, out?: Tensor) => be.unary(be.tensor(x, dims), spec.fn, out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, dims)));
    return compare(actual, await oracle.read(run(oracle)), spec.floor(x, spec.fn));
  });
}

export const unaryCases: KernelCase[] = [
  ...SPECS.flatMap((spec) => [
    ...SHAPES.map((shape, i) => unaryCase(spec, shape, i === SHAPES.length - 1)),
    unaryCase(spec, null, false),
  ]),
];
