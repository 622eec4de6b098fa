import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseOmniConfigText, relativeError } from '@omniweb/core';
import { MelStream, logMel, reclampMel, type MelBlock } from '../src/mel.js';
import { goldenArray, maxAbsDiff } from './golden.js';

const code = (c: string) => expect.objectContaining({ code: c });

/** [frames, bins] time-major → [bins, frames], the reference's input_features[0] layout. */
function toBinMajor(features: Float32Array, frames: number, bins: number): Float32Array {
  const out = new Float32Array(frames * bins);
  for (let f = 0; f < frames; f++) for (let m = 0; m < bins; m++) out[m * frames + f] = features[f * bins + m];
  return out;
}

function concatBlocks(blocks: MelBlock[]): Float32Array {
  const out = new Float32Array(blocks.reduce((a, b) => a + b.features.length, 0));
  let at = 0;
  for (const b of blocks) { out.set(b.features, at); at += b.features.length; }
  return out;
}

function runStream(x: Float32Array, lengths: number[], stream = new MelStream()): MelBlock[] {
  const blocks: MelBlock[] = [];
  let at = 0;
  for (const n of lengths) { blocks.push(...stream.push(x.subarray(at, at + n))); at += n; }
  if (at !== x.length) throw new Error('chunk lengths do not cover the signal');
  blocks.push(...stream.finish());
  return blocks;
}

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

function seededNoise(n: number, amplitude: number, seed: number): Float32Array {
  const x = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    x[i] = amplitude * (s / 2 ** 31 - 1);
  }
  return x;
}

