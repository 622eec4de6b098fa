import { describe, expect, it } from 'vitest';
import { Resampler, resample } from '../src/resample.js';

const code = (c: string) => expect.objectContaining({ code: c });

function tone(hz: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const x = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < x.length; i++) x[i] = amplitude * Math.sin((2 * Math.PI * hz * i) / rate);
  return x;
}

/** Level of `y` relative to a sine of `amplitude`, in dB, over the middle (edges hold the filter's start-up). */
function levelDb(y: Float32Array, amplitude: number, edge: number): number {
  let sum = 0;
  for (let i = edge; i < y.length - edge; i++) sum += y[i] * y[i];
  return 20 * Math.log10(Math.sqrt(sum / (y.length - 2 * edge)) / (amplitude / Math.SQRT2));
}

/** Seeded chunk lengths in [1, max]. */
function chunkLengths(total: number, max: number, seed: number): number[] {
  const lengths: number[] = [];
  let s = seed;
  for (let done = 0; done < total;) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const n = Math.min(total - done, 1 + (s % max));
    lengths.push(n);
    done += n;
  }
  return lengths;
}

function streamed(x: Float32Array, from: number, to: number, lengths: number[]): Float32Array {
  const r = new Resampler(from, to);
  const parts: Float32Array[] = [];
  let at = 0;
  for (const n of lengths) { parts.push(r.push(x.subarray(at, at + n))); at += n; }
  parts.push(r.flush());
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}

function firstMismatch(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

describe('resample (band-limited, to 16 kHz)', () => {
  it('suppresses a 9 kHz tone at 48 kHz (it would alias to 7 kHz) by more than 60 dB', () => {
    const db = levelDb(resample(tone(9000, 48000, 2), 48000), 0.5, 400);
    console.log(`9 kHz @ 48 kHz → 16 kHz: ${db.toFixed(1)} dB`);
    expect(db).toBeLessThan(-60);
  });

  it('passes a 1 kHz tone at 48 kHz with less than 0.1 dB change', () => {
    const db = levelDb(resample(tone(1000, 48000, 2), 48000), 0.5, 400);
    console.log(`1 kHz @ 48 kHz → 16 kHz: ${db.toFixed(5)} dB`);
    expect(Math.abs(db)).toBeLessThan(0.1);
  });

  it('does the same from 44.1 kHz (ratio 160/441) and 22.05 kHz', () => {
    for (const from of [44100, 22050]) {
      expect(levelDb(resample(tone(9000, from, 2), from), 0.5, 400)).toBeLessThan(-60);
      expect(Math.abs(levelDb(resample(tone(1000, from, 2), from), 0.5, 400))).toBeLessThan(0.1);
    }
  });

  it('keeps the passband flat to 6 kHz and the output frequency right', () => {
    const y = resample(tone(6000, 48000, 1), 48000);
    expect(Math.abs(levelDb(y, 0.5, 400))).toBeLessThan(0.01);
    // Correlation with the ideal 16 kHz-rate sine: phase and frequency preserved (zero delay).
    let dot = 0, norm = 0;
    for (let i = 400; i < y.length - 400; i++) {
      const ideal = 0.5 * Math.sin((2 * Math.PI * 6000 * i) / 16000);
      dot += y[i] * ideal; norm += ideal * ideal;
    }
    expect(dot / norm).toBeGreaterThan(0.999);
  });

  it('upsamples 8 kHz without imaging: a 3 kHz tone stays, nothing appears at 5 kHz', () => {
    const y = resample(tone(3000, 8000, 1), 8000);
    expect(y.length).toBe(16000);
    expect(Math.abs(levelDb(y, 0.5, 400))).toBeLessThan(0.1);
    let image = 0;
    for (let i = 400; i < y.length - 400; i++) image += y[i] * Math.sin((2 * Math.PI * 5000 * i) / 16000);
    expect(Math.abs(image / (y.length - 800))).toBeLessThan(1e-3);
  });

  it('gives ⌈n·to/from⌉ samples and keeps a constant signal constant', () => {
    const ones = new Float32Array(4801).fill(0.25);
    const y = resample(ones, 48000);
    expect(y.length).toBe(Math.ceil(4801 / 3));
    for (let i = 200; i < y.length - 200; i++) expect(Math.abs(y[i] - 0.25)).toBeLessThan(1e-6);
    expect(resample(new Float32Array(441), 44100).length).toBe(160);
    expect(resample(new Float32Array(0), 44100).length).toBe(0);
  });

  it('is the identity at equal rates', () => {
    const x = tone(440, 16000, 0.1);
    expect(firstMismatch(resample(x, 16000, 16000), x)).toBe(-1);
  });
});

describe('Resampler (streaming)', () => {
  for (const [from, to] of [[48000, 16000], [44100, 16000], [8000, 16000], [16000, 16000], [22050, 24000]] as const) {
    it(`${from} → ${to} Hz: any chunking gives the one-shot result bit for bit`, () => {
      const x = tone(700, from, 0.5);
      for (let i = 0; i < x.length; i++) x[i] += 0.1 * Math.sin(i * i * 1e-4);
      const whole = resample(x, from, to);
      for (const [max, seed] of [[1, 1], [7, 2], [480, 3], [5000, 4]] as const) {
        expect(firstMismatch(streamed(x, from, to, chunkLengths(x.length, max, seed)), whole)).toBe(-1);
      }
    });
  }

  it('emits output as input arrives (latency: the filter half-width) and restarts after reset', () => {
    const r = new Resampler(48000);
    // 10 ms in → all but the last ~1.6 ms out (the filter looks 77 input samples ahead).
    const first = r.push(new Float32Array(480)).length;
    expect(first).toBeGreaterThanOrEqual(130);
    expect(first).toBeLessThan(160);
    expect(first + r.push(new Float32Array(4800)).length).toBe(Math.floor((5280 - 77 - 1) / 3) + 1);
    r.flush();
    r.reset();
    const x = tone(1000, 48000, 0.05);
    const again = new Float32Array([...r.push(x), ...r.flush()]);
    expect(firstMismatch(again, resample(x, 48000))).toBe(-1);
  });

  it('refuses bad rates, unreducible ratios, non-float input, NaN and use after flush', () => {
    for (const rate of [0, 999, 400000, 44100.5, NaN]) expect(() => new Resampler(rate)).toThrow(code('BAD_INPUT'));
    expect(() => new Resampler(16000, 500)).toThrow(code('BAD_INPUT'));
    // 96001 Hz shares no factor with 16 kHz: 16000 phases × ~300 taps would exceed the table cap.
    expect(() => new Resampler(96001)).toThrow(code('BAD_INPUT'));
    const r = new Resampler(48000);
    expect(() => r.push([0, 1] as unknown as Float32Array)).toThrow(code('BAD_INPUT'));
    expect(() => r.push(new Float32Array([0, Infinity]))).toThrow(code('NUMERIC'));
    r.flush();
    expect(() => r.push(new Float32Array(4))).toThrow(code('BAD_INPUT'));
    expect(() => r.flush()).toThrow(code('BAD_INPUT'));
  });
});
