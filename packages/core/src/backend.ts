/**
 * The op set every model is written against. Two real implementations exist
 * (`webgpu`: WGSL compute shaders; `wasm`: emscripten SIMD kernels); a JS
 * oracle in `kernels/oracle` implements the same interface for tests only.
 *
 * Conventions
 * - Ops enqueue work and return at once; only `read`/`sync` wait.
 * - Activations are row-major and time-major: `[tokens, hidden]`, `[tokens, heads, headDim]`.
 *   An op that takes "rows" views a tensor as `[size / lastDim, lastDim]`.
 * - A matrix weight has the layout of a torch `Linear`: `[rows = out, cols = in]`.
 * - `out`, when given, must have the result's shape; results never alias inputs unless an op says so.
 * - Wrong shapes or dtypes throw `OmniError('SHAPE_MISMATCH' | 'WRONG_DTYPE')` before any work is queued.
 */
export type BackendKind = 'webgpu' | 'wasm' | 'oracle';
export type ElementType = 'f32' | 'i32';

export interface Tensor {
  readonly shape: readonly number[];
  readonly dtype: ElementType;
  /** Element count: the product of `shape`. */
  readonly size: number;
  readonly backend: BackendKind;
}

export type WeightFormat = 'f32' | 'f16' | 'q8' | 'q4';

/** A matrix weight on the device, `[rows, cols]`, possibly quantized and possibly split internally. */
export interface Weight {
  readonly rows: number;
  readonly cols: number;
  readonly format: WeightFormat;
  readonly backend: BackendKind;
  /** Device bytes held, for memory reports. */
  readonly byteSize: number;
}

/** Host form of a weight as the loader produces it; see `quant.ts` for the q8/q4 layouts. */
export type HostMatrix =
  | { format: 'f32'; rows: number; cols: number; data: Float32Array }
  | { format: 'f16'; rows: number; cols: number; data: Uint16Array }
  | QuantizedMatrix;

export interface QuantizedMatrix {
  format: 'q8' | 'q4';
  rows: number;
  cols: number;
  /** `cols` rounded up to the group size (32); padding elements are zero. */
  paddedCols: number;
  /** q8: int8 `[rows, paddedCols]`. q4: `[rows, paddedCols / 2]` bytes, element 2j in the low nibble, stored as q + 8. */
  data: Uint8Array;
  /** One scale per 32-element group, `[rows, paddedCols / 32]`: f32, or f16 bits in a Uint16Array. */
  scales: Float32Array | Uint16Array;
}

/** One product of `linears`: out = x · wᵀ (+ bias). */
export interface LinearPart {
  w: Weight;
  bias?: Tensor | null;
  out: Tensor;
}

/**
 * Rotary embedding description, built once per model.
 * Frequency j (0 ≤ j < rotaryDim/2) turns by `positions[stream[j]][t] * invFreq[j]`.
 * - 'half': pairs (j, j + rotaryDim/2) — Qwen2 / M-RoPE / vision.
 * - 'interleaved': pairs (2j, 2j + 1) — the Token2Wav DiT.
 * Dimensions ≥ rotaryDim are passed through. Only the first `heads` heads are rotated (default: all).
 */
export interface RopeSpec {
  invFreq: Float32Array;
  /** Which position stream each frequency reads; length invFreq.length; values < the positions' stream count. */
  stream: Int32Array;
  style: 'half' | 'interleaved';
  heads?: number;
}

/** Which keys each query may see. Query i and key j are row indices into q and into the first `kvLength` rows of k/v. */
export type AttentionMask =
  | { kind: 'none' }
  /** Query i may see keys j ≤ queryStart + i (queryStart = cache rows before this chunk). */
  | { kind: 'causal'; queryStart: number }
  /** Block-diagonal: `bounds` = [0, b1, …, T] (cu_seqlens); a query sees keys of its own segment. Requires T == kvLength. */
  | { kind: 'segments'; bounds: Int32Array }
  /** DiT: query block qb = floor(i / blockSize) sees key blocks in [qb - back, qb + ahead]. */
  | { kind: 'blockWindow'; blockSize: number; back: number; ahead: number };

export interface AttentionOptions {
  /** Rows of k/v that hold keys (a cache may be larger). Default: k.shape[0]. */
  kvLength?: number;
  /** Default 1 / sqrt(headDim). */
  scale?: number;
  mask: AttentionMask;
}

/**
 * One layer of an 8-bit KV cache (`Backend.kv8`): `rows` rows of keys and values `[heads, headDim]`,
 * each vector stored as codes round(x / s) in −127..127 with s = max |x| / 127 (a quarter of f32's bytes).
 */
