import type { Backend } from '../backend.js';
import { OmniError } from '../errors.js';
import { WasmBackendImpl } from './backend.js';
import { wasmAssets } from '../wasmAssets.js';
import { loadKernels, relaxedDotAvailable, relaxedDotReadsUnsignedBytes, threadsAvailable } from './module.js';

export { WASM_HEAP_BYTES } from './backend.js';
export { relaxedDotAvailable, relaxedDotReadsUnsignedBytes } from './module.js';

/**
 * How a GEMV (a product of 1 to 12 rows: decode steps) against q8/q4 weights takes its
 * activations (kernels/wasm/linear.c):
 * - 'int16': each group of 32 elements of x is rounded once per product to one 15-bit
 *   integer part with its own scale, x̃ = s·round(x/s), s = max|x|/16383; each output
 *   moves from the exact one by at most (1/32766)·Σ_g max_g|x|·Σ_{i∈g}|w_i| (half a step of
 *   each group's largest |x| against that group's weights), 2^-7 of the error the 8-bit
 *   weights carry. Half the integer work of 'exact': 1.5–1.7× faster GEMVs.
 * - 'int8': one 8-bit part, s = max|x|/127, as llama.cpp's q8_0 activations: each output
 *   moves by at most (1/254)·Σ_g max_g|x|·Σ_{i∈g}|w_i|, about 1/18 of the error 4-bit
 *   weights carry (and as much as 8-bit weights carry). On the relaxed-SIMD build a q4 GEMV
 *   then runs one 8-bit dot per 16 weights: 1.6× faster than 'int16' (4864×896 in Chromium),
 *   and so does a q8 GEMV where the engine reads dot bytes above 127 as unsigned (WasmDotBytes);
 *   elsewhere it runs as 'int16' does, with the same (8-bit) result.
 * - 'exact': x is kept to f32 precision (two 16-bit parts per element); the result is the
 *   f32 dot product with the dequantized weights.
 * - 'auto' (default): 'int8' against q4 weights, 'int16' against q8 weights. Each adds at
 *   most 1/18 of the error the weights carry; on the golden tests q4 decode logits moved
 *   from 4.29e-1 to 4.31e-1 with the same greedy tokens, where 'int8' against q8 weights
 *   changed greedy tokens.
 * Products of more rows (prefill, encoders) and f32/f16 weights are exact in every mode.
 */
export type QuantizedActivations = 'auto' | 'int16' | 'int8' | 'exact';

/**
 * Which build of the kernels runs:
 * - 'relaxed': relaxed SIMD, whose 8-bit dot product runs the q4 GEMV in 'int16' mode
 *   (1.4× faster measured in Chromium on 4864×896) and in 'int8' mode (2.2×) with the very
 *   same sums, so results are bit-identical to 'baseline'. Needs an engine that runs it as
 *   specified (Chromium since 114 does; Node 20 does not): `relaxedDotAvailable()` probes
 *   it, and asking for it elsewhere throws UNSUPPORTED_CONFIG.
 * - 'baseline': SIMD128 only.
 * - 'auto' (default): 'relaxed' where the engine runs it, else 'baseline'.
 */
export type WasmSimd = 'auto' | 'relaxed' | 'baseline';

/**
 * Whether the relaxed build's GEMV gives its 8-bit dot bytes above 127, whose product the
 * spec leaves to the engine:
 * - 'auto' (default): where the engine multiplies bytes 128–255 as unsigned exactly
 *   (`relaxedDotReadsUnsignedBytes()`: x86 with AVX-VNNI). The q4 GEMV ('int8' activations)
 *   then reads the weights' high nibbles in place, as 16·nibble, one shift fewer per 16
 *   weights (a 4864×896 GEMV from cache 14 % faster on one thread), and the q8 GEMV
 *   ('int16' and 'int8') runs on the 8-bit dot with its bytes stored as w + 128 (1.4× faster
 *   from cache than its int16 dots, on one thread, Node 26).
 * - 'portable': neither: q4 shifts high nibbles down first, q8 runs its int16 dots.
 * The results are bit-identical either way; `info.wasmDotBytes` says which runs.
 */
