/**
 * erf and erfc in double precision, for the GELU oracle. Math has no erf, and the
 * usual 1.5e-7 polynomial approximations are as coarse as the f32 kernels they would
 * be checking, so both functions here are evaluated to ~1e-14 relative.
 */

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);
/** Below this, the series converges fast; above it, the continued fraction does. */
const SERIES_LIMIT = 2.5;

/**
 * erf(x) = 2/√π · e^{-x²} · Σ_n 2ⁿ x^{2n+1} / (1·3·5·…·(2n+1)): every term is
 * positive, so nothing cancels (the plain Taylor series loses digits near 2.5).
 */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x * x) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return TWO_OVER_SQRT_PI * Math.exp(-x * x) * sum;
}

/**
 * erfc(x) for x ≥ SERIES_LIMIT by the continued fraction
 * erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …))))),
 * evaluated from the tail; it keeps relative accuracy where erfc is tiny.
 */
function erfcContinuedFraction(x: number): number {
  let tail = x;
  for (let n = 120; n >= 1; n--) tail = x + n / 2 / tail;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / tail;
}

export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  const value = a < SERIES_LIMIT ? erfSeries(a) : 1 - erfcContinuedFraction(a);
  return x < 0 ? -value : value;
}

export function erfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x < 0) return 1 + erf(-x);
  return x < SERIES_LIMIT ? 1 - erfSeries(x) : erfcContinuedFraction(x);
}