export interface KV8 {
  readonly rows: number;
  readonly heads: number;
  readonly headDim: number;
  readonly backend: BackendKind;
  /** Bytes held, for memory reports. */
  readonly byteSize: number;
}

/** The 8-bit KV cache's ops, on the backends that have them (wasm, and the oracle for tests). */
export interface KV8Ops {
  /** A layer of `rows` rows, all zero. */
  create(rows: number, heads: number, headDim: number): KV8;
  /** Rows [row, row + n) ← k and v `[n, heads, headDim]`, quantized. */
  write(k: Tensor, v: Tensor, dst: KV8, row: number): void;
  /** k and v `[n, heads, headDim]` ← rows [row, row + n), dequantized. */
  read(src: KV8, row: number, k: Tensor, v: Tensor): void;
  /**
   * `attention` (q `[T, Hq, headDim]`) over the first `kvLength` rows. The sums are integer:
   * each query head is quantized like a cached vector, and the value weights e^{s − max}·s_v
   * of every 128 rows [128c, 128c + 128) become codes 0..127 of their largest; the softmax's
   * denominator stays f32. Agrees with f32 attention over the dequantized rows to ~1e-2.
   */
  attention(q: Tensor, kv: KV8, opts: AttentionOptions, out?: Tensor): Tensor;
  dispose(kv: KV8): void;
}

export interface Conv1dOptions {
  kernel: number;
  stride?: number;
  padding?: number;
  dilation?: number;
  padMode?: 'zeros' | 'reflect';
}

/** An elementwise function for `unary`. */
export type UnaryFunction =
  | { kind: 'relu' }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' }
  /** x · sigmoid(x). */
  | { kind: 'silu' }
  | { kind: 'sqrt' }
  /** min(max(x, min), max); a bound may be ±Infinity (open on that side). */
  | { kind: 'clamp'; min: number; max: number }
  /** scale · x + shift. */
  | { kind: 'affine'; scale: number; shift: number };

/**
 * The FIR filters of BigVGAN's anti-aliased activation (12 Kaiser-windowed sinc taps each, fact
 * sheet §8.5) as f32 tensors: `up` interpolates ×2 (transposed conv, stride 2, gain 2), `down` decimates ×2.
 */
export interface ResampleFilters {
  up: Tensor;
  down: Tensor;
}

export interface BackendInfo {
  kind: BackendKind;
  /** Adapter description (webgpu) or "wasm simd128 (N threads, …)" ("wasm relaxed simd …"). */
  name: string;
  shaderF16: boolean;
  /** Largest single device buffer/binding we may create; bigger weights are split by rows. */
  maxBufferBytes: number;
  threads: number;
  /** wasm only: which kernel build runs ('relaxed' SIMD or 'baseline' SIMD128; see WasmSimd). */
  wasmSimd?: 'relaxed' | 'baseline';
  /** wasm relaxed build only: whether its 8-bit dot takes bytes above 127 ('unsigned': q4 high nibbles in place, q8 on the dot; see WasmDotBytes). */
  wasmDotBytes?: 'unsigned' | 'portable';
}

export interface Backend {
  readonly info: BackendInfo;

  // ---- memory
  tensor(data: Float32Array | Int32Array, shape: readonly number[]): Tensor;
  empty(shape: readonly number[], dtype?: ElementType): Tensor;
  /** Upload a matrix weight in the format given (quantized on the host already, see quant.ts). */
  weight(matrix: HostMatrix): Weight;
  /** Copy back to the host. `offset`/`count` in elements select a range (default: all). */
  read(t: Tensor, range?: { offset: number; count: number }): Promise<Float32Array | Int32Array>;
  /** Wait until all queued work is done. */
  sync(): Promise<void>;
  dispose(t: Tensor | Weight): void;
  /** Element copy src[srcOffset..+count] → dst[dstOffset..]; used for KV-cache writes and slicing. */
  copy(src: Tensor, dst: Tensor, srcOffset: number, dstOffset: number, count: number): void;
  /** A view of t with another shape of the same size; shares storage (dispose one, not both). */
  reshape(t: Tensor, shape: readonly number[]): Tensor;
  /** Free everything this backend holds. */
  destroy(): void;

