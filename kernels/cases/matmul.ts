/** matmul: plain f32 a[M,K]·b[K,N], and a·bᵀ with b [N,K], at sizes that leave partial tiles. */
import type { Backend, Tensor } from '@omniweb/core';
import { absolute, compare, defineCase, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/** f32 sums over K ≤ 4097, judged against Σ|a||b| as in linear (see F32_SUM_BOUND there). */
const BOUND = 1e-5;

function matmulCase(M: number, K: number, N: number, transposeB: boolean, allocate = false): KernelCase {
  const name = `matmul/${M}×${K} · ${transposeB ? `(${N}×${K})ᵀ` : `${K}×${N}`}${allocate ? ', allocated out' : ''}`;
  return defineCase(name, 'matmul', BOUND, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const a = uniform(random, M * K);
    const b = uniform(random, K * N);
    const bShape = transposeB ? [N, K] : [K, N];
    const run = (be: Backend, av: Float32Array, bv: Float32Array, out?: Tensor) =>
      be.matmul(be.tensor(av, [M, K]), be.tensor(bv, bShape), { transposeB }, out);
    const actual = await backend.read(allocate ? run(backend, a, b) : run(backend, a, b, poisoned(backend, [M, N])));
    const expected = await oracle.read(run(oracle, a, b));
    const magnitude = await oracle.read(run(oracle, absolute(a), absolute(b)));
    return compare(actual, expected, magnitude as Float32Array);
  });
}

export const matmulCases: KernelCase[] = [
  matmulCase(1, 1, 1, false),
  matmulCase(3, 17, 33, false),
  matmulCase(33, 65, 17, true),
  matmulCase(17, 4097, 3, false),
  matmulCase(65, 33, 129, true),
  matmulCase(64, 64, 64, false, true),
  // Large enough for webgpu's tiled kernel (tuning.matmulPlan), both layouts of b.
  matmulCase(67, 129, 131, false),
  matmulCase(67, 129, 131, true),
  // M ≤ 16 taken whole per thread.
  matmulCase(13, 40, 70, true),
];
