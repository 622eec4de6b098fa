import type { HostMatrix, WeightFormat } from '../backend.js';
import { OmniError } from '../errors.js';
import { f16ToF32, firstNonFiniteHalf, narrowScales, paddedCols, QUANT_GROUP, quantize, toF16Array } from '../quant.js';
import type { ByteSource } from './byteSource.js';
import { convertedRowBytes } from './manifest.js';
import { decodeFloat, decodeInt32, DTYPE_BYTES, isReadableDtype, type SafetensorsDtype } from './dtypes.js';
import type { TensorInfo } from './header.js';
import { WEIGHT_FORMATS } from './modelWeights.js';

/** A tensor of a safetensors file and the file it is read from. */
export interface StoredTensor {
  info: TensorInfo;
  source: ByteSource;
}

/** Rows [first, first + rows) of a converted matrix: its values and, for q8/q4, its group scales. */
export interface ConvertedPart {
  first: number;
  rows: number;
  data: StoredTensor;
  scales: StoredTensor | null;
}

/**
 * A matrix `omniweb convert` stored in its device format, possibly split by rows. `info` is
 * the original tensor's (name, shape), with `dtype` the format in capitals (Q4, Q8, F16, F32).
 */
export interface ConvertedMatrix {
  info: TensorInfo;
  format: WeightFormat;
  parts: ConvertedPart[];
}

export type StoreEntry = StoredTensor | ConvertedMatrix;