  // ---- linear algebra
  /** y[M,N] = x[M,K] · Wᵀ (+ bias[N]); M == 1 runs the GEMV kernel. */
  linear(x: Tensor, w: Weight, bias?: Tensor | null, out?: Tensor): Tensor;
  /**
   * `linear` of one x by several weights (q/k/v, gate/up), each into its part's `out`; returns
   * the outs in order. Every part is checked before any runs. The wasm backend prepares x once
   * and shares the rows of all the weights out among its threads as one job.
   */
  linears(x: Tensor, parts: readonly LinearPart[]): Tensor[];
  /** Plain f32 matmul: a[M,K] · b[K,N] (or bᵀ when transposeB and b is [N,K]). */
  matmul(a: Tensor, b: Tensor, opts?: { transposeB?: boolean }, out?: Tensor): Tensor;

  // ---- row ops (over the last dimension)
  rmsnorm(x: Tensor, w: Tensor, eps: number, out?: Tensor): Tensor;
  /** w/b may be null (no affine), as in the DiT's adaLN norms. */
  layernorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number, out?: Tensor): Tensor;
  softmax(x: Tensor, out?: Tensor): Tensor;
  /** Index of the largest value in each row (first on ties) → i32 [rows]. */
  argmax(x: Tensor, out?: Tensor): Tensor;

  // ---- elementwise
  /** silu(gate) * up. */
  siluMul(gate: Tensor, up: Tensor, out?: Tensor): Tensor;
  gelu(x: Tensor, mode: 'erf' | 'tanh', out?: Tensor): Tensor;
  /** a + b; b may also be a single row ([lastDim]) broadcast over a's rows. */
  add(a: Tensor, b: Tensor, out?: Tensor): Tensor;
  /** a * b with the same broadcast rule as add. */
  mul(a: Tensor, b: Tensor, out?: Tensor): Tensor;

  // ---- model-shaped ops
  /** Rows of a [V, D] table (any weight format) at ids → f32 [T, D]. */
  embedding(table: Weight, ids: Int32Array | Tensor, out?: Tensor): Tensor;
  /** Rotate x [T, H, D] by positions (i32 [streams, T]); may run in place (out === x). */
  rotary(x: Tensor, positions: Tensor, rope: RopeSpec, out?: Tensor): Tensor;
  /** q [T, Hq, D], k/v [S, Hkv, D] (Hq a multiple of Hkv: GQA) → [T, Hq, D]. */
  attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, out?: Tensor): Tensor;
  /** x [L, Cin] (time-major), w [Cout, Cin·kernel] (torch Conv1d weight flattened) → [Lout, Cout]. */
  conv1d(x: Tensor, w: Weight, bias: Tensor | null, opts: Conv1dOptions, out?: Tensor): Tensor;
  /** out[i] = x[idx[i]] by rows: x [R, C], idx (i32, length n) → [n, C]. */
  gatherRows(x: Tensor, idx: Int32Array | Tensor, out?: Tensor): Tensor;
  /** [M, N] → [N, M]. */
  transpose(x: Tensor, out?: Tensor): Tensor;
  /** Mean over non-overlapping windows of `size` rows: [L, C] → [floor(L / size), C]. */
  avgPoolRows(x: Tensor, size: number, out?: Tensor): Tensor;
  /** f(x) elementwise, any shape (see `UnaryFunction`). */
  unary(x: Tensor, fn: UnaryFunction, out?: Tensor): Tensor;
  /**
   * BigVGAN's anti-aliased SnakeBeta on x [L, C] (time-major), per channel c, with log-scale
   * alphaLog/betaLog [C] and the filters `f` (up: even length Ku ≥ 4, down: even length Kd ≥ 2);
   * with P = 3·Ku/2 − 3 (torch's output crop):
   *   xc[i] = x[clamp(i, 0, L − 1)]                      (replicate padding)
   *   u[n]  = 2 · Σ_{k < Ku, n + P − k even} f.up[k] · xc[(n + P − k) / 2 − (Ku/2 − 1)],  0 ≤ n < 2L
   *   s[n]  = u[n] + sin²(u[n] · e^alphaLog[c]) / (e^betaLog[c] + 1e-9)
   *   y[t]  = Σ_{k < Kd} f.down[k] · s[clamp(2t + k − (Kd/2 − 1), 0, 2L − 1)],  0 ≤ t < L
   * i.e. torch's UpSample1d → SnakeBeta → DownSample1d in one pass, without the 2L intermediate. → [L, C].
   */
  snakeBeta(x: Tensor, alphaLog: Tensor, betaLog: Tensor, f: ResampleFilters, out?: Tensor): Tensor;

  // ---- optional
  /** 8-bit KV cache layers; absent where the backend has none (WebGPU). */
  readonly kv8?: KV8Ops;
}
