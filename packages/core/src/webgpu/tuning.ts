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
  /** linear/matmul run the GEMV kernel for at most this many rows of x. */
  gemvMaxRows: number;
  gemv: { rowsPerWG: number; threadsPerRow: number };
  /** Register-blocked tiled matmul: (wgM·4) × (wgN·4) outputs per workgroup, tileK-deep slices. */
  matmul: { wgM: number; wgN: number; tileK: number };
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

/** Output dims one prefill thread accumulates (ACC_MAX in attention_prefill.wgsl). */
const PREFILL_ACC_MAX = 32;

export function chooseTuning(limits: GPUSupportedLimits): Tuning {
  const maxThreads = limits.maxComputeInvocationsPerWorkgroup;
  const sharedBytes = limits.maxComputeWorkgroupStorageSize;
  const rowWGMax = Math.min(256, maxThreads);
  return {
    elementWG: Math.min(256, maxThreads),
    rowWG: (cols) => (cols <= 256 ? Math.min(64, rowWGMax) : rowWGMax),
    gemvMaxRows: 4,
    gemv: { rowsPerWG: 4, threadsPerRow: 64 },
    matmul: { wgM: 16, wgN: 16, tileK: 16 },
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
