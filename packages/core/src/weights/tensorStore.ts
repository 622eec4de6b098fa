import type { HostMatrix, WeightFormat } from '../backend.js';
import { OmniError } from '../errors.js';
import { paddedCols, QUANT_GROUP, quantize, toF16Array } from '../quant.js';
import type { ByteSource } from './byteSource.js';
import { decodeFloat, decodeInt32, DTYPE_BYTES, isReadableDtype, type SafetensorsDtype } from './dtypes.js';
import type { TensorInfo } from './header.js';
import { WEIGHT_FORMATS } from './modelWeights.js';

/** A tensor in its stored element type: F32/F16/BF16 → f32, I64/I32 → i32, U8 → u8. */
export interface HostArray {
  dtype: 'f32' | 'i32' | 'u8';
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}

export interface ReadProgress {
  /** Tensor bytes read so far through this store (a tensor read twice counts twice). */
  bytesDone: number;
  /** Bytes of all tensors in the store. */
  bytesTotal: number;
  /** The tensor just read. */
  tensor: string;
}

export interface StoreOptions {
  onProgress?: (progress: ReadProgress) => void;
  /** Checked before every read; a fired signal ends the read with ABORTED. */
  signal?: AbortSignal;
  /**
   * Source bytes `readMatrix` converts per step (default 64 MiB): a multi-GB
   * bf16 embedding read whole would sit in memory next to its converted form,
   * so a matrix is read and converted a block of rows at a time.
   */
  matrixBlockBytes?: number;
}

const DEFAULT_MATRIX_BLOCK_BYTES = 64 * 1024 * 1024;

/** A typed array of `length` elements; a failed allocation (a too-big weight for this heap) becomes OUT_OF_MEMORY. */
function allocate<T>(Type: new (length: number) => T, length: number, tensor: string): T {
  try {
    return new Type(length);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    throw new OmniError('OUT_OF_MEMORY', `cannot allocate ${length} elements for ${tensor}: ${e.message}; use a smaller weight format (q8/q4) or a smaller model`, { cause: e });
  }
}

/**
 * Named tensors spread over one or more safetensors files. Reads one tensor
 * (or one block of a tensor's rows) at a time; nothing is cached.
 */
export class TensorStore {
  readonly #tensors: ReadonlyMap<string, { info: TensorInfo; source: ByteSource }>;
  readonly #sources: readonly ByteSource[];
  readonly #options: StoreOptions;
  readonly #bytesTotal: number;
  /** Says where a missing tensor would have been looked up (the file, or the shard index). */
  readonly #lookedIn: string;
  #bytesDone = 0;

  constructor(
    tensors: ReadonlyMap<string, { info: TensorInfo; source: ByteSource }>,
    sources: readonly ByteSource[],
    lookedIn: string,
    options: StoreOptions = {},
  ) {
    this.#tensors = tensors;
    this.#sources = sources;
    this.#lookedIn = lookedIn;
    this.#options = options;
    let total = 0;
    for (const { info } of tensors.values()) total += info.byteLength;
    this.#bytesTotal = total;
  }