export type WasmDotBytes = 'auto' | 'portable';

export interface WasmBackendOptions {
  /**
   * Threads that share each kernel: the caller's plus threads − 1 pool workers (default 2
   * where the pthread build can run — Node, or a cross-origin-isolated page — else 1).
   * Where it cannot run, the backend uses 1; `info.threads` says which.
   */
  threads?: number;
  /** Activations of the q8/q4 GEMV (default 'auto'; see QuantizedActivations). */
  quantizedActivations?: QuantizedActivations;
  /** Which kernel build (default 'auto'; see WasmSimd). */
  simd?: WasmSimd;
  /** Whether the relaxed build's 8-bit dot may take bytes above 127 (default 'auto'; see WasmDotBytes). */
  dotBytes?: WasmDotBytes;
}

/** The most threads the pool takes (kernels/wasm/pool.c). */
const MAX_THREADS = 16;
const ACTIVATION_MODES: Record<QuantizedActivations, number> = { exact: 0, int16: 1, int8: 2, auto: 3 };

/** The CPU backend: emscripten SIMD kernels, one module per backend, tensors in its heap. */
export async function createWasmBackend(opts: WasmBackendOptions = {}): Promise<Backend> {
  if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', 'createWasmBackend: options must be an object');
  const { threads, quantizedActivations = 'auto', simd = 'auto', dotBytes = 'auto' } = opts;
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS)) {
    throw new OmniError('BAD_INPUT', `createWasmBackend: threads must be an integer in [1, ${MAX_THREADS}], got ${String(threads)}`);
  }
  if (!Object.hasOwn(ACTIVATION_MODES, quantizedActivations)) {
    throw new OmniError('BAD_INPUT', `createWasmBackend: quantizedActivations must be 'auto', 'int16', 'int8' or 'exact', got ${String(quantizedActivations)}`);
  }
  if (simd !== 'auto' && simd !== 'relaxed' && simd !== 'baseline') {
    throw new OmniError('BAD_INPUT', `createWasmBackend: simd must be 'auto', 'relaxed' or 'baseline', got ${String(simd)}`);
  }
  if (dotBytes !== 'auto' && dotBytes !== 'portable') {
    throw new OmniError('BAD_INPUT', `createWasmBackend: dotBytes must be 'auto' or 'portable', got ${String(dotBytes)}`);
  }
  const relaxed = simd !== 'baseline' && (await relaxedDotAvailable());
  if (simd === 'relaxed' && !relaxed) {
    throw new OmniError('UNSUPPORTED_CONFIG', "createWasmBackend: simd 'relaxed' was asked for, and this engine does not run relaxed SIMD's i32x4.relaxed_dot_i8x16_i7x16_add_s as specified");
  }
  const unsignedBytes = relaxed && dotBytes === 'auto' && (await relaxedDotReadsUnsignedBytes());
  const usable = threadsAvailable() ? (threads ?? 2) : 1;
  const kernels = await loadKernels(usable, relaxed ? wasmAssets.relaxed : wasmAssets.baseline);
  if (typeof kernels._omni_relaxed_dot !== 'function' || kernels._omni_relaxed_dot() !== Number(relaxed) ||
      kernels._omni_set_gemv_activations(ACTIVATION_MODES[quantizedActivations]) !== 0 ||
      typeof kernels._omni_set_unsigned_dot_bytes !== 'function' || kernels._omni_set_unsigned_dot_bytes(Number(unsignedBytes)) !== 0) {
    kernels._omni_pool_stop();
    kernels.terminateWorkers?.();
    throw new OmniError('IO', `wasm backend: the ${relaxed ? 'relaxed' : 'baseline'} kernel module is not that build or lacks GEMV activation modes (a stale build: run scripts/build-wasm.mjs)`);
  }
  return new WasmBackendImpl(kernels, usable, quantizedActivations, relaxed, unsignedBytes);
}
