/** Every failure a caller can act on carries one of these codes. */
export type OmniErrorCode =
  | 'BAD_HEADER'          // safetensors header is not valid (length, JSON, fields)
  | 'TRUNCATED'           // file or stream ends before the bytes it announces
  | 'HASH_MISMATCH'       // a downloaded or cached file's sha256 is not the one its manifest lists
  | 'BAD_OFFSETS'         // tensor byte ranges overlap, are out of order or out of range
  | 'UNSUPPORTED_DTYPE'   // a dtype the runtime does not read
  | 'SHAPE_MISMATCH'      // shape and byte size, or shape and config, disagree
  | 'MISSING_TENSOR'      // a tensor the model needs is not in the checkpoint
  | 'BAD_CONFIG'          // config.json is invalid or describes a model we cannot run
  | 'UNSUPPORTED_CONFIG'  // valid config, but a feature this runtime does not implement
  | 'BAD_INPUT'           // a caller passed an argument of the wrong kind, size or range
  | 'WRONG_DTYPE'         // a tensor of the wrong element type reached an op
  | 'NO_ADAPTER'          // WebGPU was asked for and no adapter exists
  | 'DEVICE_LOST'         // the GPU device was lost; the stage must be rebuilt
  | 'OUT_OF_MEMORY'       // an allocation beyond the device's or the heap's limits
  | 'CONTEXT_OVERFLOW'    // the KV cache is full and no eviction policy is set
  | 'NUMERIC'             // NaN or Inf where a finite value is required
  | 'ABORTED'             // the caller's AbortSignal fired
  | 'IO'                  // reading a file or URL failed
  | 'INTERNAL';           // a bug: an invariant of ours was broken

export class OmniError extends Error {
  readonly code: OmniErrorCode;
  constructor(code: OmniErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OmniError';
    this.code = code;
  }
}

export function isOmniError(e: unknown, code?: OmniErrorCode): e is OmniError {
  return e instanceof OmniError && (code === undefined || e.code === code);
}
