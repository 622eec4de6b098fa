/** Data movement: copy, reshape views, gatherRows, transpose, and avgPoolRows. */
import type { Backend, Tensor } from '@omniweb/core';
import { compare, defineCase, integers, poisoned, seedOf, seededRandom, uniform, type KernelCase } from './harness.js';

/** Moving data changes no value: every layout case but avgPoolRows is exact (bound 0). */
const EXACT = 0;

function randomOf(dtype: 'f32' | 'i32', random: () => number, count: number): Float32Array | Int32Array {
  return dtype === 'f32' ? uniform(random, count) : integers(random, count, 1 << 30);
}

function copyCase(dtype: 'f32' | 'i32', srcSize: number, dstSize: number, srcOffset: number, dstOffset: number, count: number): KernelCase {
  const name = `copy/${dtype} ${count} of ${srcSize} from ${srcOffset} to ${dstOffset} of ${dstSize}`;
  return defineCase(name, 'copy', EXACT, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const src = randomOf(dtype, random, srcSize);
    const dst = randomOf(dtype, random, dstSize);
    // The whole destination is compared: what lies outside the range must be untouched.
    const run = async (be: Backend) => {
      const d = be.tensor(dst, [dstSize]);
      be.copy(be.tensor(src, [srcSize]), d, srcOffset, dstOffset, count);
      return be.read(d);
    };
    return compare(await run(backend), await run(oracle), 1);
  });
}

/** A write through a reshaped view must land in the original, and ops must read a view with its new shape. */
const reshapeCase = defineCase('reshape/[6, 35] viewed as [3, 70] and [210]', 'reshape', EXACT, async (backend, oracle) => {
  const random = seededRandom(seedOf('reshape'));
  const x = uniform(random, 210);
  const patch = uniform(random, 5);
  const run = async (be: Backend) => {
    const original = be.tensor(x, [6, 35]);
    be.copy(be.tensor(patch, [5]), be.reshape(original, [210]), 0, 205, 5);
    const flipped = be.transpose(be.reshape(original, [3, 70]));
    return Float32Array.from([...(await be.read(original)), ...(await be.read(flipped))]);
  };
  return compare(await run(backend), await run(oracle), 1);
});

function gatherRowsCase(dtype: 'f32' | 'i32', R: number, C: number, n: number, idsAs: 'array' | 'tensor'): KernelCase {
  const name = `gatherRows/${dtype} ${n} of ${R}×${C}, ids as ${idsAs}`;
  return defineCase(name, 'gatherRows', EXACT, async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const x = randomOf(dtype, random, R * C);
    const idx = integers(random, n, R);
    idx[0] = R - 1;
    if (n > 2) idx[n - 1] = idx[1];
    const run = (be: Backend, out?: Tensor) =>
      be.gatherRows(be.tensor(x, [R, C]), idsAs === 'array' ? idx : be.tensor(idx, [n]), out);
    const actual = await backend.read(run(backend, poisoned(backend, [n, C], dtype)));
    return compare(actual, await oracle.read(run(oracle)), 1);
  });
}

function transposeCase(dtype: 'f32' | 'i32', M: number, N: number, allocate = false): KernelCase {
  const name = `transpose/${dtype} ${M}×${N}${allocate ? ', allocated out' : ''}`;
  return defineCase(name, 'transpose', EXACT, async (backend, oracle) => {
    const x = randomOf(dtype, seededRandom(seedOf(name)), M * N);
    const run = (be: Backend, out?: Tensor) => be.transpose(be.tensor(x, [M, N]), out);
    const actual = await backend.read(allocate ? run(backend) : run(backend, poisoned(backend, [N, M], dtype)));
    return compare(actual, await oracle.read(run(oracle)), 1);
  });
}

/** A mean of ≤ 4097 f32 values, judged against the mean of |x| over the window. */
const POOL_BOUND = 1e-5;

function avgPoolCase(L: number, C: number, size: number): KernelCase {
  const name = `avgPoolRows/${L}×${C} by ${size}`;
  return defineCase(name, 'avgPoolRows', POOL_BOUND, async (backend, oracle) => {
    const x = uniform(seededRandom(seedOf(name)), L * C);
    const pooled = Math.floor(L / size);
    const run = (be: Backend, values: Float32Array, out?: Tensor) => be.avgPoolRows(be.tensor(values, [L, C]), size, out);
    const actual = await backend.read(run(backend, x, poisoned(backend, [pooled, C])));
    const expected = await oracle.read(run(oracle, x));
    const magnitude = await oracle.read(run(oracle, x.map(Math.abs)));
    return compare(actual, expected, magnitude as Float32Array);
  });
}

export const layoutCases: KernelCase[] = [
  copyCase('f32', 4097, 5000, 3, 10, 4000),
  copyCase('f32', 17, 17, 16, 0, 1),
  copyCase('i32', 33, 100, 0, 67, 33),
  reshapeCase,
  gatherRowsCase('f32', 4097, 33, 17, 'array'),
  gatherRowsCase('f32', 3, 1, 1, 'tensor'),
  gatherRowsCase('i32', 5, 3, 9, 'tensor'),
  transposeCase('f32', 1, 1),
  transposeCase('f32', 3, 17),
  transposeCase('f32', 33, 4097),
  transposeCase('f32', 64, 65, true),
  transposeCase('i32', 5, 7),
  avgPoolCase(17, 33, 4),
  avgPoolCase(4097, 3, 2),
  avgPoolCase(5, 7, 5),
  avgPoolCase(3, 2, 1),
  avgPoolCase(4097, 3, 4097),
];
