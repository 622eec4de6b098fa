// The 8-bit KV cache's cases: on the oracle and the wasm backend (Node 20 runs its baseline
// build; the relaxed build runs them in Chromium, e2e/test/kernels.browser.test.ts), that a
// broken result fails them, and that the integer scheme itself stays near f32 attention.
import { afterAll, describe, expect, it } from 'vitest';
import { createWebGPUBackend, type Backend, type KV8Ops, type Tensor } from '@omniweb/core';
import { createWasmBackend } from '../../packages/core/src/wasm/index.js';
import { createOracleBackend, kv8Cases } from '@omniweb/kernels';

const wasm = createWasmBackend({});
afterAll(async () => (await wasm).destroy());

/** An oracle whose kv8.attention results are changed by `breakage`. */
function brokenOracle(breakage: (be: Backend, result: Tensor) => void): Backend {
  const oracle = createOracleBackend();
  const ops = oracle.kv8!;
  const kv8: KV8Ops = { ...ops, attention: (q, kv, opts, out) => { const y = ops.attention(q, kv, opts, out); breakage(oracle, y); return y; } };
  return new Proxy(oracle, { get: (target, prop) => (prop === 'kv8' ? kv8 : Reflect.get(target, prop)) });
}

describe('8-bit KV cache', () => {
  it('every case passes on the oracle itself', async () => {
    for (const c of kv8Cases) {
      const { maxRelErr, bound } = await c.run(createOracleBackend(), createOracleBackend());
      expect(maxRelErr, c.name).toBeLessThanOrEqual(bound);
    }
  });

  for (const c of kv8Cases) {
    it(`wasm: ${c.name}`, async () => {
      const { maxRelErr, bound } = await c.run(await wasm, createOracleBackend());
      expect(maxRelErr).toBeLessThanOrEqual(bound);
    });
  }

  it('every attention case fails when the last element is off by 1e-3 (of max|v| = 1), or not written', async () => {
    const attention = kv8Cases.filter((c) => c.name.startsWith('kv8 attention/'));
    const nudge = brokenOracle((be, y) => {
      const shift = new Float32Array(y.size);
      shift[y.size - 1] = 1e-3;
      be.copy(be.add(y, be.tensor(shift, y.shape)), y, 0, 0, y.size);
    });
    const drop = brokenOracle((be, y) => be.copy(be.tensor(Float32Array.of(NaN), [1]), y, 0, y.size - 1, 1));
    for (const broken of [drop, nudge]) {
      const passing = [];
      for (const c of attention) {
        const { maxRelErr, bound } = await c.run(await wasm, broken).catch(() => ({ maxRelErr: Infinity, bound: 0 }));
        if (maxRelErr <= bound) passing.push(c.name);
      }
      expect(passing).toEqual([]);
    }
  });

  it('stays within 2 % of max|v| of f32 attention over the unquantized rows (decode over 1000 keys, GQA 14:2)', async () => {
    const oracle = createOracleBackend();
    let seed = 7;
    const random = (n: number, s: number) => Float32Array.from({ length: n }, () => s * (((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 31) - 1));
    const [S, Hq, Hkv, D] = [1000, 14, 2, 64];
    const q = oracle.tensor(random(Hq * D, 2), [1, Hq, D]);
    const k = oracle.tensor(random(S * Hkv * D, 2), [S, Hkv, D]);
    const v = oracle.tensor(random(S * Hkv * D, 1), [S, Hkv, D]);
    const cache = oracle.kv8!.create(S, Hkv, D);
    oracle.kv8!.write(k, v, cache, 0);
    const opts = { mask: { kind: 'causal', queryStart: S - 1 } } as const;
    const exact = await oracle.read(oracle.attention(q, k, v, opts));
    const quantized = await oracle.read(oracle.kv8!.attention(q, cache, opts));
    let worst = 0;
    for (let i = 0; i < exact.length; i++) worst = Math.max(worst, Math.abs(exact[i] - quantized[i]));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThan(0.02);
  });

  it('is absent on WebGPU, which keeps f32 caches', async () => {
    const gpu = await createWebGPUBackend();
    try {
      expect(gpu.kv8).toBeUndefined();
    } finally {
      gpu.destroy();
    }
  });
});
