import { OmniError } from '../errors.js';
import { openSafetensors, type OpenOptions, type SafetensorsInput } from './checkpoint.js';
import { planSafetensors } from './safetensorsWriter.js';
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
const EXPECTED_DATA = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;

/**
 * Serializes arrays as one safetensors file, in the order given (the layout
 * of `planSafetensors`: header padded to a multiple of 8 bytes, data aligned).
 */
export function writeSafetensors(
  entries: Iterable<[string, HostArray]> | ReadonlyMap<string, HostArray>,
  metadata: Record<string, string> = {},
): Uint8Array<ArrayBuffer> {
  if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries)) {
    throw new OmniError('BAD_INPUT', 'writeSafetensors takes a Map or a list of [name, { dtype, shape, data }] pairs');
  }
  const list = [...entries];
  for (const [name, array] of list) {
    const Expected = array && Object.hasOwn(EXPECTED_DATA, array.dtype) ? EXPECTED_DATA[array.dtype] : null;
    if (!Expected || !(array.data instanceof Expected)) {
      throw new OmniError('BAD_INPUT', `writeSafetensors: ${name} has dtype ${array?.dtype} and data ${array?.data?.constructor?.name}; expected f32/Float32Array, i32/Int32Array or u8/Uint8Array`);
    }
    if (!Array.isArray(array.shape)) throw new OmniError('BAD_INPUT', `writeSafetensors: ${name} has no shape list`);
    const count = array.shape.reduce((a, b) => a * b, 1);
    if (!array.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== array.data.length) {
      throw new OmniError('SHAPE_MISMATCH', `writeSafetensors: ${name} has shape [${array.shape.join(', ')}] but ${array.data.length} values`);
    }
  }
  const plan = planSafetensors(list.map(([name, array]) => ({ name, dtype: WRITTEN_DTYPE[array.dtype], shape: array.shape })), metadata);
  const out = new Uint8Array(plan.header.length + plan.dataBytes);
  const view = new DataView(out.buffer);
  out.set(plan.header);
  for (const [i, [, array]] of list.entries()) {
    const at = plan.header.length + plan.tensors[i].begin;
    if (array.dtype === 'i32') {
      for (let j = 0; j < array.data.length; j++) view.setBigInt64(at + 8 * j, BigInt(array.data[j]), true);
    } else {
      out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), at);
    }
  }
  return out;
}
