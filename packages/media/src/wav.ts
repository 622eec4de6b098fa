/**
 * RIFF/WAVE decoding over bytes (no platform API, so the same code runs in
 * Node and in the browser). Integer PCM is scaled by 2^(bits−1) (8-bit is
 * unsigned, centred on 128) and channels are averaged to mono, as the
 * reference's librosa load does (fact sheet §3.1: mono float waveform).
 */
import { OmniError } from '@omniweb/core';

export type WavEncoding = 'pcm8' | 'pcm16' | 'pcm24' | 'pcm32' | 'float32' | 'float64';

export interface DecodedAudio {
  /** Mono samples (channel mean), nominally in [−1, 1]. */
  samples: Float32Array;
  sampleRate: number;
  /** Channels in the file, before the down-mix. */
  channels: number;
  encoding: WavEncoding;
}

export interface WavOptions {
  /** Longest audio accepted, in seconds (default 600); longer files are refused before decoding. */
  maxSeconds?: number;
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
/** Some streaming writers leave the data size at its maximum: the data then runs to the end of the file. */
const UNKNOWN_SIZE = 0xffffffff;

function tag(view: DataView, at: number): string {
  return String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));
}

function encodingOf(format: number, bits: number): WavEncoding | null {
  if (format === FORMAT_PCM) {
    if (bits === 8) return 'pcm8';
    if (bits === 16) return 'pcm16';
    if (bits === 24) return 'pcm24';
    if (bits === 32) return 'pcm32';
  }
  if (format === FORMAT_FLOAT) {
    if (bits === 32) return 'float32';
    if (bits === 64) return 'float64';
  }
  return null;
}

/** Decodes a WAV file (PCM 8/16/24/32-bit, IEEE float 32/64-bit; plain or WAVE_FORMAT_EXTENSIBLE). */
export function decodeWav(bytes: Uint8Array | ArrayBuffer, options: WavOptions = {}): DecodedAudio {
  const maxSeconds = options.maxSeconds ?? 600;
  if (typeof maxSeconds !== 'number' || !(maxSeconds > 0)) {
    throw new OmniError('BAD_INPUT', `decodeWav: maxSeconds must be a positive number, got ${maxSeconds}`);
  }
  const data = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes;
  if (!(data instanceof Uint8Array)) throw new OmniError('BAD_INPUT', 'decodeWav takes the file bytes as a Uint8Array or ArrayBuffer');
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  if (data.length < 12 || tag(view, 0) !== 'RIFF' || tag(view, 8) !== 'WAVE') {
    throw new OmniError('BAD_INPUT', 'decodeWav: not a RIFF/WAVE file (the first 12 bytes must read "RIFF····WAVE")');
  }
  let format: { code: number; channels: number; sampleRate: number; bits: number; blockAlign: number } | null = null;
  let at = 12;
  while (at + 8 <= data.length) {
    const id = tag(view, at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + size > data.length) throw new OmniError('TRUNCATED', `decodeWav: fmt chunk of ${size} bytes is too short or runs past the file`);
      let code = view.getUint16(body, true);
      if (code === FORMAT_EXTENSIBLE) {
        if (size < 40) throw new OmniError('BAD_INPUT', `decodeWav: WAVE_FORMAT_EXTENSIBLE fmt chunk has ${size} bytes, needs 40`);
        // The sub-format GUID starts with the plain format code.
        code = view.getUint16(body + 24, true);
      }
      format = {
        code,
        channels: view.getUint16(body + 2, true),
        sampleRate: view.getUint32(body + 4, true),
        blockAlign: view.getUint16(body + 12, true),
        bits: view.getUint16(body + 14, true),
      };
    } else if (id === 'data') {
      if (!format) throw new OmniError('BAD_INPUT', 'decodeWav: data chunk comes before the fmt chunk');
      return decodeData(view, body, size, format, maxSeconds);
    }
    // Chunks are padded to an even size.
    at = body + size + (size & 1);
  }
  throw new OmniError(format ? 'TRUNCATED' : 'BAD_INPUT', `decodeWav: no ${format ? 'data' : 'fmt'} chunk in ${data.length} bytes`);
}

