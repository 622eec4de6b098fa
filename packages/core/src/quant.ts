import type { QuantizedMatrix } from './backend.js';
import { OmniError } from './errors.js';

/** Quantization group: 32 consecutive elements of a row share one scale. */
export const QUANT_GROUP = 32;

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** IEEE half bits → float (exact). */
export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/** float → IEEE half bits, round to nearest even (overflow → ±Inf). */
export function f32ToF16(x: number): number {
  f32Buf[0] = x;
  const b = u32Buf[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && (m & 1))) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (m & 1))) {
    m++;
    if (m === 0x400) { m = 0; e++; if (e >= 31) return sign | 0x7c00; }
  }
  return sign | (e << 10) | m;
}

/** bfloat16 bits → float (exact: bf16 is the top half of an f32). */
export function bf16ToF32(h: number): number {
  u32Buf[0] = h << 16;
  return f32Buf[0];
}

export function toF16Array(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]);
  return out;
}

export function paddedCols(cols: number): number {
  return Math.ceil(cols / QUANT_GROUP) * QUANT_GROUP;
}

/**
 * The level nearest v (ties up, as Math.round), within ±qmax, as an int32 (0 for NaN: its
 * group's scale is NaN, so every value of it dequantizes to NaN whatever its level).
 * Math.floor(v + 0.5) and an integer clamp: V8 compiles Math.round with a branch on the
 * fraction, which random weights mispredict half the time, and the f64 clamp with more
 * (3× slower on real-valued weights; one rounding of v + 0.5 can only differ for v within
 * 2^-53 of a tie).
 */
function level(v: number, qmax: number): number {
  const q = Math.floor(v + 0.5) | 0;
  return q > qmax ? qmax : q < -qmax ? -qmax : q;
}

/**
 * Symmetric per-group quantization of a [rows, cols] f32 matrix.
 * q8: scale = max|x| / 127, q = round(x / scale) in [-127, 127].
 * q4: scale = max|x| / 7,   q = round(x / scale) in [-7, 7], stored as q + 8 (a nibble).
 * Loading an official checkpoint runs every matrix through here, so the loops are written
 * for V8 (see `level`), and q4 bytes are written whole, two nibbles at once.
 */
export function quantize(
  data: Float32Array, rows: number, cols: number, format: 'q8' | 'q4',
  scaleType: 'f32' | 'f16' = 'f32',
): QuantizedMatrix {
  if (data.length !== rows * cols) {
    throw new OmniError('SHAPE_MISMATCH', `quantize: ${data.length} values for a [${rows}, ${cols}] matrix`);
  }
  const pc = paddedCols(cols);
  const groups = pc / QUANT_GROUP;
  const q8 = format === 'q8';
  const qmax = q8 ? 127 : 7;
  const bytes = new Uint8Array(q8 ? rows * pc : (rows * pc) / 2);
  const scalesF32 = new Float32Array(rows * groups);
  const scalesF16 = scaleType === 'f16' ? new Uint16Array(rows * groups) : null;
  // One group's values, zero past the last column (a partial last group).
  const group = new Float64Array(QUANT_GROUP);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < groups; g++) {
      const first = r * cols + g * QUANT_GROUP;
      const n = Math.min(QUANT_GROUP, cols - g * QUANT_GROUP);
      let amax = 0;
      for (let k = 0; k < n; k++) {
        const x = data[first + k];
        group[k] = x;
        amax = Math.max(amax, Math.abs(x));
      }
      for (let k = n; k < QUANT_GROUP; k++) group[k] = 0;
      let scale = amax / qmax;
      const at = r * groups + g;
      if (scalesF16) {
        // Quantize against the scale the kernel will actually see.
        scalesF16[at] = f32ToF16(scale);
        scale = f16ToF32(scalesF16[at]);
      }
      scalesF32[at] = scale;
      const inv = scale > 0 ? 1 / scale : 0;
      if (q8) {
        const out = r * pc + g * QUANT_GROUP;
        for (let k = 0; k < QUANT_GROUP; k++) bytes[out + k] = level(group[k] * inv, qmax) & 0xff;
      } else {
        const out = (r * pc + g * QUANT_GROUP) >> 1;
        for (let k = 0; k < QUANT_GROUP; k += 2) {
          bytes[out + (k >> 1)] = (level(group[k] * inv, qmax) + 8) | ((level(group[k + 1] * inv, qmax) + 8) << 4);
        }
      }
    }
  }
  return { format, rows, cols, paddedCols: pc, data: bytes, scales: scalesF16 ?? scalesF32 };
}

/** Whether f16 bits hold a finite value (an exponent field not all ones): the kernels read f16 weights and scales without an Inf/NaN case. */
export function isFiniteHalf(h: number): boolean {
  return (h & 0x7c00) !== 0x7c00;
}

/** Index of the first Inf or NaN among f16 bits, or −1. */
export function firstNonFiniteHalf(halves: Uint16Array): number {
  for (let i = 0; i < halves.length; i++) if (!isFiniteHalf(halves[i])) return i;
  return -1;
}

/**
 * Group scales as f16 bits where every one is a finite half exactly (a matrix quantized with
 * f16 scales and stored as f32, as `omniweb convert` writes them), else the f32 scales given.
 */
export function narrowScales(scales: Float32Array): Float32Array | Uint16Array {
  const halves = new Uint16Array(scales.length);
  for (let i = 0; i < scales.length; i++) {
    const h = f32ToF16(scales[i]);
    if (!isFiniteHalf(h) || f16ToF32(h) !== scales[i]) return scales;
    halves[i] = h;
  }
  return halves;
}

/** Inverse of `quantize` (the oracle for the fused-dequant kernels). */
export function dequantize(m: QuantizedMatrix): Float32Array {
  const out = new Float32Array(m.rows * m.cols);
  const groups = m.paddedCols / QUANT_GROUP;
  for (let r = 0; r < m.rows; r++) {
    for (let c = 0; c < m.cols; c++) {
      const gi = r * groups + Math.floor(c / QUANT_GROUP);
      const scale = m.scales instanceof Uint16Array ? f16ToF32(m.scales[gi]) : m.scales[gi];
      const idx = r * m.paddedCols + c;
      const q = m.format === 'q8'
        ? (m.data[idx] << 24) >> 24
        : ((m.data[idx >> 1] >> ((idx & 1) * 4)) & 0xf) - 8;
      out[r * m.cols + c] = q * scale;
    }
  }
  return out;
}
