/**
 * Discrete Fourier transforms for the Whisper STFT (fact sheet §3.1). This is
 * signal processing on the host, not a model op: n_fft is 400 = 2⁴·5², so a
 * mixed-radix FFT is needed (a power-of-two FFT would change the bins).
 *
 * Plans are built once per size (digit-reversal permutation and per-stage
 * twiddles); transforms allocate nothing. Arithmetic is float64.
 */
import { OmniError } from '@omniweb/core';

/** Largest size accepted: far above any n_fft, small enough that a plan stays a few MB. */
const MAX_FFT_SIZE = 1 << 20;

interface Stage {
  radix: number;
  /** Length of the sub-transforms this stage combines. */
  span: number;
  /** W_{span·radix}^{j·q} for j < span, 1 ≤ q < radix: [re, im] pairs at ((j·(radix−1) + q−1)·2). */
  twiddles: Float64Array;
}

/** Radices in stage order: fours first (fewest passes), then a two, then odd factors. */
function factorize(n: number): number[] {
  const radices: number[] = [];
  let rest = n;
  while (rest % 4 === 0) { radices.push(4); rest /= 4; }
  if (rest % 2 === 0) { radices.push(2); rest /= 2; }
  for (let p = 3; rest > 1; p += 2) {
    while (rest % p === 0) { radices.push(p); rest /= p; }
    if (p * p > rest && rest > 1) { radices.push(rest); break; }
  }
  return radices;
}

/** In-place-after-permutation decimation-in-time complex FFT of a fixed size. */
export class ComplexFft {
  readonly size: number;
  private readonly order: Int32Array;
  private readonly stages: Stage[];
  /** cos/sin of 2π·m/p for the generic odd-radix butterfly, per radix. */
  private readonly roots = new Map<number, Float64Array>();
  private readonly scratch: Float64Array;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 1 || size > MAX_FFT_SIZE) {
      throw new OmniError('BAD_INPUT', `FFT size must be an integer in [1, ${MAX_FFT_SIZE}], got ${size}`);
    }
    this.size = size;
    const radices = factorize(size);
    // Input index i lands where the last stage's sub-transform (i mod r_last) keeps it:
    // pos(i) = (i mod r_k)·(n / r_k) + pos_{k−1}(⌊i / r_k⌋), unrolled over the stages.
    this.order = new Int32Array(size);
    for (let i = 0; i < size; i++) {
      let rest = i, pos = 0, block = size;
      for (let s = radices.length - 1; s >= 0; s--) {
        block /= radices[s];
        pos += (rest % radices[s]) * block;
        rest = Math.floor(rest / radices[s]);
      }
      this.order[i] = pos;
    }
    this.stages = [];
    let span = 1;
    let maxRadix = 1;
    for (const radix of radices) {
      const full = span * radix;
      const twiddles = new Float64Array(span * (radix - 1) * 2);
      for (let j = 0; j < span; j++) {
        for (let q = 1; q < radix; q++) {
          const angle = (-2 * Math.PI * j * q) / full;
          const at = (j * (radix - 1) + q - 1) * 2;
          twiddles[at] = Math.cos(angle);
          twiddles[at + 1] = Math.sin(angle);
        }
      }
      this.stages.push({ radix, span, twiddles });
      if (radix !== 2 && radix !== 4 && !this.roots.has(radix)) {
        const roots = new Float64Array(radix * 2);
        for (let m = 0; m < radix; m++) {
          roots[2 * m] = Math.cos((-2 * Math.PI * m) / radix);
          roots[2 * m + 1] = Math.sin((-2 * Math.PI * m) / radix);
        }
        this.roots.set(radix, roots);
      }
      maxRadix = Math.max(maxRadix, radix);
      span = full;
    }
    this.scratch = new Float64Array(maxRadix * 4);
  }

  /** out = DFT(in): X[k] = Σ x[n]·e^(−2πikn/N). Inputs are left unchanged; outputs must not alias them. */
  transform(inRe: Float64Array, inIm: Float64Array, outRe: Float64Array, outIm: Float64Array): void {
    const n = this.size;
    for (let i = 0; i < n; i++) {
      const to = this.order[i];
      outRe[to] = inRe[i];
      outIm[to] = inIm[i];
    }
    for (const stage of this.stages) {
      if (stage.radix === 4) this.radix4(stage, outRe, outIm);
      else if (stage.radix === 2) this.radix2(stage, outRe, outIm);
      else this.radixOdd(stage, outRe, outIm);
    }
  }

  private radix2({ span, twiddles }: Stage, re: Float64Array, im: Float64Array): void {
    for (let g = 0; g < this.size; g += 2 * span) {
      for (let j = 0; j < span; j++) {
        const a = g + j, b = a + span;
        const wr = twiddles[2 * j], wi = twiddles[2 * j + 1];
        const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
        re[b] = re[a] - tr; im[b] = im[a] - ti;
        re[a] += tr; im[a] += ti;
      }
    }
  }

  private radix4({ span, twiddles }: Stage, re: Float64Array, im: Float64Array): void {
    for (let g = 0; g < this.size; g += 4 * span) {
      for (let j = 0; j < span; j++) {
        const i0 = g + j, i1 = i0 + span, i2 = i1 + span, i3 = i2 + span;
        const w = j * 6;
        const r1 = re[i1] * twiddles[w] - im[i1] * twiddles[w + 1], m1 = re[i1] * twiddles[w + 1] + im[i1] * twiddles[w];
        const r2 = re[i2] * twiddles[w + 2] - im[i2] * twiddles[w + 3], m2 = re[i2] * twiddles[w + 3] + im[i2] * twiddles[w + 2];
        const r3 = re[i3] * twiddles[w + 4] - im[i3] * twiddles[w + 5], m3 = re[i3] * twiddles[w + 5] + im[i3] * twiddles[w + 4];
        const sr02 = re[i0] + r2, si02 = im[i0] + m2, dr02 = re[i0] - r2, di02 = im[i0] - m2;
        const sr13 = r1 + r3, si13 = m1 + m3, dr13 = r1 - r3, di13 = m1 - m3;
        re[i0] = sr02 + sr13; im[i0] = si02 + si13;
        re[i2] = sr02 - sr13; im[i2] = si02 - si13;
        // W₄ = −i: outputs 1 and 3 take ∓i·(t1 − t3).
        re[i1] = dr02 + di13; im[i1] = di02 - dr13;
        re[i3] = dr02 - di13; im[i3] = di02 + dr13;
      }
    }
  }

  private radixOdd({ radix, span, twiddles }: Stage, re: Float64Array, im: Float64Array): void {
    const roots = this.roots.get(radix)!;
    const t = this.scratch;
    for (let g = 0; g < this.size; g += radix * span) {
      for (let j = 0; j < span; j++) {
        const base = g + j;
        t[0] = re[base]; t[1] = im[base];
        for (let q = 1; q < radix; q++) {
          const at = base + q * span, w = (j * (radix - 1) + q - 1) * 2;
          t[2 * q] = re[at] * twiddles[w] - im[at] * twiddles[w + 1];
          t[2 * q + 1] = re[at] * twiddles[w + 1] + im[at] * twiddles[w];
        }
        for (let r = 0; r < radix; r++) {
          let sr = 0, si = 0;
          for (let q = 0, m = 0; q < radix; q++, m = (m + r) % radix) {
            sr += t[2 * q] * roots[2 * m] - t[2 * q + 1] * roots[2 * m + 1];
            si += t[2 * q] * roots[2 * m + 1] + t[2 * q + 1] * roots[2 * m];
          }
          t[2 * radix + 2 * r] = sr; t[2 * radix + 2 * r + 1] = si;
        }
        for (let r = 0; r < radix; r++) {
          re[base + r * span] = t[2 * radix + 2 * r];
          im[base + r * span] = t[2 * radix + 2 * r + 1];
        }
      }
    }
  }
}

