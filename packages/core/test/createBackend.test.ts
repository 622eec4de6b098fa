import { describe, expect, it } from 'vitest';
import { createBackend, isOmniError } from '../src/index.js';

describe('createBackend', () => {
  it('auto picks WebGPU when an adapter exists (SwiftShader here)', async () => {
    const b = await createBackend();
    expect(b.info.kind).toBe('webgpu');
    b.destroy();
  });
  it('wasm on request, with the threads, GEMV activations and kernel build asked for', async () => {
    const b = await createBackend({ device: 'wasm', threads: 1, quantizedActivations: 'int16', simd: 'baseline' });
    expect(b.info.kind).toBe('wasm');
    expect(b.info.threads).toBe(1);
    expect(b.info.wasmSimd).toBe('baseline');
    expect(b.info.name).toContain('int16 q8/q4 GEMV activations');
    b.destroy();
  });
  it('rejects an unknown device, bad wasm options or no options object with a typed error', async () => {
    for (const options of [{ device: 'cuda' }, { device: 'wasm', quantizedActivations: 'int4' }, null]) {
      const err = await createBackend(options as never).catch((e: unknown) => e);
      expect(isOmniError(err, 'BAD_INPUT'), JSON.stringify(options)).toBe(true);
    }
  });
});
