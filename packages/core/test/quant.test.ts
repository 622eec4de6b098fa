import { describe, expect, it } from 'vitest';
import { dequantize, f16ToF32, f32ToF16, quantize } from '../src/quant.js';

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s * 1664525 + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

describe('quant', () => {
  it('f16 round trip is exact on halves and rounds to nearest', () => {
    for (const x of [0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8]) expect(f16ToF32(f32ToF16(x))).toBe(x);
    expect(f16ToF32(f32ToF16(1 + 2 ** -11))).toBe(1); // tie → even
    expect(f16ToF32(f32ToF16(1e6))).toBe(Infinity);
  });
  for (const format of ['q8', 'q4'] as const) {
    for (const scaleType of ['f32', 'f16'] as const) {
      it(`${format} with ${scaleType} scales stores each value's nearest level (ties up, as Math.round), within ±qmax`, () => {
        const rows = 4, cols = 70;
        const x = rand(rows * cols, 11);
        const qmax = format === 'q8' ? 127 : 7;
        // Row 1: exact ties (halves of the step). Row 2: max|x|/qmax is 1.4 f16 subnormal steps,
        // which an f16 scale rounds down to 1, so the largest values clamp to ±qmax.
        for (let c = 0; c < cols; c++) x[cols + c] = (Math.round(x[cols + c] * 14) / 2) * (format === 'q8' ? 127 / 7 : 1);
        const small = qmax * 1.4 * 2 ** -24;
        for (let c = 0; c < cols; c++) x[2 * cols + c] = c % 32 === 0 ? small : x[2 * cols + c] * small;
        const q = quantize(x, rows, cols, format, scaleType);
        const groups = q.paddedCols / 32;
        for (let r = 0; r < rows; r++) for (let c = 0; c < q.paddedCols; c++) {
          const gi = r * groups + Math.floor(c / 32);
          const scale = q.scales instanceof Uint16Array ? f16ToF32(q.scales[gi]) : Math.max(...Array.from({ length: Math.min(32, cols - Math.floor(c / 32) * 32) }, (_, k) => Math.abs(x[r * cols + Math.floor(c / 32) * 32 + k]))) / qmax;
          const value = c < cols ? x[r * cols + c] : 0;
          const expected = scale > 0 ? Math.max(-qmax, Math.min(qmax, Math.round(value * (1 / scale)))) + 0 : 0;
          const idx = r * q.paddedCols + c;
          const stored = format === 'q8' ? (q.data[idx] << 24) >> 24 : ((q.data[idx >> 1] >> ((idx & 1) * 4)) & 0xf) - 8;
          expect(stored, `row ${r} col ${c}`).toBe(expected);
        }
      });
    }
    it(`${format} dequantizes within half a step per group (odd cols)`, () => {
      const rows = 3, cols = 45;
      const x = rand(rows * cols, 7);
      const q = quantize(x, rows, cols, format);
      expect(q.paddedCols).toBe(64);
      const y = dequantize(q);
      const qmax = format === 'q8' ? 127 : 7;
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
        const g = Math.floor(c / 32);
        let amax = 0;
        for (let k = g * 32; k < Math.min(cols, g * 32 + 32); k++) amax = Math.max(amax, Math.abs(x[r * cols + k]));
        expect(Math.abs(y[r * cols + c] - x[r * cols + c])).toBeLessThanOrEqual(amax / qmax / 2 + 1e-7);
      }
    });
  }
});
