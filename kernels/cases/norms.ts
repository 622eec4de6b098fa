/** rmsnorm and layernorm over the last dimension, with and without affine parameters. */
import type { Backend, Tensor } from '@omniweb/core';
import { compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/**
 * A normalized value is O(1) times the weight, so errors are judged against
 * max(|y|, |w| + |b|): the f32 sums of squares over ≤ 4097 values and the inverse
 * square root (2 ulp in WGSL) stay well inside 1e-5 of that.
 */
const BOUND = 1e-5;
/**
 * Rows near 8 with spread ±1: the mean itself carries the f32 rounding of a sum of
 * values near 8 (≈5e-6 relative for a sequential sum of 256), while a one-pass
 * E[x²] − E[x]² loses ~1e-4 — this bound keeps the first and rejects the second.
 */
const OFFSET_BOUND = 2e-5;

interface NormShape { shape: number[]; scale?: number; offset?: number; eps: number; allocate?: boolean }

function affineFloor(rows: number, w: Float32Array | null, b: Float32Array | null): Float32Array {
  const cols = (w ?? b)?.length ?? 0;
  const floor = new Float32Array(rows * cols);
  for (let i = 0; i < floor.length; i++) floor[i] = Math.abs(w ? w[i % cols] : 1) + Math.abs(b ? b[i % cols] : 0);
  return floor;
}

function normCase(
  op: 'rmsnorm' | 'layernorm', label: string, spec: NormShape, affine: { w: boolean; b: boolean }, bound = BOUND,
): KernelCase {
  const name = `${op}/${label}`;
  return defineCase(name, op, bound, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const cols = spec.shape[spec.shape.length - 1];
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const x = uniform(random, size, spec.scale ?? 1, spec.offset ?? 0);
    const w = affine.w ? uniform(random, cols, 1, 1) : null;
    const b = affine.b ? uniform(random, cols) : null;
    const run = (be: Backend, out?: Tensor) => {
      const xt = be.tensor(x, spec.shape);
      const wt = w && be.tensor(w, [cols]);
      return op === 'rmsnorm'
        ? be.rmsnorm(xt, wt!, spec.eps, out)
        : be.layernorm(xt, wt, b && be.tensor(b, [cols]), spec.eps, out);
    };
    const actual = await backend.read(spec.allocate ? run(backend) : run(backend, poisoned(backend, spec.shape)));
    const expected = await oracle.read(run(oracle));
    const floor = affineFloor(size / cols, w ?? new Float32Array(cols).fill(1), b);
    return compare(actual, expected, floor);
  });
}

export const normCases: KernelCase[] = [
  normCase('rmsnorm', '1×4097', { shape: [1, 4097], eps: 1e-6 }, { w: true, b: false }),
  normCase('rmsnorm', '3×17', { shape: [3, 17], eps: 1e-6 }, { w: true, b: false }),
  normCase('rmsnorm', '17×1', { shape: [17, 1], eps: 1e-6 }, { w: true, b: false }),
  normCase('rmsnorm', '[2, 3, 128] allocated out', { shape: [2, 3, 128], eps: 1e-6, allocate: true }, { w: true, b: false }),
  normCase('rmsnorm', '5×2048 values ±1e4', { shape: [5, 2048], scale: 1e4, eps: 1e-6 }, { w: true, b: false }),
  // Values near 1e-3: eps is no longer negligible, so a kernel that drops or misplaces it fails.
  normCase('rmsnorm', '4×33 values ±1e-3, eps 1e-6', { shape: [4, 33], scale: 1e-3, eps: 1e-6 }, { w: true, b: false }),
  normCase('layernorm', '1×4097 affine', { shape: [1, 4097], eps: 1e-5 }, { w: true, b: true }),
  normCase('layernorm', '3×17 no affine', { shape: [3, 17], eps: 1e-5 }, { w: false, b: false }),
  normCase('layernorm', '33×1280 weight only', { shape: [33, 1280], eps: 1e-5 }, { w: true, b: false }),
  normCase('layernorm', '[2, 3, 64] allocated out', { shape: [2, 3, 64], eps: 1e-6, allocate: true }, { w: true, b: true }),
  normCase('layernorm', '6×256 rows near 8', { shape: [6, 256], offset: 8, eps: 1e-5 }, { w: true, b: true }, OFFSET_BOUND),
  normCase('layernorm', '2×3 values ±1e-3, eps 1e-5', { shape: [2, 3], scale: 1e-3, eps: 1e-5 }, { w: false, b: false }),
];
