// The kernel cases themselves under test: the oracle passes all of them, and a backend
// with one op broken in a small way fails that op's cases — so a green kernel suite means
// something. One test per op and breakage.
import { describe, expect, it } from 'vitest';
import type { Backend, Tensor } from '@omniweb/core';
import { createOracleBackend, kernelCases, type KernelCase } from '@omniweb/kernels';

type Breakage = (be: Backend, result: Tensor) => void;

/** The last element is never written (left as NaN / INT32_MIN): the classic edge-size bug. */
const dropLast: Breakage = (be, result) => {
  const poison = result.dtype === 'f32' ? Float32Array.of(NaN) : Int32Array.of(-0x80000000);
  be.copy(be.tensor(poison, [1]), result, 0, result.size - 1, 1);
};

/** The last element is off by one part in a thousand. */
const nudgeLast: Breakage = (be, result) => {
  const factors = new Float32Array(result.size).fill(1);
  factors[result.size - 1] = 1 + 1e-3;
  be.copy(be.mul(result, be.tensor(factors, result.shape)), result, 0, 0, result.size);
};

/** An oracle whose `op` applies `breakage` to every result it returns. */
function brokenOracle(op: keyof Backend, breakage: Breakage): Backend {
  const oracle = createOracleBackend();
  return new Proxy(oracle, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (prop !== op) return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => Tensor | Tensor[]).apply(target, args);
        for (const t of Array.isArray(result) ? result : [result]) breakage(target, t);
        return result;
      };
    },
  });
}

async function fails(c: KernelCase, backend: Backend): Promise<boolean> {
  try {
    const { maxRelErr, bound } = await c.run(backend, createOracleBackend());
    return !(maxRelErr <= bound);
  } catch {
    return true;
  }
}

const tensorOps = [...new Set(kernelCases.map((c) => c.op))]
  .filter((op): op is Exclude<KernelCase['op'], 'validation' | 'copy' | 'reshape'> => !['validation', 'copy', 'reshape'].includes(op));
const floatOps = tensorOps.filter((op) => !['argmax', 'gatherRows', 'transpose'].includes(op));

describe('kernel cases', () => {
  it('every case passes on the oracle itself, within its stated bound', async () => {
    const oracle = createOracleBackend();
    for (const c of kernelCases) {
      const { maxRelErr, bound } = await c.run(oracle, createOracleBackend());
      expect(maxRelErr, c.name).toBeLessThanOrEqual(bound);
      expect(bound, c.name).toBeLessThanOrEqual(5e-4);
    }
  });

  it('case names are unique', () => {
    expect(new Set(kernelCases.map((c) => c.name)).size).toBe(kernelCases.length);
  });

  it.each(tensorOps)('every %s case fails when the last element is not written', async (op) => {
    const broken = brokenOracle(op, dropLast);
    const cases = kernelCases.filter((c) => c.op === op);
    const passing = [];
    for (const c of cases) if (!(await fails(c, broken))) passing.push(c.name);
    expect(passing).toEqual([]);
  });

  it.each(floatOps)('some %s case fails when the last element is off by 1e-3', async (op) => {
    const broken = brokenOracle(op, nudgeLast);
    const cases = kernelCases.filter((c) => c.op === op);
    const caught = [];
    for (const c of cases) if (await fails(c, broken)) caught.push(c.name);
    expect(caught.length).toBeGreaterThan(0);
  });
});
