import { describe, expect, it } from 'vitest';
import { decodeWav } from '../src/wav.js';
import { writeWav } from './wavFile.js';

const code = (c: string) => expect.objectContaining({ code: c });

describe('decodeWav', () => {
  it('scales PCM16 by 2^15, including both extremes', () => {
    const wav = writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[-32768, -16384, 0, 1, 32767]] });
    const out = decodeWav(wav);
    expect(out).toMatchObject({ sampleRate: 16000, channels: 1, encoding: 'pcm16' });
    expect(Array.from(out.samples)).toEqual([-1, -0.5, 0, 1 / 32768, 32767 / 32768].map(Math.fround));
  });

  it('reads PCM24 (sign in the top byte) and PCM32', () => {
    const p24 = decodeWav(writeWav({ sampleRate: 48000, encoding: 'pcm24', channels: [[-8388608, -1, 4194304, 8388607]] }));
    expect(Array.from(p24.samples)).toEqual([-1, -1 / 8388608, 0.5, 8388607 / 8388608].map(Math.fround));
    const p32 = decodeWav(writeWav({ sampleRate: 48000, encoding: 'pcm32', channels: [[-2147483648, 1073741824, 2147483647]] }));
    expect(Array.from(p32.samples)).toEqual([-1, 0.5, Math.fround(2147483647 / 2147483648)]);
  });

  it('reads unsigned PCM8 centred on 128', () => {
    const out = decodeWav(writeWav({ sampleRate: 8000, encoding: 'pcm8', channels: [[0, 64, 128, 255]] }));
    expect(Array.from(out.samples)).toEqual([-1, -0.5, 0, 127 / 128].map(Math.fround));
  });

  it('reads float32 and float64 as stored', () => {
    const values = [0.1, -0.75, 1.25, 0];
    expect(Array.from(decodeWav(writeWav({ sampleRate: 22050, encoding: 'float32', channels: [values] })).samples)).toEqual(values.map(Math.fround));
    expect(Array.from(decodeWav(writeWav({ sampleRate: 22050, encoding: 'float64', channels: [values] })).samples)).toEqual(values.map(Math.fround));
  });

  it('averages stereo to mono', () => {
    const out = decodeWav(writeWav({ sampleRate: 44100, encoding: 'pcm16', channels: [[16384, -32768, 1000], [0, 32767, 1000]] }));
    expect(out.channels).toBe(2);
    expect(Array.from(out.samples)).toEqual([0.25, -0.5 / 32768, 1000 / 32768].map(Math.fround));
  });

  it('reads WAVE_FORMAT_EXTENSIBLE and skips unknown chunks with odd sizes', () => {
    const out = decodeWav(writeWav({ sampleRate: 48000, encoding: 'float32', channels: [[0.5, -0.5], [0.25, 0.25]], extensible: true, extraChunk: true }));
    expect(out).toMatchObject({ encoding: 'float32', channels: 2, sampleRate: 48000 });
    expect(Array.from(out.samples)).toEqual([0.375, -0.125]);
  });

  it('takes the data to the end of the file when its size field is 0xFFFFFFFF (streamed writers)', () => {
    const out = decodeWav(writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[100, 200, 300]], dataSizeField: 0xffffffff }));
    expect(out.samples.length).toBe(3);
  });

  it('accepts an ArrayBuffer and a Uint8Array view with an offset', () => {
    const wav = writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[16384]] });
    expect(decodeWav(wav.slice().buffer).samples[0]).toBe(0.5);
    const shifted = new Uint8Array(wav.length + 3);
    shifted.set(wav, 3);
    expect(decodeWav(shifted.subarray(3)).samples[0]).toBe(0.5);
  });

  it('refuses a file that is not RIFF/WAVE', () => {
    expect(() => decodeWav(new TextEncoder().encode('RIFF\0\0\0\0AVI LIST'))).toThrow(code('BAD_INPUT'));
    expect(() => decodeWav(new Uint8Array(0))).toThrow(code('BAD_INPUT'));
    expect(() => decodeWav('RIFF' as unknown as Uint8Array)).toThrow(code('BAD_INPUT'));
  });

  it('refuses a data chunk that runs past the end of the file', () => {
    const wav = writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[1, 2, 3, 4]] });
    expect(() => decodeWav(wav.subarray(0, wav.length - 2))).toThrow(code('TRUNCATED'));
  });

  it('refuses a file with fmt but no data chunk, and data before fmt', () => {
    const wav = writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[1]] });
    expect(() => decodeWav(wav.subarray(0, 36))).toThrow(code('TRUNCATED'));
    const swapped = wav.slice();
    swapped.set(new TextEncoder().encode('data'), 12);
    expect(() => decodeWav(swapped)).toThrow(code('BAD_INPUT'));
  });

  it('refuses sample formats it does not read (ADPCM, 12-bit PCM)', () => {
    expect(() => decodeWav(writeWav({ sampleRate: 8000, encoding: 'pcm16', channels: [[0]], formatCode: 2 }))).toThrow(code('UNSUPPORTED_DTYPE'));
    const twelve = writeWav({ sampleRate: 8000, encoding: 'pcm16', channels: [[0]] });
    new DataView(twelve.buffer).setUint16(34, 12, true);
    expect(() => decodeWav(twelve)).toThrow(code('UNSUPPORTED_DTYPE'));
  });

  it('refuses 2 hours of audio before decoding it (maxSeconds, default 600 s)', () => {
    // The header announces 2 h of 48 kHz stereo PCM16; only a few bytes follow.
    const wav = writeWav({ sampleRate: 48000, encoding: 'pcm16', channels: [[0, 0], [0, 0]], dataSizeField: 2 * 3600 * 48000 * 4 });
    expect(() => decodeWav(wav)).toThrow(code('BAD_INPUT'));
    expect(() => decodeWav(wav, { maxSeconds: 3 * 3600 })).toThrow(code('TRUNCATED'));
    expect(() => decodeWav(wav, { maxSeconds: 0 })).toThrow(code('BAD_INPUT'));
  });

  it('refuses NaN in float data', () => {
    expect(() => decodeWav(writeWav({ sampleRate: 16000, encoding: 'float32', channels: [[0, NaN]] }))).toThrow(code('NUMERIC'));
  });

  it('refuses an inconsistent fmt chunk (block align that does not match the channels)', () => {
    const wav = writeWav({ sampleRate: 16000, encoding: 'pcm16', channels: [[0, 1]] });
    new DataView(wav.buffer).setUint16(32, 3, true);
    expect(() => decodeWav(wav)).toThrow(code('BAD_INPUT'));
  });
});
