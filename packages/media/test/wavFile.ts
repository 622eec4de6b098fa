/** Test-only WAV writer: interleaved channel data in a chosen encoding, with optional extra chunks. */
export type Encoding = 'pcm8' | 'pcm16' | 'pcm24' | 'pcm32' | 'float32' | 'float64';

const BITS: Record<Encoding, number> = { pcm8: 8, pcm16: 16, pcm24: 24, pcm32: 32, float32: 32, float64: 64 };

export interface WavSpec {
  sampleRate: number;
  encoding: Encoding;
  /** channels[c][i]: integer codes for PCM (unsigned for pcm8), floats for float encodings. */
  channels: number[][];
  extensible?: boolean;
  /** A chunk placed between fmt and data (odd size to exercise padding). */
  extraChunk?: boolean;
  /** Write this value in the data size field instead of the true size. */
  dataSizeField?: number;
  formatCode?: number;
}

export function writeWav(spec: WavSpec): Uint8Array {
  const bits = BITS[spec.encoding];
  const bytesPerSample = bits / 8;
  const channelCount = spec.channels.length;
  const frames = spec.channels[0].length;
  const dataSize = frames * channelCount * bytesPerSample;
  const isFloat = spec.encoding.startsWith('float');
  const code = spec.formatCode ?? (isFloat ? 3 : 1);
  const fmtSize = spec.extensible ? 40 : 16;
  const extra = spec.extraChunk ? 8 + 5 + 1 : 0;
  const out = new Uint8Array(12 + 8 + fmtSize + extra + 8 + dataSize);
  const view = new DataView(out.buffer);
  const text = (at: number, s: string) => { for (let i = 0; i < 4; i++) out[at + i] = s.charCodeAt(i); };
  text(0, 'RIFF'); view.setUint32(4, out.length - 8, true); text(8, 'WAVE');
  text(12, 'fmt '); view.setUint32(16, fmtSize, true);
  view.setUint16(20, spec.extensible ? 0xfffe : code, true);
  view.setUint16(22, channelCount, true);
  view.setUint32(24, spec.sampleRate, true);
  view.setUint32(28, spec.sampleRate * channelCount * bytesPerSample, true);
  view.setUint16(32, channelCount * bytesPerSample, true);
  view.setUint16(34, bits, true);
  if (spec.extensible) {
    view.setUint16(36, 22, true);
    view.setUint16(38, bits, true);
    view.setUint32(40, 0, true);
    view.setUint16(44, code, true); // first two bytes of the sub-format GUID
  }
  let at = 20 + fmtSize;
  if (spec.extraChunk) { text(at, 'LIST'); view.setUint32(at + 4, 5, true); at += 8 + 5 + 1; }
  text(at, 'data'); view.setUint32(at + 4, spec.dataSizeField ?? dataSize, true);
  at += 8;
  for (let i = 0; i < frames; i++) {
    for (let c = 0; c < channelCount; c++, at += bytesPerSample) {
      const v = spec.channels[c][i];
      switch (spec.encoding) {
        case 'pcm8': view.setUint8(at, v); break;
        case 'pcm16': view.setInt16(at, v, true); break;
        case 'pcm24': view.setUint8(at, v & 0xff); view.setUint8(at + 1, (v >> 8) & 0xff); view.setInt8(at + 2, v >> 16); break;
        case 'pcm32': view.setInt32(at, v, true); break;
        case 'float32': view.setFloat32(at, v, true); break;
        case 'float64': view.setFloat64(at, v, true); break;
      }
    }
  }
  return out;
}
