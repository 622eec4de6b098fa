import { OmniError } from '../errors.js';
import type { ByteSource } from './byteSource.js';
import { dtypeBytes } from './dtypes.js';

/**
 * Largest JSON header accepted. A 7B shard's header is ~100 kB; the limit
 * stops a corrupt length field from making us allocate gigabytes.
 */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** Where one tensor lives. `dtype` may be one we do not read (see dtypes.ts); reading it then fails. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute byte range in the file. */
  readonly byteOffset: number;
  readonly byteLength: number;
  /** The file that holds it (its source name). */
  readonly file: string;
}

export interface SafetensorsHeader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The optional `__metadata__` string map. */
  readonly metadata: Readonly<Record<string, string>>;
}

function bad(file: string, what: string): OmniError {
  return new OmniError('BAD_HEADER', `${file}: ${what}; the file is not a valid safetensors file (re-download or re-export it)`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Element count of a shape, or null when it is not a safe integer. Zero
 * dimensions are skipped in the overflow check so that `[0, 2**40, 2**40]`
 * cannot pass as an empty tensor whose row length overflows.
 */
function elementCount(shape: readonly number[]): number | null {
  let nonZero = 1;
  for (const d of shape) {
    if (d === 0) continue;
    nonZero *= d;
    if (!Number.isSafeInteger(nonZero)) return null;
  }
  return shape.includes(0) ? 0 : nonZero;
}

/** Reads and validates the header of a safetensors file; reads no tensor data. */
export async function readHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const file = source.name;
  if (source.size < 8) {
    throw new OmniError('TRUNCATED', `${file} is ${source.size} bytes, shorter than the 8-byte safetensors length prefix`);
  }
  const prefix = new DataView((await source.read(0, 8)).buffer);
  const lengthHigh = prefix.getUint32(4, true);
  const headerLength = lengthHigh * 2 ** 32 + prefix.getUint32(0, true);
  if (headerLength > MAX_HEADER_BYTES) {
    throw bad(file, `header length ${headerLength} bytes is over the ${MAX_HEADER_BYTES}-byte limit`);
  }
  if (8 + headerLength > source.size) {
    throw new OmniError('TRUNCATED', `${file}: header announces ${headerLength} bytes but the file is only ${source.size} bytes`);
  }
  const headerBytes = await source.read(8, headerLength);
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    throw bad(file, `header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) throw bad(file, 'header is not a JSON object');

  const dataStart = 8 + headerLength;
  const dataLength = source.size - dataStart;
  let metadata: Record<string, string> = {};
  const entries: { info: TensorInfo; begin: number; end: number }[] = [];
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') {
      if (!isRecord(entry) || !Object.values(entry).every((v) => typeof v === 'string')) {
        throw bad(file, '__metadata__ is not a map of strings');
      }
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isRecord(entry)) throw bad(file, `entry for tensor ${name} is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (typeof dtype !== 'string') throw bad(file, `tensor ${name} has no string "dtype"`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(file, `tensor ${name} has "shape" ${JSON.stringify(shape)}, not a list of non-negative integers`);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(file, `tensor ${name} has "data_offsets" ${JSON.stringify(offsets)}, not two non-negative integers`);
    }
    const itemBytes = dtypeBytes(dtype);
    if (itemBytes === null) {
      throw new OmniError('UNSUPPORTED_DTYPE', `${file}: tensor ${name} has unknown dtype ${JSON.stringify(dtype)}; this runtime reads F32, F16, BF16, I64, I32 and U8`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end) {
      throw new OmniError('BAD_OFFSETS', `${file}: tensor ${name} has data_offsets [${begin}, ${end}], which end before they begin`);
    }
    const count = elementCount(shape);
    if (count === null || count * itemBytes !== end - begin) {
      throw new OmniError(
        'SHAPE_MISMATCH',
        `${file}: tensor ${name} is ${dtype} [${shape.join(', ')}] (${count === null ? 'too many' : count * itemBytes} bytes) but its data_offsets span ${end - begin} bytes`,
      );
    }
    entries.push({
      info: { name, dtype, shape: shape as number[], byteOffset: dataStart + begin, byteLength: end - begin, file },
      begin,
      end,
    });
  }

  // Ranges must not overlap; empty tensors occupy no bytes and cannot collide.
  const sorted = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  let contiguous = sorted.length === 0 || sorted[0].begin === 0;
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.begin < prev.end) {
      throw new OmniError(
        'BAD_OFFSETS',
        `${file}: tensors ${prev.info.name} [${prev.begin}, ${prev.end}) and ${cur.info.name} [${cur.begin}, ${cur.end}) overlap`,
      );
    }
    if (cur.begin !== prev.end) contiguous = false;
  }
  const packedEnd = sorted.length > 0 ? sorted[sorted.length - 1].end : 0;
  // Even an empty tensor must point inside the data section (a read of 0 bytes there must work).
  const farthest = entries.reduce<(typeof entries)[number] | null>((far, e) => (far === null || e.end > far.end ? e : far), null);
  if (farthest && farthest.end > dataLength) {
    // A packed layout (no gaps, empty tensors within it) that runs past the end means bytes are missing, not that the header lies.
    if (contiguous && farthest.end === packedEnd) {
      throw new OmniError(
        'TRUNCATED',
        `${file} is ${source.size} bytes but its header describes ${dataStart + packedEnd}; the file is truncated (re-download it)`,
      );
    }
    throw new OmniError(
      'BAD_OFFSETS',
      `${file}: tensor ${farthest.info.name} ends at data byte ${farthest.end}, past the ${dataLength}-byte data section`,
    );
  }
  return { tensors: new Map(entries.map((e) => [e.info.name, e.info])), metadata };
}