  /** Tensor names in header order. */
  names(): string[] {
    return [...this.#tensors.keys()];
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Where a tensor lives; throws MISSING_TENSOR when absent. */
  info(name: string): TensorInfo {
    const entry = this.#tensors.get(name);
    if (!entry) {
      throw new OmniError('MISSING_TENSOR', `tensor ${name} is not in ${this.#lookedIn}; the checkpoint is incomplete or of another model`);
    }
    return entry.info;
  }

  /** Total bytes of tensor data, for progress bars and memory estimates. */
  get bytesTotal(): number {
    return this.#bytesTotal;
  }

  /** The whole tensor as f32 (F32/F16/BF16). */
  async readF32(name: string): Promise<Float32Array> {
    const info = this.#readable(name);
    return decodeFloat(info.dtype, await this.#readBytes(info, 0, info.byteLength), name);
  }

  /** The whole tensor as int32 (I64 within int32 range, I32, U8). */
  async readInt32(name: string): Promise<Int32Array> {
    const info = this.#readable(name);
    return decodeInt32(info.dtype, await this.#readBytes(info, 0, info.byteLength), name);
  }

  /** The tensor in its natural host type, with its shape. */
  async readArray(name: string): Promise<HostArray> {
    const info = this.#readable(name);
    const shape = [...info.shape];
    switch (info.dtype) {
      case 'F32': case 'F16': case 'BF16':
        return { dtype: 'f32', shape, data: await this.readF32(name) };
      case 'I64': case 'I32':
        return { dtype: 'i32', shape, data: await this.readInt32(name) };
      case 'U8':
        return { dtype: 'u8', shape, data: await this.#readBytes(info, 0, info.byteLength) };
    }
  }

  /**
   * A float tensor as a matrix weight `[rows = shape[0], cols = rest]`
   * (conv weights flatten to `[out, in·kernel]`, the backend's layout),
   * converted to `format` block by block so peak memory stays near the result's size.
   */
  async readMatrix(name: string, format: WeightFormat): Promise<HostMatrix> {
    if (!WEIGHT_FORMATS.includes(format)) {
      throw new OmniError('BAD_INPUT', `readMatrix(${name}): weight format ${JSON.stringify(format)} is not one of ${WEIGHT_FORMATS.join(', ')}`);
    }
    const info = this.#readable(name);
    if (info.shape.length < 2) {
      throw new OmniError('SHAPE_MISMATCH', `tensor ${name} has shape [${info.shape.join(', ')}]; a matrix weight needs at least 2 dimensions`);
    }
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new OmniError('WRONG_DTYPE', `tensor ${name} is ${info.dtype}; matrix weights must be F32, F16 or BF16`);
    }
    const rows = info.shape[0];
    const cols = info.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = cols * DTYPE_BYTES[info.dtype];
    const blockBytes = this.#options.matrixBlockBytes ?? DEFAULT_MATRIX_BLOCK_BYTES;
    const blockRows = Math.max(1, Math.floor(blockBytes / Math.max(rowBytes, 1)));
    const forEachBlock = async (convert: (block: Uint8Array, r0: number, r1: number) => void) => {
      for (let r0 = 0; r0 < rows; r0 += blockRows) {
        const r1 = Math.min(rows, r0 + blockRows);
        convert(await this.#readBytes(info, r0 * rowBytes, (r1 - r0) * rowBytes), r0, r1);
      }
    };

    if (format === 'f32') {
      const data = allocate(Float32Array, rows * cols, name);
      await forEachBlock((bytes, r0) => data.set(decodeFloat(info.dtype, bytes, name), r0 * cols));
      return { format, rows, cols, data };
    }
    if (format === 'f16') {
      const data = allocate(Uint16Array, rows * cols, name);
      await forEachBlock((bytes, r0) => {
        // Stored F16 is taken bit for bit; converting through f32 would be exact too, but slower.
        const block = info.dtype === 'F16'
          ? new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.length / 2)
          : toF16Array(decodeFloat(info.dtype, bytes, name));
        data.set(block, r0 * cols);
      });
      return { format, rows, cols, data };
    }
    const pc = paddedCols(cols);
    const groups = pc / QUANT_GROUP;
    const data = allocate(Uint8Array, format === 'q8' ? rows * pc : (rows * pc) / 2, name);
    const scales = allocate(Float32Array, rows * groups, name);
    await forEachBlock((bytes, r0, r1) => {
      const block = quantize(decodeFloat(info.dtype, bytes, name), r1 - r0, cols, format);
      // Rows quantize independently, so blocks concatenate (pc is even: q4 rows start on a byte).
      data.set(block.data, format === 'q8' ? r0 * pc : (r0 * pc) / 2);
      scales.set(block.scales, r0 * groups);
    });
    return { format, rows, cols, paddedCols: pc, data, scales };
  }

  /** Closes every file this store opened. */
  async close(): Promise<void> {
    await Promise.all(this.#sources.map((s) => s.close()));
  }

  #readable(name: string): TensorInfo & { dtype: SafetensorsDtype } {
    const info = this.info(name);
    if (!isReadableDtype(info.dtype)) {
      throw new OmniError('UNSUPPORTED_DTYPE', `tensor ${name} in ${info.file} is ${info.dtype}; this runtime reads F32, F16, BF16, I64, I32 and U8`);
    }
    return info as TensorInfo & { dtype: SafetensorsDtype };
  }

  async #readBytes(info: TensorInfo, offset: number, length: number): Promise<Uint8Array> {
    if (this.#options.signal?.aborted) throw new OmniError('ABORTED', `reading ${info.name} was aborted`);
    let bytes = await this.#tensors.get(info.name)!.source.read(info.byteOffset + offset, length);
    if (bytes.length !== length) {
      throw new OmniError('IO', `${info.file}: asked for ${length} bytes of ${info.name}, the source returned ${bytes.length}`);
    }
    // Typed-array views need an aligned start; the built-in sources return fresh buffers, a custom one may not.
    if (bytes.byteOffset % 8 !== 0) bytes = bytes.slice();
    this.#bytesDone += length;
    this.#options.onProgress?.({ bytesDone: this.#bytesDone, bytesTotal: this.#bytesTotal, tensor: info.name });
    return bytes;
  }
}
