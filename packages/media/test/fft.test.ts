import { describe, expect, it } from 'vitest';
import { isOmniError, relativeError } from '@omniweb/core';
import { ComplexFft, RealFft } from '../src/fft.js';

/** Seeded uniform values in [−1, 1). */
function noise(n: number, seed: number): Float64Array {
  const out = new Float64Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** The DFT by its definition, O(n²). */
function naiveDft(re: Float64Array, im: Float64Array): [Float64Array, Float64Array] {
  const n = re.length;
  const outRe = new Float64Array(n), outIm = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    for (let t = 0; t < n; t++) {
      const a = (-2 * Math.PI * ((k * t) % n)) / n;
      outRe[k] += re[t] * Math.cos(a) - im[t] * Math.sin(a);
      outIm[k] += re[t] * Math.sin(a) + im[t] * Math.cos(a);
    }
  }
  return [outRe, outIm];
}

describe('ComplexFft', () => {
  // 200 = 4·2·5·5 (the n_fft 400 half-size), 64 = 4³, 96 = 4²·2·3, 49 = 7², 13 prime, 1 trivial.
  for (const n of [200, 64, 96, 49, 13, 1]) {
    it(`matches the DFT definition for n = ${n}`, () => {
      const re = noise(n, n), im = noise(n, n + 1);
      const [refRe, refIm] = naiveDft(re, im);
      const outRe = new Float64Array(n), outIm = new Float64Array(n);
      new ComplexFft(n).transform(re, im, outRe, outIm);
      expect(relativeError(outRe, refRe) + relativeError(outIm, refIm)).toBeLessThan(1e-12);
    });
  }

  it('refuses sizes it cannot plan', () => {
    for (const n of [0, -4, 2.5, 2 ** 21]) expect(() => new ComplexFft(n)).toThrow(expect.objectContaining({ code: 'BAD_INPUT' }));
  });
});

describe('RealFft', () => {
  for (const n of [400, 512, 30, 2]) {
    it(`gives bins 0…n/2 of the DFT of a real signal, n = ${n}`, () => {
      const x = noise(n, 7 * n);
      const [refRe, refIm] = naiveDft(x, new Float64Array(n));
      const fft = new RealFft(n);
      const re = new Float64Array(fft.bins), im = new Float64Array(fft.bins);
      fft.forward(x, re, im);
      expect(fft.bins).toBe(n / 2 + 1);
      expect(relativeError(re, refRe.subarray(0, n / 2 + 1)) + relativeError(im, refIm.subarray(0, n / 2 + 1))).toBeLessThan(1e-12);
    });
  }

  it('reuses its buffers: a second transform of other data is as exact', () => {
    const fft = new RealFft(400);
    const re = new Float64Array(201), im = new Float64Array(201);
    fft.forward(noise(400, 1), re, im);
    const x = noise(400, 2);
    fft.forward(x, re, im);
    const [refRe, refIm] = naiveDft(x, new Float64Array(400));
    expect(relativeError(re, refRe.subarray(0, 201)) + relativeError(im, refIm.subarray(0, 201))).toBeLessThan(1e-12);
  });

  it('refuses odd sizes', () => {
    let caught: unknown;
    try { new RealFft(401); } catch (e) { caught = e; }
    expect(isOmniError(caught, 'BAD_INPUT')).toBe(true);
  });
});
