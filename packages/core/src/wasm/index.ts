import type { Backend } from '../backend.js';
import { OmniError } from '../errors.js';
import { WasmBackendImpl } from './backend.js';
import { loadKernels, threadsAvailable } from './module.js';

export interface WasmBackendOptions {
  /**
   * Threads that share each kernel: the caller's plus threads − 1 pool workers (default 2
   * where the pthread build can run — Node, or a cross-origin-isolated page — else 1).
   * Where it cannot run, the backend uses 1; `info.threads` says which.
   */
  threads?: number;
}

/** The most threads the pool takes (kernels/wasm/pool.c). */
const MAX_THREADS = 16;

/** The CPU backend: emscripten SIMD kernels, one module per backend, tensors in its heap. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', 'createWasmBackend: options must be an object');
  const { threads } = opts;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new OmniError('BAD_INPUT', `createWasmBackend: threads must be an integer in [1, ${MAX_THREADS}], got ${String(threads)}`);
  }
  const usable = threadsAvailable() ? (threads ?? 2) : 1;
  return new WasmBackendImpl(await loadKernels(usable), usable);
}
