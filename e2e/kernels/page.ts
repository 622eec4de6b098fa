/**
 * The browser side of the kernel suite: the same cases as the Node suite, run inside the
 * page on the WebGPU and wasm backends. Playwright calls `window.omniKernels`.
 */
import { createWebGPUBackend, quantize, type Backend, type BackendInfo } from '@omniweb/core';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend, relaxedDotReadsUnsignedBytes } from '../../packages/core/src/wasm/index.js';
import { createOracleBackend, kernelCases, kv8Cases, type CaseResult } from '@omniweb/kernels';

/** 'wasm-portable': the relaxed build with dot bytes kept below 128 (the 8-bit KV cache's int16 score path). */
export type BrowserBackendKind = 'webgpu' | 'wasm' | 'wasm-portable';

/** The wasm builds compared with the baseline one (info.wasmSimd/wasmDotBytes), on how many outputs, and how many differed in any bit. */
export interface BuildComparison { builds: string[]; compared: number; differing: number }

export interface KernelPageApi {
  caseNames(): string[];
  info(kind: BrowserBackendKind): Promise<BackendInfo>;
  /** One case of kernelCases or kv8Cases; a thrown error comes back as `error` (with its stack) instead of a rejection. */
  run(kind: BrowserBackendKind, name: string): Promise<CaseResult | { error: string }>;
  /** q4 and q8 GEMVs (1–12 rows, odd sizes, f32 and f16 scales, 'int16' and 'int8' activations) on the relaxed build, with 'auto' and 'portable' dot bytes, and on the baseline build. */
  compareWasmBuilds(): Promise<BuildComparison>;
  /** relaxedDotReadsUnsignedBytes() in this page. */
  readsUnsignedDotBytes(): Promise<boolean>;
}

const backends = new Map<BrowserBackendKind, Promise<Backend>>();

function backendOf(kind: BrowserBackendKind): Promise<Backend> {
  const existing = backends.get(kind);
  if (existing) return existing;
  // 'int16' GEMV activations: the mode kernels/cases/linear.ts bounds (the default 'auto' rounds q4's to 8 bits).
  const created = kind === 'webgpu' ? createWebGPUBackend()
    : createWasmBackend({ quantizedActivations: 'int16', dotBytes: kind === 'wasm-portable' ? 'portable' : 'auto' });
  backends.set(kind, created);
  return created;
}

const oracle = createOracleBackend();

/** x·Wᵀ for a q8/q4 W on one backend, read back as raw bits. */
async function quantizedProduct(backend: Backend, x: Float32Array, rows: number, w: Float32Array, N: number, K: number, format: 'q8' | 'q4', scales: 'f32' | 'f16'): Promise<Uint32Array> {
  const y = backend.linear(backend.tensor(x, [rows, K]), backend.weight(quantize(w, N, K, format, scales)), null);
  return new Uint32Array((await backend.read(y)).buffer);
}

/** The relaxed build ('auto' and 'portable' dot bytes) against the baseline build in each one-part GEMV mode, on the same products. */
async function compareWasmBuilds(): Promise<BuildComparison> {
  let seed = 12345;
  const random = (n: number) => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 31) - 1);
  let compared = 0, differing = 0;
  const builds = new Set<string>();
  for (const quantizedActivations of ['int16', 'int8'] as const) {
    for (const dotBytes of ['auto', 'portable'] as const) {
      const relaxed = await createWasmBackend({ simd: 'relaxed', dotBytes, quantizedActivations });
      const baseline = await createWasmBackend({ simd: 'baseline', quantizedActivations });
      builds.add(`${relaxed.info.wasmSimd}/${relaxed.info.wasmDotBytes} ${baseline.info.wasmSimd}`);
      try {
        // 1×2053 from 1000 columns runs on the pool's threads; the rest on one.
        for (const [rows, K, N] of [[1, 100, 37], [1, 896, 64], [1, 1000, 2053], [5, 131, 9], [12, 64, 4]]) {
          for (const format of ['q4', 'q8'] as const) {
            for (const scales of ['f32', 'f16'] as const) {
              const x = random(rows * K), w = random(N * K);
              const a = await quantizedProduct(relaxed, x, rows, w, N, K, format, scales);
              const b = await quantizedProduct(baseline, x, rows, w, N, K, format, scales);
              compared += a.length;
              for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differing++;
            }
          }
        }
      } finally {
        relaxed.destroy();
        baseline.destroy();
      }
    }
  }
  return { builds: [...builds], compared, differing };
}

const api: KernelPageApi = {
  caseNames: () => kernelCases.map((c) => c.name),
  readsUnsignedDotBytes: () => relaxedDotReadsUnsignedBytes(),
  info: async (kind) => (await backendOf(kind)).info,
  async run(kind, name) {
    const kernelCase = [...kernelCases, ...kv8Cases].find((c) => c.name === name);
    try {
      if (!kernelCase) throw new Error(`no kernel case named ${name}`);
      return await kernelCase.run(await backendOf(kind), oracle);
    } catch (e) {
      return { error: e instanceof Error ? `${e.name}: ${e.message}\n${e.stack ?? ''}` : String(e) };
    }
  },
  compareWasmBuilds,
};

declare global {
  // eslint-disable-next-line no-var -- a global set by this page, read by Playwright
  var omniKernels: KernelPageApi;
}
globalThis.omniKernels = api;
