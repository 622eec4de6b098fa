import { OmniError } from '../errors.js';
import { DTYPE_BYTES, type SafetensorsDtype } from './dtypes.js';

/** One tensor of a file to be written: its header entry, before any data exists. */
export interface TensorSpec {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
}

/** Where a planned tensor's bytes go: `[begin, end)` of the data section. */
export interface PlannedTensor extends TensorSpec {
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsPlan {
  /** The 8-byte length prefix and the JSON header, padded with spaces to a multiple of 8 (data stays aligned). */
  readonly header: Uint8Array<ArrayBuffer>;
  /** Tensors in file order with their data offsets. */
  readonly tensors: readonly PlannedTensor[];
  /** Length of the data section. */
  readonly dataBytes: number;
}

/**
 * Lays out a safetensors file: header bytes and each tensor's data range, in
 * the order given. Both writers use it, so buffered and streamed files agree byte for byte.
 */
export function planSafetensors(tensors: readonly TensorSpec[], metadata: Record<string, string> = {}): SafetensorsPlan {
  if (!Array.isArray(tensors as unknown)) throw new OmniError('BAD_INPUT', 'planSafetensors takes a list of { name, dtype, shape }');
  if (metadata === null || typeof metadata !== 'object' || !Object.values(metadata).every((v) => typeof v === 'string')) {
    throw new OmniError('BAD_INPUT', 'safetensors metadata must be a record of strings');
  }
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const planned: PlannedTensor[] = [];
  let offset = 0;
  for (const { name, dtype, shape } of tensors) {
    if (typeof name !== 'string' || name === '' || name === '__metadata__' || Object.hasOwn(header, name)) {
      throw new OmniError('BAD_INPUT', `safetensors writer: tensor name ${JSON.stringify(name)} is empty, reserved or used twice`);
    }
    const itemBytes: number | undefined = Object.hasOwn(DTYPE_BYTES, dtype) ? DTYPE_BYTES[dtype] : undefined;
    if (itemBytes === undefined) {
      throw new OmniError('UNSUPPORTED_DTYPE', `safetensors writer: tensor ${name} has dtype ${JSON.stringify(dtype)}; writable: ${Object.keys(DTYPE_BYTES).join(', ')}`);
    }
    const count = Array.isArray(shape) ? shape.reduce((a, b) => a * b, 1) : NaN;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !Number.isSafeInteger(count * itemBytes)) {
      throw new OmniError('BAD_INPUT', `safetensors writer: tensor ${name} has shape ${JSON.stringify(shape)}, not a list of non-negative integers of safe size`);
    }
    const end = offset + count * itemBytes;
    header[name] = { dtype, shape, data_offsets: [offset, end] };
    planned.push({ name, dtype, shape: [...shape], begin: offset, end });
    offset = end;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + headerLength);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(headerLength), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length);
  return { header: bytes, tensors: planned, dataBytes: offset };
}

/** Where streamed bytes go, in order (a file, a network upload, a test buffer). */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/** A sink that creates (or truncates) a local file (Node only). */
export async function fileSink(path: string): Promise<ByteSink> {
  if (typeof path !== 'string' || path === '') throw new OmniError('BAD_INPUT', `fileSink takes a file path, got ${JSON.stringify(path)}`);
  const fs = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(path, 'w');
  } catch (e) {
    throw new OmniError('IO', `cannot create ${path}: ${(e as Error).message}`, { cause: e });
  }
  return {
    async write(bytes) {
      try {
        // A write may take fewer bytes than offered (full disk, signals); keep going until done.
        for (let done = 0; done < bytes.length;) {
          const { bytesWritten } = await handle.write(bytes, done, bytes.length - done);
          done += bytesWritten;
        }
      } catch (e) {
        throw new OmniError('IO', `writing ${path} failed: ${(e as Error).message}`, { cause: e });
      }
    },
    async close() {
      await handle.close();
    },
  };
}

/** The bytes of one tensor, produced piece by piece in order. */
export type TensorBytes = (tensor: PlannedTensor, index: number) => Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes a safetensors file to `sink` without holding it in memory: the
 * header first (shapes are known up front), then each tensor's bytes as its
 * producer yields them. Each producer must yield exactly its tensor's byte
 * length (BAD_INPUT otherwise). Returns the file's length; the caller closes the sink.
 */
export async function streamSafetensors(
  sink: ByteSink,
  tensors: readonly TensorSpec[],
  tensorBytes: TensorBytes,
  metadata: Record<string, string> = {},
): Promise<number> {
  if (typeof sink?.write !== 'function' || typeof tensorBytes !== 'function') {
    throw new OmniError('BAD_INPUT', 'streamSafetensors takes a sink with write(), the tensor list and a function yielding each tensor\'s bytes');
  }
  const plan = planSafetensors(tensors, metadata);
  await sink.write(plan.header);
  for (const [index, tensor] of plan.tensors.entries()) {
    const expected = tensor.end - tensor.begin;
    let written = 0;
    for await (const chunk of tensorBytes(tensor, index)) {
      if (!(chunk instanceof Uint8Array)) throw new OmniError('BAD_INPUT', `streamSafetensors: the producer of ${tensor.name} yielded a ${Object.prototype.toString.call(chunk)}, not bytes`);
      written += chunk.length;
      if (written > expected) break;
      await sink.write(chunk);
    }
    if (written !== expected) {
      throw new OmniError('BAD_INPUT', `streamSafetensors: ${tensor.name} is ${tensor.dtype} [${tensor.shape.join(', ')}] (${expected} bytes) but its producer yielded ${written > expected ? 'more' : written}`);
    }
  }
  return plan.header.length + plan.dataBytes;
}