function firstMismatch(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/**
 * The §3.1 recipe written out plainly in float64, as an independent check for settings the golden
 * file does not cover: zero-pad to nSamples, reflect-pad nFft/2 on both sides, DFT by definition,
 * drop the last frame, Slaney filters from the slope formula, log10, clamp, normalise.
 */
function plainLogMel(x: Float32Array, sampleRate: number, nFft: number, hop: number, bins: number, nSamples: number): Float64Array {
  const half = nFft / 2;
  const clip = new Float64Array(nSamples);
  clip.set(x.subarray(0, nSamples));
  const padded = new Float64Array(nSamples + nFft);
  for (let i = 0; i < padded.length; i++) {
    const j = i - half;
    padded[i] = j < 0 ? clip[-j] : j >= nSamples ? clip[2 * (nSamples - 1) - j] : clip[j];
  }
  const frames = nSamples / hop;
  const fftBins = half + 1;
  const mel = (hz: number) => (hz < 1000 ? hz / (200 / 3) : 15 + Math.log(hz / 1000) / (Math.log(6.4) / 27));
  const hz = (m: number) => (m < 15 ? (200 / 3) * m : 1000 * Math.exp((Math.log(6.4) / 27) * (m - 15)));
  const points = Array.from({ length: bins + 2 }, (_, i) => hz((mel(sampleRate / 2) * i) / (bins + 1)));
  const filters = Array.from({ length: bins }, (_, m) => Array.from({ length: fftBins }, (_, k) => {
    const f = (k * sampleRate) / nFft;
    const down = (f - points[m]) / (points[m + 1] - points[m]);
    const up = (points[m + 2] - f) / (points[m + 2] - points[m + 1]);
    return Math.max(0, Math.min(down, up)) * (2 / (points[m + 2] - points[m]));
  }));
  const logs = new Float64Array(frames * bins);
  for (let t = 0; t < frames; t++) {
    const power = new Float64Array(fftBins);
    for (let k = 0; k < fftBins; k++) {
      let re = 0, im = 0;
      for (let n = 0; n < nFft; n++) {
        const v = padded[t * hop + n] * (0.5 - 0.5 * Math.cos((2 * Math.PI * n) / nFft));
        re += v * Math.cos((2 * Math.PI * k * n) / nFft);
        im -= v * Math.sin((2 * Math.PI * k * n) / nFft);
      }
      power[k] = re * re + im * im;
    }
    for (let m = 0; m < bins; m++) {
      let s = 0;
      for (let k = 0; k < fftBins; k++) s += filters[m][k] * power[k];
      logs[t * bins + m] = Math.log10(Math.max(s, 1e-10));
    }
  }
  const max = logs.reduce((a, b) => Math.max(a, b), -Infinity);
  return logs.map((v) => (Math.max(v, max - 8) + 4) / 4);
}

describe('logMel against the golden WhisperFeatureExtractor output', () => {
  it('equals input_features over all 3000 padded frames (valid and padding) and the mask', async () => {
    const waveform = (await goldenArray('audio', 'waveform')).data as Float32Array;
    const reference = await goldenArray('audio', 'input_features');
    const mask = (await goldenArray('audio', 'feature_attention_mask')).data as Int32Array;
    expect(reference.shape).toEqual([1, 128, 3000]);
    // The golden file pads to 3000 frames (480000 samples); the Omni processor pads to 30000 (README).
    const mel = logMel(waveform, { pad: true, config: { nSamples: 480000 } });
    expect(mel.frames).toBe(3000);
    const ours = toBinMajor(mel.features, mel.frames, mel.melBins);
    const err = relativeError(ours, reference.data as Float32Array);
    console.log(`input_features: relative error ${err.toExponential(2)}, max |Δ| ${maxAbsDiff(ours, reference.data as Float32Array).toExponential(2)}`);
    expect(err).toBeLessThan(1e-5);
    expect(mel.validFrames).toBe(mask.reduce((a, b) => a + b, 0));
    expect(Array.from(mask)).toEqual(Array.from({ length: 3000 }, (_, i) => (i < mel.validFrames ? 1 : 0)));
  });

  it('gives the same valid frames without padding, at the Omni length (300 s) or the golden one', async () => {
    const waveform = (await goldenArray('audio', 'waveform')).data as Float32Array;
    const reference = (await goldenArray('audio', 'input_features')).data as Float32Array;
    const valid = logMel(waveform);
    expect(valid.frames).toBe(250);
    expect(valid.features.length).toBe(250 * 128);
    const golden250 = new Float32Array(250 * 128);
    for (let m = 0; m < 128; m++) golden250.set(reference.subarray(m * 3000, m * 3000 + 250), m * 250);
    expect(relativeError(toBinMajor(valid.features, 250, 128), golden250)).toBeLessThan(1e-5);
    expect(firstMismatch(valid.features, logMel(waveform, { config: { nSamples: 480000 } }).features)).toBe(-1);
  });
});

describe('logMel against the plain recipe (settings the golden file does not cover)', () => {
  it('a clip filling the padded length exactly: reflection at the right end, last frame dropped', () => {
    const x = seededNoise(3200, 0.3, 5);
    for (let i = 0; i < x.length; i++) x[i] += 0.5 * Math.sin(i * 0.2);
    const mel = logMel(x, { pad: true, config: { nSamples: 3200 } });
    expect(mel.frames).toBe(20);
    expect(relativeError(mel.features, plainLogMel(x, 16000, 400, 160, 128, 3200))).toBeLessThan(1e-6);
  });

  it('other settings: 8 kHz, n_fft 256, hop 100, 40 bins, with padding frames', () => {
    const x = seededNoise(1234, 0.5, 9);
    const mel = logMel(x, { pad: true, config: { sampleRate: 8000, nFft: 256, hopLength: 100, melBins: 40, nSamples: 3000 } });
    expect([mel.frames, mel.validFrames]).toEqual([30, 13]);
    expect(relativeError(mel.features, plainLogMel(x, 8000, 256, 100, 40, 3000))).toBeLessThan(1e-6);
  });

  it('a clip shorter than half a window (reflection reads the zero padding)', () => {
    const x = seededNoise(50, 0.5, 3);
    const mel = logMel(x, { pad: true, config: { nSamples: 1600 } });
    expect(mel.validFrames).toBe(1);
    expect(relativeError(mel.features, plainLogMel(x, 16000, 400, 160, 128, 1600))).toBeLessThan(1e-6);
  });
});

describe('logMel input checks and length bounds', () => {
  it('refuses empty audio, non-float arrays, NaN and bad settings', () => {
    expect(() => logMel(new Float32Array(0))).toThrow(code('BAD_INPUT'));
    expect(() => logMel([0.1, 0.2] as unknown as Float32Array)).toThrow(code('BAD_INPUT'));
    expect(() => logMel(new Float32Array([0, NaN]))).toThrow(code('NUMERIC'));
    expect(() => logMel(new Float32Array(400), { config: { nFft: 401 } })).toThrow(code('BAD_INPUT'));
    expect(() => logMel(new Float32Array(400), { config: { nSamples: 1000 } })).toThrow(code('BAD_INPUT'));
  });

  it('refuses audio longer than the 300 s clip unless asked to truncate like the reference', () => {
    const tooLong = new Float32Array(4_800_001);
    expect(() => logMel(tooLong)).toThrow(code('BAD_INPUT'));
    const x = seededNoise(4000, 0.5, 1);
    const cut = logMel(x, { truncate: true, config: { nSamples: 3200 } });
    expect(cut.frames).toBe(20);
    expect(firstMismatch(cut.features, logMel(x.slice(0, 3200), { config: { nSamples: 3200 } }).features)).toBe(-1);
  });
});

describe('MelStream', () => {
  it('takes its block size from the audio encoder config: 2·n_window = 200 frames', () => {
    const config = parseOmniConfigText(readFileSync(new URL('../../../fixtures/golden/tiny-omni/config.json', import.meta.url), 'utf8'));
    expect(new MelStream({ blockFrames: 2 * config.thinker.audio.nWindow }).blockFrames).toBe(200);
  });

  it('golden waveform: blocks of 200 frames, any chunking, equal to the reference once the clip max is known', async () => {
    const waveform = (await goldenArray('audio', 'waveform')).data as Float32Array;
    const reference = (await goldenArray('audio', 'input_features')).data as Float32Array;
    const whole = logMel(waveform);
    for (const [max, seed] of [[1, 1], [160, 2], [1000, 3], [40000, 4]] as const) {
      const blocks = runStream(waveform, chunkLengths(waveform.length, max, seed), new MelStream({ initialMax: whole.clampMax }));
      expect(blocks.map((b) => [b.firstFrame, b.frames])).toEqual([[0, 200], [200, 50]]);
      expect(firstMismatch(concatBlocks(blocks), whole.features)).toBe(-1);
    }
    const streamed = concatBlocks(runStream(waveform, [waveform.length], new MelStream({ initialMax: whole.clampMax })));
    const golden250 = new Float32Array(250 * 128);
    for (let m = 0; m < 128; m++) golden250.set(reference.subarray(m * 3000, m * 3000 + 250), m * 250);
    expect(relativeError(toBinMajor(streamed, 250, 128), golden250)).toBeLessThan(1e-5);
  });

  it('running clamp: a block seen before the loudest frame differs only below max − 8, and reclampMel repairs it exactly', () => {
    // 2.5 s of faint noise (≈ −80 dBFS), then 2 s of a loud tone: the first block is emitted before the tone.
    const x = seededNoise(72000, 1e-4, 11);
    for (let i = 40000; i < x.length; i++) x[i] += 0.8 * Math.sin(i * 0.3);
    const whole = logMel(x);
    const blocks = runStream(x, chunkLengths(x.length, 3000, 7));
    const stream = concatBlocks(blocks);
    expect(blocks[0].clampMax).toBeLessThan(whole.clampMax);
    const floor = Math.fround(Math.fround(whole.clampMax - 8) + 4) / 4;
    let differing = 0, outsideRule = 0;
    for (let i = 0; i < stream.length; i++) {
      if (Object.is(stream[i], whole.features[i])) continue;
      differing++;
      if (!(whole.features[i] === floor && stream[i] < floor)) outsideRule++;
    }
    expect(differing).toBeGreaterThan(0);
    expect(outsideRule).toBe(0);
    // Every later block (emitted after the tone started) is already exact.
    const firstExact = blocks.findIndex((b) => b.clampMax === whole.clampMax);
    expect(firstExact).toBeGreaterThan(0);
    for (const b of blocks.slice(firstExact)) {
      expect(firstMismatch(b.features, whole.features.subarray(b.firstFrame * 128, (b.firstFrame + b.frames) * 128))).toBe(-1);
    }
    for (const b of blocks) reclampMel(b.features, whole.clampMax);
    expect(firstMismatch(concatBlocks(blocks), whole.features)).toBe(-1);
  });

  it('loudest part first: the running clamp is the clip clamp and every block is exact with no repair', () => {
    const x = seededNoise(70000, 1e-4, 12);
    for (let i = 0; i < 16000; i++) x[i] += 0.8 * Math.sin(i * 0.3);
    const whole = logMel(x);
    const blocks = runStream(x, chunkLengths(x.length, 777, 5));
    expect(blocks.every((b) => b.clampMax === whole.clampMax)).toBe(true);
    expect(firstMismatch(concatBlocks(blocks), whole.features)).toBe(-1);
  });

  it('the clip max includes tail frames past the valid ones (a click at the very end), as the reference pads', () => {
    const x = seededNoise(32000, 1e-3, 13);
    x[31999] = 0.9; // centred in frame 200, which is past the 200 valid frames
    const whole = logMel(x);
    expect(whole.validFrames).toBe(200);
    const topValid = whole.features.reduce((a, b) => Math.max(a, b), -Infinity);
    expect(topValid).toBeLessThan(Math.fround(whole.clampMax + 4) / 4);
    const blocks = runStream(x, chunkLengths(x.length, 999, 8));
    expect(blocks.map((b) => b.frames)).toEqual([200]);
    expect(firstMismatch(concatBlocks(blocks), whole.features)).toBe(-1);
  });

  it('runs past the 300 s clip with bounded work per block (a 330 s stream)', () => {
    const stream = new MelStream();
    const second = seededNoise(16000, 0.1, 2);
    let frames = 0;
    for (let s = 0; s < 330; s++) for (const b of stream.push(second)) { frames += b.frames; expect(b.frames).toBe(200); }
    for (const b of stream.finish()) frames += b.frames;
    expect(frames).toBe(33000);
  });

  it('computes a 2-second block in a few milliseconds', () => {
    const x = seededNoise(32000 * 6, 0.3, 21);
    const stream = new MelStream();
    const times: number[] = [];
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now();
      stream.push(x.subarray(i * 32000, (i + 1) * 32000));
      times.push(performance.now() - t0);
    }
    const median = times.slice(1).sort((a, b) => a - b)[2];
    console.log(`MelStream: 2 s (200 frames) in ${median.toFixed(2)} ms (median of 5 after warm-up)`);
    expect(median).toBeLessThan(25);
  });

  it('refuses bad options, bad chunks and use after finish; reset starts a new clip', () => {
    expect(() => new MelStream({ blockFrames: 0 })).toThrow(code('BAD_INPUT'));
    expect(() => new MelStream({ initialMax: NaN })).toThrow(code('BAD_INPUT'));
    const stream = new MelStream();
    expect(() => stream.push(new Float64Array(10) as unknown as Float32Array)).toThrow(code('BAD_INPUT'));
    expect(() => stream.push(new Float32Array([Infinity]))).toThrow(code('NUMERIC'));
    expect(stream.push(new Float32Array(0))).toEqual([]);
    expect(stream.finish()).toEqual([]);
    expect(() => stream.push(new Float32Array(10))).toThrow(code('BAD_INPUT'));
    expect(() => stream.finish()).toThrow(code('BAD_INPUT'));
    stream.reset();
    const x = seededNoise(5000, 0.2, 4);
    expect(firstMismatch(concatBlocks(runStream(x, [x.length], stream)), logMel(x).features)).toBe(-1);
    expect(() => reclampMel(new Float32Array(4), NaN)).toThrow(code('BAD_INPUT'));
  });
});
