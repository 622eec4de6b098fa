import { OmniError } from '../errors.js';
import { openSafetensors, type OpenOptions, type SafetensorsInput } from './checkpoint.js';
import type { HostArray } from './tensorStore.js';

/**
 * Every array of a golden case file (F32/F16/BF16 → f32, I64/I32 → i32, U8 → u8),
 * in header order. I64 values outside int32 are refused with UNSUPPORTED_DTYPE.
 */
export async function readCase(input: SafetensorsInput, options: OpenOptions = {}): Promise<Map<string, HostArray>> {
  const store = await openSafetensors(input, options);
  try {
    const arrays = new Map<string, HostArray>();
    for (const name of store.names()) arrays.set(name, await store.readArray(name));
    return arrays;
  } finally {
    await store.close();
  }
}

/** The element type each host array is written as; integers widen to I64 to match the golden files. */
const WRITTEN_DTYPE = { f32: 'F32', i32: 'I64', u8: 'U8' } as const;
const WRITTEN_BYTES = { f32: 4, i32: 8, u8: 1 } as const;
const EXPECTED_DATA = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;

/**
 * Serializes arrays as one safetensors file, in the order given. The header
 * is padded with spaces to a multiple of 8 bytes so the data is aligned.
 */
export function writeSafetensors(
  entries: Iterable<[string, HostArray]> | ReadonlyMap<string, HostArray>,
  metadata: Record<string, string> = {},
): Uint8Array<ArrayBuffer> {
  if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries)) {
    throw new OmniError('BAD_INPUT', 'writeSafetensors takes a Map or a list of [name, { dtype, shape, data }] pairs');
  }
  const list = [...entries];
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, array] of list) {
    if (name === '__metadata__' || Object.hasOwn(header, name)) {
      throw new OmniError('BAD_INPUT', `writeSafetensors: tensor name ${JSON.stringify(name)} is reserved or used twice`);
    }
    const Expected = array && Object.hasOwn(EXPECTED_DATA, array.dtype) ? EXPECTED_DATA[array.dtype] : null;
    if (!Expected || !(array.data instanceof Expected)) {
      throw new OmniError('BAD_INPUT', `writeSafetensors: ${name} has dtype ${array?.dtype} and data ${array?.data?.constructor?.name}; expected f32/Float32Array, i32/Int32Array or u8/Uint8Array`);
    }
    if (!Array.isArray(array.shape)) throw new OmniError('BAD_INPUT', `writeSafetensors: ${name} has no shape list`);
    const count = array.shape.reduce((a, b) => a * b, 1);
    if (!array.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== array.data.length) {
      throw new OmniError('SHAPE_MISMATCH', `writeSafetensors: ${name} has shape [${array.shape.join(', ')}] but ${array.data.length} values`);
    }
    const length = count * WRITTEN_BYTES[array.dtype];
    header[name] = { dtype: WRITTEN_DTYPE[array.dtype], shape: array.shape, data_offsets: [offset, offset + length] };
    offset += length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + headerLength + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, headerLength, true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLength);
  let at = 8 + headerLength;
  for (const [, array] of list) {
    if (array.dtype === 'i32') {
      for (let i = 0; i < array.data.length; i++) view.setBigInt64(at + 8 * i, BigInt(array.data[i]), true);
    } else {
      out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), at);
    }
    at += array.data.length * WRITTEN_BYTES[array.dtype];
  }
  return out;
}
