import type { Backend } from '../backend.js';
import { OmniError } from '../errors.js';
import { WasmBackendImpl } from './backend.js';
import { loadKernels, threadsAvailable } from './module.js';

export { WASM_HEAP_BYTES } from './backend.js';

/**
 * How a GEMV (a product of 1 to 4 rows: decode steps) against q8/q4 weights takes its
 * activations (kernels/wasm/linear.c):
 * - 'int16': each group of 32 elements of x is rounded once per product to one 16-bit
 *   integer part with its own scale, x̃ = s·round(x/s), s = max|x|/32767; each output
 *   moves from the exact one by at most (1/65534)·Σ_g max_g|x|·Σ_{i∈g}|w_i| (half a step of
 *   each group's largest |x| against that group's weights), 2^-8 of the error the 8-bit
 *   weights carry. Half the integer work of 'exact': 1.5–1.7× faster GEMVs.
 * - 'exact': x is kept to f32 precision (two 16-bit parts per element); the result is the
 *   f32 dot product with the dequantized weights.
 * Products of more rows (prefill, encoders) and f32/f16 weights are exact in both modes.
 */
export type QuantizedActivations = 'int16' | 'exact';

export interface WasmBackendOptions {
  /**
   * Threads that share each kernel: the caller's plus threads − 1 pool workers (default 2
   * where the pthread build can run — Node, or a cross-origin-isolated page — else 1).
   * Where it cannot run, the backend uses 1; `info.threads` says which.
   */
  threads?: number;
  /** Activations of the q8/q4 GEMV (default 'int16'; see QuantizedActivations). */
  quantizedActivations?: QuantizedActivations;
}

/** The most threads the pool takes (kernels/wasm/pool.c). */
const MAX_THREADS = 16;
const ACTIVATION_MODES: Record<QuantizedActivations, number> = { exact: 0, int16: 1 };

/** The CPU backend: emscripten SIMD kernels, one module per backend, tensors in its heap. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', 'createWasmBackend: options must be an object');
  const { threads, quantizedActivations = 'int16' } = opts;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new OmniError('BAD_INPUT', `createWasmBackend: threads must be an integer in [1, ${MAX_THREADS}], got ${String(threads)}`);
  }
  if (!Object.hasOwn(ACTIVATION_MODES, quantizedActivations)) {
    throw new OmniError('BAD_INPUT', `createWasmBackend: quantizedActivations must be 'int16' or 'exact', got ${String(quantizedActivations)}`);
  }
  const usable = threadsAvailable() ? (threads ?? 2) : 1;
  const kernels = await loadKernels(usable);
  if (typeof kernels._omni_set_gemv_activations !== 'function' || kernels._omni_set_gemv_activations(ACTIVATION_MODES[quantizedActivations]) !== 0) {
    kernels._omni_pool_stop();
    kernels.terminateWorkers?.();
    throw new OmniError('IO', 'wasm backend: the kernel module has no GEMV activation modes (a stale build: run scripts/build-wasm.mjs)');
  }
  return new WasmBackendImpl(kernels, usable, quantizedActivations);
}
