/** embedding: rows of a table in every weight format, at ids given as a host array or an i32 tensor. */
import type { Backend, Tensor } from '@omniweb/core';
import {
  WEIGHT_VARIANTS, compare, defineCase, hostMatrix, integers, poisoned, seedOf, seededRandom, uniform, variantName,
  weightBound, type KernelCase, type WeightVariant,
} from './harness.js';

interface EmbeddingShape { V: number; D: number; T: number; idsAs: 'array' | 'tensor'; allocate?: boolean }

/**
 * Dequantizing one element is a single f32 product q·scale (or an exact f16 widening),
 * correctly rounded like the oracle's: bound 0, unless the backend may do it in f16.
 */
function embeddingCase(variant: WeightVariant, shape: EmbeddingShape): KernelCase {
  const { V, D, T, idsAs } = shape;
  const name = `embedding/${variantName(variant)} ${V}×${D} table, ${T} ids as ${idsAs}${shape.allocate ? ', allocated out' : ''}`;
  return defineCase(name, 'embedding', weightBound(variant.format, 0), async (backend, oracle) => {
    const random = seededRandom(seedOf(name));
    const host = hostMatrix(uniform(random, V * D), V, D, variant);
    const ids = integers(random, T, V);
    // The first and last rows, and a repeat, whenever there is room for them.
    ids[0] = V - 1;
    if (T > 1) ids[T - 1] = 0;
    if (T > 2) ids[1] = ids[T - 1];
    const run = (be: Backend, out?: Tensor) =>
      be.embedding(be.weight(host), idsAs === 'array' ? ids : be.tensor(ids, [T]), out);
    const actual = await backend.read(shape.allocate ? run(backend) : run(backend, poisoned(backend, [T, D])));
    return compare(actual, await oracle.read(run(oracle)));
  });
}

export const embeddingCases: KernelCase[] = [
  ...WEIGHT_VARIANTS.map((variant, i) =>
    embeddingCase(variant, { V: 4097, D: 33, T: 17, idsAs: i % 2 === 0 ? 'array' : 'tensor' })),
  embeddingCase({ format: 'f32' }, { V: 1, D: 1, T: 1, idsAs: 'array' }),
  embeddingCase({ format: 'q4', scales: 'f16' }, { V: 17, D: 2048, T: 3, idsAs: 'tensor', allocate: true }),
  embeddingCase({ format: 'f16' }, { V: 3, D: 4097, T: 5, idsAs: 'array' }),
];
