import { OmniError } from '../errors.js';
import { wasmAssets, type WasmAsset } from '../wasmAssets.js';

/** The exports of kernels/wasm/*.c (pointers are heap byte offsets; see the C sources for each). */
export interface KernelExports {
  _omni_malloc(bytes: number): number;
  _omni_free(ptr: number): void;
  _omni_pool_start(threads: number): number;
  _omni_pool_started(): number;
  _omni_pool_stop(): void;
  /** Row-major q8/q4 data and scales (rows padded to a multiple of 4) → the kernels' 4-row blocks, in place; 0, or −1 out of memory. */
  _omni_block_quantized(data: number, scales: number, rows: number, cols: number, format: number, scaleF16: number): number;
  _omni_linear(x: number, M: number, data: number, scales: number, format: number, scaleF16: number,
    rows: number, cols: number, bias: number, y: number): number;
  /** Activations of the GEMV against q8/q4 weights, 0: exact, 1: one int16 part; −1 for another mode. */
  _omni_set_gemv_activations(mode: number): number;
  _omni_matmul(a: number, b: number, M: number, K: number, N: number, transposeB: number, y: number): number;
  _omni_rmsnorm(x: number, w: number, y: number, rows: number, cols: number, eps: number): void;
  _omni_layernorm(x: number, w: number, b: number, y: number, rows: number, cols: number, eps: number): void;
  _omni_softmax(x: number, y: number, rows: number, cols: number): void;
  _omni_argmax(x: number, index: number, rows: number, cols: number): void;
  _omni_silu_mul(gate: number, up: number, y: number, n: number): void;
  _omni_gelu(x: number, y: number, n: number, mode: number): void;
  _omni_binary(a: number, b: number, y: number, n: number, bLength: number, op: number): void;
  _omni_avg_pool_rows(x: number, y: number, windows: number, columns: number, size: number): void;
  _omni_embedding(data: number, scales: number, format: number, scaleF16: number, rows: number, cols: number,
    ids: number, count: number, y: number): void;
  _omni_gather_rows(x: number, ids: number, count: number, cols: number, y: number): void;
  _omni_transpose(x: number, y: number, M: number, N: number): void;
  _omni_rotary(x: number, y: number, positions: number, invFreq: number, stream: number,
    T: number, H: number, D: number, half: number, heads: number, interleaved: number): void;
  _omni_attention(q: number, k: number, v: number, y: number, T: number, kvLength: number, Hq: number, Hkv: number,
    D: number, scale: number, mask: number, queryStart: number, blockSize: number, back: number, ahead: number,
    bounds: number, segments: number): number;
  _omni_conv1d(x: number, L: number, Cin: number, data: number, scales: number, format: number, scaleF16: number,
    Cout: number, kernel: number, stride: number, padding: number, dilation: number, reflect: number,
    bias: number, y: number, Lout: number): number;
  _omni_unary(x: number, y: number, n: number, kind: number, p0: number, p1: number): void;
  _omni_snake_beta(x: number, alphaLog: number, betaLog: number, up: number, down: number, y: number,
    L: number, C: number, Ku: number, Kd: number): number;
  /** The heap's current buffer (replaced when memory grows). */
  heapBuffer(): ArrayBuffer | SharedArrayBuffer;
  /** Pthread build only. */
  terminateWorkers?(): void;
  unrefWorkers?(): void;
}

type KernelFactory = (options: { poolSize?: number; wasmBinary?: Uint8Array }) => Promise<KernelExports>;

const isNode = typeof process === 'object' && typeof process.versions?.node === 'string';

/** Whether the pthread build can run here: Node has worker_threads; a page needs cross-origin isolation. */
export function threadsAvailable(): boolean {
  if (typeof SharedArrayBuffer === 'undefined') return false;
  return isNode || (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
}

/** How long the pool's workers may take to start before we give up (they load the module first). */
const POOL_START_TIMEOUT_MS = 30_000;

/**
 * Instantiates the kernel module: the single-threaded one, or the pthread one with a pool
 * of `threads` (the caller's thread plus threads − 1 workers, all started before this resolves).
 */
export async function loadKernels(threads: number): Promise<KernelExports> {
  const asset: WasmAsset = threads > 1 ? wasmAssets.threaded : wasmAssets.singleThreaded;
  let kernels: KernelExports;
  try {
    const factory = ((await import(/* @vite-ignore */ asset.module.href)) as { default: KernelFactory }).default;
    const wasmBinary = isNode ? new Uint8Array(await (await import('node:fs/promises')).readFile(asset.wasm)) : undefined;
    kernels = await factory({ poolSize: threads - 1, wasmBinary });
  } catch (e) {
    throw new OmniError('IO', `wasm backend: cannot load the kernel module ${asset.module.href} (run scripts/build-wasm.mjs): ${(e as Error).message}`, { cause: e });
  }
  if (threads > 1) {
    const workers = kernels._omni_pool_start(threads);
    const deadline = Date.now() + POOL_START_TIMEOUT_MS;
    // Workers start their loop only once the event loop has delivered their start message.
    while (kernels._omni_pool_started() < workers) {
      if (Date.now() > deadline) {
        kernels.terminateWorkers?.();
        throw new OmniError('INTERNAL', `wasm backend: ${kernels._omni_pool_started()} of ${workers} pool threads started within ${POOL_START_TIMEOUT_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    // Idle pool threads must not keep a Node process alive.
    kernels.unrefWorkers?.();
    if (workers !== threads - 1) {
      kernels._omni_pool_stop();
      kernels.terminateWorkers?.();
      throw new OmniError('INTERNAL', `wasm backend: started ${workers} of ${threads - 1} pool threads`);
    }
  }
  return kernels;
}
