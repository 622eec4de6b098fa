import { describe, expect, it } from 'vitest';
import { createBackend, isOmniError } from '../src/index.js';

describe('createBackend', () => {
  it('auto picks WebGPU when an adapter exists (SwiftShader here)', async () => {
    const b = await createBackend();
    expect(b.info.kind).toBe('webgpu');
    b.destroy();
  });
  it('wasm on request, with the threads asked for', async () => {
    const b = await createBackend({ device: 'wasm', threads: 1 });
    expect(b.info.kind).toBe('wasm');
    expect(b.info.threads).toBe(1);
    b.destroy();
  });
  it('rejects an unknown device with a typed error', async () => {
    const err = await createBackend({ device: 'cuda' as never }).catch((e: unknown) => e);
    expect(isOmniError(err, 'BAD_INPUT')).toBe(true);
  });
});
