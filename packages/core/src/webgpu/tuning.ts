/**
 * The one place that chooses workgroup sizes and tiling for the WGSL kernels. Choices follow
 * what pays on discrete and integrated GPUs; SwiftShader (the test adapter) is a correctness
 * device only, so nothing here is tuned for it.
 */
export interface Tuning {
  /** Threads per workgroup of the one-thread-per-element kernels. */
  elementWG: number;
  /** Threads per row of the row reductions (rmsnorm, layernorm, softmax, argmax): a power of two. */
  rowWG(cols: number): number;
  /**
   * The kernel for one linear/matmul/conv1d product y[M, N] = x[M, K] · w[N, K]ᵀ. `rowInput`:
   * x is a plain [M, K] tensor (the GEMV kernel needs it; conv1d's implicit im2col is not).
   */
  matmulPlan(M: number, N: number, K: number, rowInput: boolean): MatmulPlan;
  /** attention runs the split-over-keys decode kernels for at most this many queries. */
  decodeMaxQueries: number;
  decodeWG: number;
  /** Keys per decode split: enough splits to fill the GPU, few enough to combine cheaply. */
  decodeChunk(kvLength: number, qHeads: number, tokens: number): number;
  prefill(headDim: number): { blockQ: number; blockKV: number; threadsPerQuery: number };
  transposeTile: number;
  /** Dispatches batched into one command buffer before it is submitted. */
  dispatchesPerSubmit: number;
}

export type MatmulPlan =
  /** One workgroup per rowsPerWG output columns, threadsPerRow threads reducing over K (gemv.wgsl). */
  | { kind: 'gemv'; rowsPerWG: number; threadsPerRow: number }
  /** One thread per blockM × blockN outputs, no workgroup memory (matmul_direct.wgsl). */
  | { kind: 'direct'; wg: number; blockM: number; blockN: number }
  /** Register-blocked tiled matmul: (wgM·4) × (wgN·4) outputs per workgroup, tileK-deep slices. */
  | { kind: 'tiled'; wgM: number; wgN: number; tileK: number };

/** linear/matmul run a GEMV-shaped kernel for at most this many rows of x (decode steps). */
const GEMV_MAX_ROWS = 4;
/**
 * Up to this K the GEMV's 64 threads per output have ≤ 4 blocks of 8 each (K ≤ 256 means at
 * most 32 blocks for 64 threads: half of them idle) and its 7 barrier steps cost more than the
 * dot product itself; one thread per output streams its ≤ 1 KiB (f32) weight row and needs no
 * reduction. Above it a row is long enough that splitting it over threads pays on every GPU.
 */
const GEMV_SHORT_K = 256;
/**
 * The tiled kernel's tile is 64 × 64 outputs: with M or N at most 16 ≥ 75% of its work is on
 * padding, while the direct kernel re-reads x at most ⌈N/4⌉ times (N ≤ 16: ≤ 4, from cache) or,
 * with M ≤ 16 taken whole per thread, reads each weight row once.
 */
const SKINNY = 16;
/**
 * Below this many multiply-adds (a fraction of a µs on any GPU) a product is launch-bound on
 * every GPU: the tile loads and barriers are pure overhead, so the barrier-free kernel runs
 * instead. Kept low because the direct kernel re-reads x ⌈N/4⌉ times, which costs when x is
 * conv1d's implicit im2col (index arithmetic per element) and K is long.
 */
const SMALL_PRODUCT = 1 << 18;
/**
 * Up to this K each output takes ≤ 64 multiply-adds per 4 bytes written: ≤ 32 FLOP/B, under the
 * compute/bandwidth ridge of discrete and integrated GPUs alike, so the product is bound by
 * writing y (e.g. prefill logits [T, 151936] at K = 32), not by re-reading operands; the tiled
 * kernel's shared-memory reuse buys nothing there and its barriers still cost.
 */
const OUTPUT_BOUND_K = 64;
/** Direct-kernel workgroup: a multiple of every SIMD width (32, 64); no workgroup memory. */
const DIRECT_WG = 64;

function matmulPlan(M: number, N: number, K: number, rowInput: boolean): MatmulPlan {
  if (M <= GEMV_MAX_ROWS) {
    // Decode-shaped: memory-bound on the weight; one pass over it in either kernel.
    if (rowInput && K > GEMV_SHORT_K) return { kind: 'gemv', rowsPerWG: 4, threadsPerRow: 64 };
    return { kind: 'direct', wg: DIRECT_WG, blockM: M, blockN: 1 };
  }
  if (M <= SKINNY) return { kind: 'direct', wg: DIRECT_WG, blockM: M, blockN: 4 };
  if (N <= SKINNY || M * N * K <= SMALL_PRODUCT) {
    return { kind: 'direct', wg: DIRECT_WG, blockM: 4, blockN: Math.min(4, N) };
  }
  // 16 rows per thread: each weight block loaded feeds 16 rows (4× fewer weight re-reads than
  // 4 × 4); 64 f32 accumulators stay in registers on every GPU. Measured 1.7× faster than 4 × 4
  // for [152, 32] · [151936, 32]ᵀ on SwiftShader.
  if (K <= OUTPUT_BOUND_K) return { kind: 'direct', wg: DIRECT_WG, blockM: 16, blockN: 4 };
  return { kind: 'tiled', wgM: 16, wgN: 16, tileK: 16 };
}

/** Output dims one prefill thread accumulates (ACC_MAX in attention_prefill.wgsl). */
const PREFILL_ACC_MAX = 32;

export function chooseTuning(limits: GPUSupportedLimits): Tuning {
  const maxThreads = limits.maxComputeInvocationsPerWorkgroup;
  const sharedBytes = limits.maxComputeWorkgroupStorageSize;
  const rowWGMax = Math.min(256, maxThreads);
  return {
    elementWG: Math.min(256, maxThreads),
    // One or two elements per thread up to 128 columns: a workgroup of one warp (32) has a
    // reduction tree one step shorter and no idle half; 64 up to 256, then 256.
    rowWG: (cols) => Math.min(cols <= 128 ? 32 : cols <= 256 ? 64 : 256, rowWGMax),
    matmulPlan,
    decodeMaxQueries: 4,
    decodeWG: 64,
    decodeChunk: (kvLength, qHeads, tokens) => {
      // Aim for ≥ ~256 workgroups in flight before making chunks shorter than 64 keys.
      for (const chunk of [256, 128]) {
        if (Math.ceil(kvLength / chunk) * qHeads * tokens >= 256) return chunk;
      }
      return 64;
    },
    prefill: (headDim) => {
      const threadsPerQuery = Math.ceil(headDim / PREFILL_ACC_MAX);
      const blockQ = Math.max(1, Math.min(16, Math.floor(maxThreads / threadsPerQuery)));
      // k and v tiles plus the score block must fit in workgroup memory.
      let blockKV = 32;
      while (blockKV > 1 && (2 * blockKV * headDim + blockQ * blockKV) * 4 > sharedBytes) blockKV /= 2;
      return { blockQ, blockKV, threadsPerQuery };
    },
    transposeTile: 16,
    dispatchesPerSubmit: 64,
  };
}
