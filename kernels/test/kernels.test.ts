// Every kernel case on each real backend in Node: the wasm kernels, and WebGPU through
// Dawn on SwiftShader. One test per (backend, case); each awaits its backend, so a
// backend that cannot start (no adapter, no wasm build) fails every one of its tests.
import { afterAll, describe, expect, it } from 'vitest';
import { createWebGPUBackend, type Backend, type BackendKind } from '@omniweb/core';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend } from '../../packages/core/src/wasm/index.js';
import { createOracleBackend, kernelCases } from '@omniweb/kernels';

const BACKENDS: readonly { kind: BackendKind; create: () => Promise<Backend> }[] = [
  // 'int16' GEMV activations: the mode kernels/cases/linear.ts bounds (its default 'auto' rounds q4's to 8 bits).
  { kind: 'wasm', create: () => createWasmBackend({ quantizedActivations: 'int16' }) },
  { kind: 'webgpu', create: () => createWebGPUBackend() },
];

const oracle = createOracleBackend();

for (const { kind, create } of BACKENDS) {
  describe(kind, () => {
    let started: Promise<Backend> | undefined;
    const backend = () => (started ??= create());

    afterAll(async () => {
      (await started?.catch(() => undefined))?.destroy();
    });

    it('starts and reports its kind', async () => {
      expect((await backend()).info.kind).toBe(kind);
    });

    for (const kernelCase of kernelCases) {
      it(kernelCase.name, async () => {
        const { maxRelErr, bound } = await kernelCase.run(await backend(), oracle);
        expect(maxRelErr).toBeLessThanOrEqual(bound);
      });
    }
  });
}