function isConverted(entry: StoreEntry): entry is ConvertedMatrix {
  return 'parts' in entry;
}

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
  readonly #tensors: ReadonlyMap<string, StoreEntry>;
  readonly #sources: readonly ByteSource[];
  readonly #options: StoreOptions;
  readonly #bytesTotal: number;
  /** Says where a missing tensor would have been looked up (the file, or the shard index). */
  readonly #lookedIn: string;
  #bytesDone = 0;

  constructor(
    tensors: ReadonlyMap<string, StoreEntry>,
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
    return this.#entry(name).info;
  }

  /** The device format a converted matrix is stored in, or null for a tensor stored as the original checkpoint had it. */
  convertedFormat(name: string): WeightFormat | null {
    const entry = this.#entry(name);
    return isConverted(entry) ? entry.format : null;
  }

  /** Total bytes of tensor data, for progress bars and memory estimates. */
  get bytesTotal(): number {
    return this.#bytesTotal;
  }

  /** The whole tensor as f32 (F32/F16/BF16). */
  async readF32(name: string): Promise<Float32Array> {
    const tensor = this.#readable(name);
    return decodeFloat(tensor.info.dtype, await this.#readBytes(tensor, 0, tensor.info.byteLength), name);
  }

  /** The whole tensor as int32 (I64 within int32 range, I32, U8). */
  async readInt32(name: string): Promise<Int32Array> {
    const tensor = this.#readable(name);
    return decodeInt32(tensor.info.dtype, await this.#readBytes(tensor, 0, tensor.info.byteLength), name);
  }

  /** The tensor's bytes exactly as stored (any readable dtype), e.g. to copy it into another file. */
  async readStored(name: string): Promise<Uint8Array> {
    const tensor = this.#readable(name);
    return this.#readBytes(tensor, 0, tensor.info.byteLength);
  }

  /** The tensor in its natural host type, with its shape. */
  async readArray(name: string): Promise<HostArray> {
    const tensor = this.#readable(name);
    const shape = [...tensor.info.shape];
    switch (tensor.info.dtype) {
      case 'F32': case 'F16': case 'BF16':
        return { dtype: 'f32', shape, data: await this.readF32(name) };
      case 'I64': case 'I32':
        return { dtype: 'i32', shape, data: await this.readInt32(name) };
      case 'U8':
        return { dtype: 'u8', shape, data: await this.#readBytes(tensor, 0, tensor.info.byteLength) };
    }
  }

  /**
   * A float tensor as a matrix weight `[rows = shape[0], cols = rest]`
   * (conv weights flatten to `[out, in·kernel]`, the backend's layout),
   * converted to `format` block by block so peak memory stays near the result's size.
   * A matrix `omniweb convert` stored in `format` is read as stored, part by part.
   */
  async readMatrix(name: string, format: WeightFormat): Promise<HostMatrix> {
    const entry = this.#entry(name);
    if (isConverted(entry)) return this.#readConverted(entry, format);
    return this.readMatrixRows(name, format, 0, entry.info.shape[0] ?? 0);
  }

  /** Rows [first, first + count) of a float tensor as a matrix weight (see `readMatrix`); `omniweb convert` reads a big matrix this way. */
  async readMatrixRows(name: string, format: WeightFormat, first: number, count: number): Promise<HostMatrix> {
    if (!WEIGHT_FORMATS.includes(format)) {
      throw new OmniError('BAD_INPUT', `readMatrix(${name}): weight format ${JSON.stringify(format)} is not one of ${WEIGHT_FORMATS.join(', ')}`);
    }
    const tensor = this.#readable(name);
    const { info } = tensor;
    if (info.shape.length < 2) {
      throw new OmniError('SHAPE_MISMATCH', `tensor ${name} has shape [${info.shape.join(', ')}]; a matrix weight needs at least 2 dimensions`);
    }
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new OmniError('WRONG_DTYPE', `tensor ${name} is ${info.dtype}; matrix weights must be F32, F16 or BF16`);
    }
    if (!Number.isSafeInteger(first) || !Number.isSafeInteger(count) || first < 0 || count < 0 || first + count > info.shape[0]) {
      throw new OmniError('BAD_INPUT', `readMatrixRows(${name}): rows ${first} … ${first + count} are not inside its ${info.shape[0]} rows`);
    }
    const rows = count;
    const cols = info.shape.slice(1).reduce((a, b) => a * b, 1);
    const rowBytes = cols * DTYPE_BYTES[info.dtype];
    const blockBytes = this.#options.matrixBlockBytes ?? DEFAULT_MATRIX_BLOCK_BYTES;
    const blockRows = Math.max(1, Math.floor(blockBytes / Math.max(rowBytes, 1)));
    const forEachBlock = async (convert: (block: Uint8Array, r0: number, r1: number) => void) => {
      for (let r0 = 0; r0 < rows; r0 += blockRows) {
        const r1 = Math.min(rows, r0 + blockRows);
        convert(await this.#readBytes(tensor, (first + r0) * rowBytes, (r1 - r0) * rowBytes), r0, r1);
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
    // f16 group scales, as llama.cpp's q8_0 and q4_0 keep them: a q4 weight is 0.5625 bytes
    // instead of 0.625, and the decode step is bound by those bytes. A matrix with a scale
    // beyond f16's range turns to f32 scales there; the groups quantized before keep theirs
    // (f16 values, which f32 holds exactly).
    let scales: Uint16Array | Float32Array = allocate(Uint16Array, rows * groups, name);
    await forEachBlock((bytes, r0, r1) => {
      const values = decodeFloat(info.dtype, bytes, name);
      let block = quantize(values, r1 - r0, cols, format, scales instanceof Uint16Array ? 'f16' : 'f32');
      if (block.scales instanceof Uint16Array && firstNonFiniteHalf(block.scales) >= 0) {
        const widened = allocate(Float32Array, rows * groups, name);
        for (let i = 0; i < r0 * groups; i++) widened[i] = f16ToF32(scales[i]);
        scales = widened;
        block = quantize(values, r1 - r0, cols, format, 'f32');
      }
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

  #entry(name: string): StoreEntry {
    const entry = this.#tensors.get(name);
    if (!entry) {
      throw new OmniError('MISSING_TENSOR', `tensor ${name} is not in ${this.#lookedIn}; the checkpoint is incomplete or of another model`);
    }
    return entry;
  }

  #readable(name: string): StoredTensor & { info: { dtype: SafetensorsDtype } } {
    const entry = this.#entry(name);
    if (isConverted(entry)) {
      throw new OmniError('WRONG_DTYPE', `tensor ${name} was stored as a ${entry.format} matrix by omniweb convert; only readMatrix(name, '${entry.format}') reads it`);
    }
    if (!isReadableDtype(entry.info.dtype)) {
      throw new OmniError('UNSUPPORTED_DTYPE', `tensor ${name} in ${entry.info.file} is ${entry.info.dtype}; this runtime reads F32, F16, BF16, I64, I32 and U8`);
    }
    return entry as StoredTensor & { info: { dtype: SafetensorsDtype } };
  }

  /** A converted matrix as stored: its parts' rows copied into one host matrix. */
  async #readConverted(entry: ConvertedMatrix, format: WeightFormat): Promise<HostMatrix> {
    const { info } = entry;
    if (format !== entry.format) {
      throw new OmniError(
        'WRONG_DTYPE',
        `${info.name} was converted to ${entry.format} by omniweb convert and cannot be loaded as ${format}; load with weights ${entry.format} or convert the original checkpoint to ${format}`,
      );
    }
    const rows = info.shape[0];
    const cols = info.shape.slice(1).reduce((a, b) => a * b, 1);
    const { data: dataRow, scales: scalesRow } = convertedRowBytes(cols, format);
    const data = allocate(Uint8Array, rows * dataRow, info.name);
    const scales = allocate(Uint8Array, rows * scalesRow, info.name);
    for (const part of entry.parts) {
      data.set(await this.#readBytes(part.data, 0, part.rows * dataRow), part.first * dataRow);
      if (part.scales) scales.set(await this.#readBytes(part.scales, 0, part.rows * scalesRow), part.first * scalesRow);
    }
    switch (format) {
      case 'f32': return { format, rows, cols, data: new Float32Array(data.buffer) };
      case 'f16': return { format, rows, cols, data: new Uint16Array(data.buffer) };
      // Stored as f32; f16-valued ones (what readMatrixRows makes) go back to f16, losslessly.
      default: return { format, rows, cols, paddedCols: paddedCols(cols), data, scales: narrowScales(new Float32Array(scales.buffer)) };
    }
  }

  async #readBytes(tensor: StoredTensor, offset: number, length: number): Promise<Uint8Array> {
    const { info, source } = tensor;
    if (this.#options.signal?.aborted) throw new OmniError('ABORTED', `reading ${info.name} was aborted`);
    let bytes = await source.read(info.byteOffset + offset, length);
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