/**
 * DFT of a real signal of even length n, bins 0…n/2, through one complex FFT
 * of n/2 points on z[m] = x[2m] + i·x[2m+1] (half the work of a complex FFT).
 */
export class RealFft {
  readonly size: number;
  /** n/2 + 1: the one-sided bins. */
  readonly bins: number;
  private readonly half: ComplexFft;
  private readonly zRe: Float64Array;
  private readonly zIm: Float64Array;
  private readonly spectrumRe: Float64Array;
  private readonly spectrumIm: Float64Array;
  /** e^(−2πik/n) for k = 0…n/2. */
  private readonly wRe: Float64Array;
  private readonly wIm: Float64Array;

  constructor(size: number) {
    if (!Number.isSafeInteger(size) || size < 2 || size % 2 !== 0) {
      throw new OmniError('BAD_INPUT', `real FFT size must be an even integer ≥ 2, got ${size}`);
    }
    this.size = size;
    const m = size / 2;
    this.bins = m + 1;
    this.half = new ComplexFft(m);
    this.zRe = new Float64Array(m);
    this.zIm = new Float64Array(m);
    this.spectrumRe = new Float64Array(m);
    this.spectrumIm = new Float64Array(m);
    this.wRe = new Float64Array(m + 1);
    this.wIm = new Float64Array(m + 1);
    for (let k = 0; k <= m; k++) {
      this.wRe[k] = Math.cos((-2 * Math.PI * k) / size);
      this.wIm[k] = Math.sin((-2 * Math.PI * k) / size);
    }
  }

  /** outRe/outIm (length ≥ bins) = X[0…n/2] of the real input (length n). */
  forward(input: Float64Array, outRe: Float64Array, outIm: Float64Array): void {
    const m = this.size / 2;
    for (let i = 0; i < m; i++) {
      this.zRe[i] = input[2 * i];
      this.zIm[i] = input[2 * i + 1];
    }
    this.half.transform(this.zRe, this.zIm, this.spectrumRe, this.spectrumIm);
    const zr = this.spectrumRe, zi = this.spectrumIm;
    // With Z = FFT(z): even part E = (Z[k] + conj Z[m−k]) / 2, odd part O = (Z[k] − conj Z[m−k]) / 2i,
    // and X[k] = E + e^(−2πik/n)·O.
    for (let k = 0; k <= m; k++) {
      const a = k % m, b = (m - k) % m;
      const er = 0.5 * (zr[a] + zr[b]), ei = 0.5 * (zi[a] - zi[b]);
      const or = 0.5 * (zi[a] + zi[b]), oi = -0.5 * (zr[a] - zr[b]);
      outRe[k] = er + this.wRe[k] * or - this.wIm[k] * oi;
      outIm[k] = ei + this.wRe[k] * oi + this.wIm[k] * or;
    }
  }
}
