import { OmniError } from './errors.js';

/**
 * ‖got − want‖₂ / ‖want‖₂, summed in f64 so that long f32 outputs compare without rounding
 * the measure itself: the golden files' measure, and a way to compare two backends' outputs.
 * Infinity (NaN when `got` is zero too) when `want` is all zeros. SHAPE_MISMATCH when the
 * lengths differ, since a prefix match would hide a wrong shape.
 */
export function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) throw new OmniError('SHAPE_MISMATCH', `relativeError: ${got.length} values against ${want.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}
