/**
 * The browser side of the kernel suite: the same cases as the Node suite, run inside the
 * page on the WebGPU and wasm backends. Playwright calls `window.omniKernels`.
 */
import { createWebGPUBackend, type Backend, type BackendInfo } from '@omniweb/core';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend } from '../../packages/core/src/wasm/index.js';
import { createOracleBackend, kernelCases, type CaseResult } from '@omniweb/kernels';

export type BrowserBackendKind = 'webgpu' | 'wasm';

export interface KernelPageApi {
  caseNames(): string[];
  info(kind: BrowserBackendKind): Promise<BackendInfo>;
  /** One case; a thrown error comes back as `error` (with its stack) instead of a rejection. */
  run(kind: BrowserBackendKind, name: string): Promise<CaseResult | { error: string }>;
}

const backends = new Map<BrowserBackendKind, Promise<Backend>>();

function backendOf(kind: BrowserBackendKind): Promise<Backend> {
  const existing = backends.get(kind);
  if (existing) return existing;
  const created = kind === 'webgpu' ? createWebGPUBackend() : createWasmBackend();
  backends.set(kind, created);
  return created;
}

const oracle = createOracleBackend();

const api: KernelPageApi = {
  caseNames: () => kernelCases.map((c) => c.name),
  info: async (kind) => (await backendOf(kind)).info,
  async run(kind, name) {
    const kernelCase = kernelCases.find((c) => c.name === name);
    try {
      if (!kernelCase) throw new Error(`no kernel case named ${name}`);
      return await kernelCase.run(await backendOf(kind), oracle);
    } catch (e) {
      return { error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) };
    }
  },
};

declare global {
  // eslint-disable-next-line no-var -- a global set by this page, read by Playwright
  var omniKernels: KernelPageApi;
}
globalThis.omniKernels = api;