function decodeData(
  view: DataView, body: number, declared: number,
  format: { code: number; channels: number; sampleRate: number; bits: number; blockAlign: number },
  maxSeconds: number,
): DecodedAudio {
  const { channels, sampleRate, bits, blockAlign } = format;
  const encoding = encodingOf(format.code, bits);
  if (!encoding) {
    throw new OmniError('UNSUPPORTED_DTYPE', `decodeWav: format code ${format.code} with ${bits}-bit samples is not read (PCM 8/16/24/32, float 32/64 are)`);
  }
  const bytesPerSample = bits / 8;
  if (channels < 1 || sampleRate < 1 || blockAlign !== channels * bytesPerSample) {
    throw new OmniError('BAD_INPUT', `decodeWav: inconsistent fmt (channels ${channels}, rate ${sampleRate}, blockAlign ${blockAlign}, bits ${bits})`);
  }
  const available = view.byteLength - body;
  const size = declared === UNKNOWN_SIZE ? available - (available % blockAlign) : declared;
  const frames = Math.floor(size / blockAlign);
  if (frames / sampleRate > maxSeconds) {
    throw new OmniError('BAD_INPUT',
      `decodeWav: ${(frames / sampleRate).toFixed(1)} s of audio exceeds maxSeconds = ${maxSeconds}; raise maxSeconds or decode the file in parts`);
  }
  if (size > available) throw new OmniError('TRUNCATED', `decodeWav: data chunk announces ${size} bytes, the file holds ${available}`);
  const samples = new Float32Array(frames);
  const read = sampleReader(view, encoding);
  for (let f = 0, at = body; f < frames; f++) {
    let sum = 0;
    for (let c = 0; c < channels; c++, at += bytesPerSample) sum += read(at);
    if (!Number.isFinite(sum)) throw new OmniError('NUMERIC', `decodeWav: sample frame ${f} holds ${sum}`);
    samples[f] = sum / channels;
  }
  return { samples, sampleRate, channels, encoding };
}

function sampleReader(view: DataView, encoding: WavEncoding): (at: number) => number {
  switch (encoding) {
    case 'pcm8': return (at) => (view.getUint8(at) - 128) / 128;
    case 'pcm16': return (at) => view.getInt16(at, true) / 32768;
    case 'pcm24': return (at) => ((view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getInt8(at + 2) << 16)) / 8388608);
    case 'pcm32': return (at) => view.getInt32(at, true) / 2147483648;
    case 'float32': return (at) => view.getFloat32(at, true);
    case 'float64': return (at) => view.getFloat64(at, true);
  }
}

/** Largest data chunk a RIFF file can describe (its size fields are 32-bit). */
const MAX_DATA_BYTES = 0xffffffff - 36;

/**
 * Mono samples in [−1, 1] → a 16-bit PCM WAV file. Samples are scaled by 2^15 (the inverse of
 * `decodeWav`) and rounded; values past full scale are clipped, so a round trip is exact to
 * half a step (2^−16) inside [−1, 1).
 */
export function encodeWav(samples: Float32Array, sampleRate: number): Uint8Array {
  if (!(samples instanceof Float32Array)) {
    throw new OmniError('BAD_INPUT', `encodeWav takes mono samples as a Float32Array, got ${Object.prototype.toString.call(samples)}`);
  }
  if (!Number.isSafeInteger(sampleRate) || sampleRate < 1 || sampleRate > 0xffffffff / 2) {
    throw new OmniError('BAD_INPUT', `encodeWav: sampleRate ${String(sampleRate)} must be a positive integer (Hz) a WAV header can hold`);
  }
  const dataBytes = samples.length * 2;
  if (dataBytes > MAX_DATA_BYTES) {
    throw new OmniError('BAD_INPUT', `encodeWav: ${samples.length} samples need ${dataBytes} bytes; a WAV file holds at most ${MAX_DATA_BYTES}: split the audio`);
  }
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const text = (at: number, s: string) => { for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i); };
  text(0, 'RIFF');
  view.setUint32(4, 36 + dataBytes, true);
  text(8, 'WAVE');
  text(12, 'fmt ');
  view.setUint32(16, 16, true);
  view.setUint16(20, FORMAT_PCM, true);
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // block align
  view.setUint16(34, 16, true);
  text(36, 'data');
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i];
    if (!Number.isFinite(x)) throw new OmniError('NUMERIC', `encodeWav: sample ${i} is ${x}`);
    view.setInt16(44 + 2 * i, Math.max(-32768, Math.min(32767, Math.round(x * 32768))), true);
  }
  return out;
}
