import { describe, expect, it } from 'vitest';
import { decodeWav, encodeWav } from '../src/wav.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe('encodeWav', () => {
  it('round-trips through decodeWav: 16-bit mono at the given rate, within half a step', () => {
    const samples = new Float32Array(2401);
    for (let i = 0; i < samples.length; i++) samples[i] = 0.9 * Math.sin(i * 0.037) + 0.05 * Math.cos(i * 1.3);
    const bytes = encodeWav(samples, 24000);
    expect(bytes.length).toBe(44 + 2 * samples.length);
    const back = decodeWav(bytes);
    expect(back).toMatchObject({ sampleRate: 24000, channels: 1, encoding: 'pcm16' });
    expect(back.samples.length).toBe(samples.length);
    let worst = 0;
    for (let i = 0; i < samples.length; i++) worst = Math.max(worst, Math.abs(back.samples[i] - samples[i]));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(2 ** -16);
  });

  it('is exact on multiples of 2^-15 and clips past full scale', () => {
    const back = decodeWav(encodeWav(Float32Array.of(-1, -0.5, 0, 3 / 32768, 1, 1.7, -2), 16000));
    expect(Array.from(back.samples)).toEqual([-1, -0.5, 0, 3 / 32768, 32767 / 32768, 32767 / 32768, -1].map(Math.fround));
  });

  it('writes an empty file for no samples', () => {
    const back = decodeWav(encodeWav(new Float32Array(0), 8000));
    expect(back.samples.length).toBe(0);
    expect(back.sampleRate).toBe(8000);
  });

  it('refuses what a 16-bit WAV cannot hold', () => {
    expect(() => encodeWav([0.1] as unknown as Float32Array, 24000)).toThrow(code('BAD_INPUT'));
    expect(() => encodeWav(new Float32Array(4), 0)).toThrow(code('BAD_INPUT'));
    expect(() => encodeWav(new Float32Array(4), 22050.5)).toThrow(code('BAD_INPUT'));
    expect(() => encodeWav(Float32Array.of(0, Number.NaN), 24000)).toThrow(code('NUMERIC'));
  });
});
