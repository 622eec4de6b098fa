import { OmniError } from '../errors.js';
import { f16ToF32, toF16Array } from '../quant.js';

/** The safetensors element types this runtime reads. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 };

/**
 * Element types the safetensors format defines that we do not read. Their
 * sizes are known, so a header using them still validates; only reading such
 * a tensor fails (an unused F64 buffer does not stop a checkpoint from loading).
 */
const UNREAD_DTYPE_BYTES: Record<string, number> = {
  F64: 8, I8: 1, I16: 2, U16: 2, U32: 4, U64: 8, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

export function isReadableDtype(dtype: string): dtype is SafetensorsDtype {
  return Object.hasOwn(DTYPE_BYTES, dtype);
}

/** Bytes per element of any dtype the format defines, or null for an unknown name. */
export function dtypeBytes(dtype: string): number | null {
  if (isReadableDtype(dtype)) return DTYPE_BYTES[dtype];
  return Object.hasOwn(UNREAD_DTYPE_BYTES, dtype) ? UNREAD_DTYPE_BYTES[dtype] : null;
}

let f16Table: Float32Array | null = null;

/** All 65536 half values, built once: a lookup beats bit-twiddling per element on big tensors. */
function halfTable(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16ToF32(h);
  }
  return f16Table;
}

/**
 * Raw little-endian bytes of a float tensor → f32. `bytes` must start at
 * offset 0 of its buffer (the sources return fresh buffers). Typed-array
 * views read host order; every platform that runs WebGPU or wasm is little-endian.
 */
export function decodeFloat(dtype: SafetensorsDtype, bytes: Uint8Array, tensorName: string): Float32Array {
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'F32':
      return new Float32Array(bytes.buffer, bytes.byteOffset, n);
    case 'F16': {
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      const table = halfTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of an f32: shift the bits into place.
      const src = new Uint16Array(bytes.buffer, bytes.byteOffset, n);
      const out = new Float32Array(n);
      const outBits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) outBits[i] = src[i] << 16;
      return out;
    }
    default:
      throw new OmniError('WRONG_DTYPE', `tensor ${tensorName} is ${dtype}, not a float type (F32/F16/BF16); read it with readInt32`);
  }
}

/** The float element types a writer can produce. */
export type FloatDtype = 'F32' | 'F16' | 'BF16';

/**
 * f32 values → fresh little-endian bytes of a float tensor (the inverse of
 * `decodeFloat`). F16 and BF16 round to nearest even, as torch's casts do.
 */
export function encodeFloat(dtype: FloatDtype, values: Float32Array): Uint8Array<ArrayBuffer> {
  switch (dtype) {
    case 'F32':
      return new Uint8Array(values.slice().buffer);
    case 'F16':
      return new Uint8Array(toF16Array(values).buffer as ArrayBuffer);
    case 'BF16': {
      const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
      const out = new Uint16Array(values.length);
      for (let i = 0; i < bits.length; i++) {
        const b = bits[i];
        // NaN keeps a set mantissa bit (rounding could carry it into an infinity).
        out[i] = (b & 0x7fffffff) > 0x7f800000 ? (b >>> 16) | 0x40 : (b + 0x7fff + ((b >>> 16) & 1)) >>> 16;
      }
      return new Uint8Array(out.buffer);
    }
    default:
      throw new OmniError('BAD_INPUT', `encodeFloat: ${JSON.stringify(dtype)} is not a float dtype (F32, F16, BF16)`);
  }
}

/** Raw bytes of an integer tensor → int32, refusing I64 values outside the int32 range. */
export function decodeInt32(dtype: SafetensorsDtype, bytes: Uint8Array, tensorName: string): Int32Array {
  const n = bytes.length / DTYPE_BYTES[dtype];
  switch (dtype) {
    case 'I32':
      return new Int32Array(bytes.buffer, bytes.byteOffset, n);
    case 'U8':
      return Int32Array.from(bytes);
    case 'I64': {
      // Read as (low, high) 32-bit words: a value fits int32 when high is the sign extension of low.
      const words = new Int32Array(bytes.buffer, bytes.byteOffset, n * 2);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const low = words[2 * i];
        const high = words[2 * i + 1];
        if (high !== low >> 31) {
          const value = (BigInt(high) << 32n) | BigInt(low >>> 0);
          throw new OmniError(
            'UNSUPPORTED_DTYPE',
            `I64 tensor ${tensorName} holds ${value} at element ${i}, outside the int32 range this runtime uses for integers`,
          );
        }
        out[i] = low;
      }
      return out;
    }
    default:
      throw new OmniError('WRONG_DTYPE', `tensor ${tensorName} is ${dtype}, not an integer type (I64/I32/U8); read it with readF32`);
  }
}
