import { OmniError } from '../errors.js';
import type { WasmAsset, WasmBuild } from '../wasmAssets.js';

/** The exports of kernels/wasm/*.c (pointers are heap byte offsets; see the C sources for each). */
export interface KernelExports {
  _omni_malloc(bytes: number): number;
  _omni_free(ptr: number): void;
  _omni_pool_start(threads: number): number;
  _omni_pool_started(): number;
  _omni_pool_stop(): void;
  /** Row-major q8/q4 data (rows padded to a multiple of 4) at weight + the scales' size, and their scales → the kernels' 4-row blocks with their scales, from weight on, in place; 0, or −1 out of memory. */
  _omni_block_quantized(weight: number, scales: number, rows: number, cols: number, format: number, scaleF16: number): number;
  /** x [M, cols] by `count` weights; parts: per weight data, rows, cols, format, scaleF16, bias, y (int32 each); 0, or −1 out of memory. */
  _omni_linears(x: number, M: number, parts: number, count: number): number;
  /** Activations of the GEMV against q8/q4 weights, 0: exact, 1: one 15-bit part, 2: one 8-bit part, 3: 2 for q4 and 1 for q8; −1 for another mode. */
  _omni_set_gemv_activations(mode: number): number;
  /** 1: the GEMV gives the 8-bit dot bytes above 127 (q4 high nibbles in place, q8 on the dot; relaxed build only, else −1); 0: it does not. */
  _omni_set_unsigned_dot_bytes(on: number): number;
  /** 1 in the relaxed-SIMD build, 0 in the baseline one. */
  _omni_relaxed_dot(): number;
  _omni_matmul(a: number, b: number, M: number, K: number, N: number, transposeB: number, y: number): number;
  _omni_rmsnorm(x: number, w: number, y: number, rows: number, cols: number, eps: number): void;
  _omni_layernorm(x: number, w: number, b: number, y: number, rows: number, cols: number, eps: number): void;
  _omni_softmax(x: number, y: number, rows: number, cols: number): void;
  _omni_argmax(x: number, index: number, rows: number, cols: number): void;
  _omni_silu_mul(gate: number, up: number, y: number, n: number): void;
  _omni_gelu(x: number, y: number, n: number, mode: number): void;
  _omni_binary(a: number, b: number, y: number, n: number, bLength: number, op: number): void;
  _omni_avg_pool_rows(x: number, y: number, windows: number, columns: number, size: number): void;
  _omni_embedding(data: number, format: number, scaleF16: number, rows: number, cols: number, ids: number, count: number, y: number): void;
  _omni_gather_rows(x: number, ids: number, count: number, cols: number, y: number): void;
  _omni_transpose(x: number, y: number, M: number, N: number): void;
  _omni_rotary(x: number, y: number, positions: number, invFreq: number, stream: number,
    T: number, H: number, D: number, half: number, heads: number, interleaved: number): void;
  _omni_attention(q: number, k: number, v: number, y: number, T: number, kvLength: number, Hq: number, Hkv: number,
    D: number, scale: number, mask: number, queryStart: number, blockSize: number, back: number, ahead: number,
    bounds: number, segments: number): number;
  _omni_kv8_bytes(rows: number, Hkv: number, D: number): number;
  _omni_kv8_write(cache: number, rows: number, Hkv: number, D: number, k: number, v: number, row: number, count: number): void;
  _omni_kv8_read(cache: number, rows: number, Hkv: number, D: number, row: number, count: number, k: number, v: number): void;
  _omni_attention_kv8(q: number, cache: number, rows: number, y: number, T: number, kvLength: number, Hq: number, Hkv: number,
    D: number, scale: number, mask: number, queryStart: number, blockSize: number, back: number, ahead: number,
    bounds: number, segments: number): number;
  _omni_conv1d(x: number, L: number, Cin: number, data: number, format: number, scaleF16: number,
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
 * A module of one function, (a, b, c) → lane 0 of
 * i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.splat a, i8x16.splat b, i32x4.splat c).
 */
const RELAXED_DOT_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x08, 0x01, 0x60, 0x03, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // type: (i32 i32 i32) → i32
  0x03, 0x02, 0x01, 0x00, // one function of that type
  0x07, 0x05, 0x01, 0x01, 0x64, 0x00, 0x00, // exported as "d"
  0x0a, 0x16, 0x01, 0x14, 0x00, // code: one body of 20 bytes, no locals
  0x20, 0x00, 0xfd, 0x0f, 0x20, 0x01, 0xfd, 0x0f, 0x20, 0x02, 0xfd, 0x11, // splat a, b (i8x16), c (i32x4)
  0xfd, 0x93, 0x02, 0xfd, 0x1b, 0x00, 0x0b, // relaxed dot-add (0xfd 0x113), extract lane 0, end
]);

type DotProbe = (a: number, b: number, c: number) => number;
let dotProbe: Promise<DotProbe | null> | undefined;

/** The probe module's dot, or null where the engine does not compile it. */
function relaxedDotProbe(): Promise<DotProbe | null> {
  dotProbe ??= (async () => {
    if (!WebAssembly.validate(RELAXED_DOT_PROBE)) return null;
    try {
      const { instance } = await WebAssembly.instantiate(RELAXED_DOT_PROBE);
      return instance.exports.d as DotProbe;
    } catch {
      return null;
    }
  })();
  return dotProbe;
}

/**
 * Whether this engine runs relaxed SIMD's 8-bit dot product as the kernels use it (a signed
 * byte times one in 0..127, four per lane, plus the accumulator). Validating is not enough:
 * Node 20's V8, behind --experimental-wasm-relaxed-simd, compiles the opcode with an older
 * draft's meaning (it drops the accumulator and doubles the sum), so the probe also runs it.
 */
export async function relaxedDotAvailable(): Promise<boolean> {
  const dot = await relaxedDotProbe();
  return dot !== null && probed(() => dot(-3, 100, 7) === -1193 && dot(-128, 127, -5) === -65029 && dot(127, 127, 0) === 64516);
}

/**
 * Whether that dot also multiplies second-operand bytes 128–255 as unsigned, exactly (the
 * spec leaves them to the engine: x86's AVX-VNNI reads them unsigned, Arm's sdot signed, and
 * x86 without VNNI saturates pair sums). Where it does, the q4 GEMV takes high nibbles in
 * place and the q8 GEMV runs on the dot (kernels/wasm/linear.c, omni_set_unsigned_dot_bytes).
 */
export async function relaxedDotReadsUnsignedBytes(): Promise<boolean> {
  if (!(await relaxedDotAvailable())) return false;
  const dot = (await relaxedDotProbe())!;
  // 4·(−128)·240: a signed read gives 8192, saturating pair sums −65536.
  return probed(() => dot(-128, 0xf0, 0) === -122880 && dot(127, 0xff, 3) === 129543 && dot(-1, 0x80, 0) === -512);
}

/** A probe's answer; false where running it throws. */
function probed(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}

/**
 * Instantiates the kernel module of `build`: the single-threaded one, or the pthread one with
 * a pool of `threads` (the caller's thread plus threads − 1 workers, all started before this resolves).
 */
export async function loadKernels(threads: number, build: WasmBuild): Promise<KernelExports> {
  const asset: WasmAsset = threads > 1 ? build.threaded : build.singleThreaded;
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
