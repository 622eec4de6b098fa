/**
 * YUV4MPEG2 (.y4m) reading over bytes: the raw format ffmpeg writes and Chromium's
 * fake camera reads, so Node tests and browser tests can share one clip.
 *
 * Frames are indexed when the file is opened and converted to RGB only when asked
 * for, so sampling 2 fps out of a long clip decodes only the sampled frames.
 * Colour: 8-bit 4:2:0, 4:2:2, 4:4:4 and mono; BT.601 matrix, limited range unless the
 * header says XCOLORRANGE=FULL. Chroma is upsampled by nearest neighbour (siting
 * variants 420jpeg / 420mpeg2 / 420paldv are read alike), so edges between colours
 * may differ by a few levels from ffmpeg's scaler.
 */
import { OmniError } from '@omniweb/core';
import { MAX_IMAGE_SIDE, type RgbImage } from './image.js';
import type { FrameSource } from './video.js';

export interface Y4mVideo extends FrameSource {
  width: number;
  height: number;
  /** Header colour space tag, e.g. "420jpeg". */
  colorSpace: string;
  fullRange: boolean;
}

const MAGIC = 'YUV4MPEG2';
/** Longest header or FRAME line read: the format puts no limit, real writers stay far below. */
const MAX_LINE = 4096;

const SUBSAMPLING: Record<string, [number, number] | null> = {
  '420jpeg': [2, 2], '420paldv': [2, 2], '420mpeg2': [2, 2], '420': [2, 2],
  '422': [2, 1], '444': [1, 1], mono: null,
};

function lineEnd(bytes: Uint8Array, from: number): number {
  const limit = Math.min(bytes.length, from + MAX_LINE);
  for (let i = from; i < limit; i++) if (bytes[i] === 0x0a) return i;
  throw new OmniError(bytes.length < from + MAX_LINE ? 'TRUNCATED' : 'BAD_INPUT', `y4m: no end of line within ${MAX_LINE} bytes at offset ${from}`);
}

function ascii(bytes: Uint8Array, from: number, to: number): string {
  let s = '';
  for (let i = from; i < to; i++) s += String.fromCharCode(bytes[i]);
  return s;
}

/** Opens a .y4m file held in memory. */
export function parseY4m(bytes: Uint8Array): Y4mVideo {
  if (!(bytes instanceof Uint8Array)) throw new OmniError('BAD_INPUT', 'parseY4m takes the file bytes as a Uint8Array');
  if (ascii(bytes, 0, Math.min(bytes.length, MAGIC.length)) !== MAGIC) {
    throw new OmniError('BAD_INPUT', `parseY4m: not a YUV4MPEG2 file (it must start with "${MAGIC}")`);
  }
  const headerEnd = lineEnd(bytes, 0);
  let width = 0, height = 0, fps = 0, colorSpace = '420jpeg', fullRange = false;
  for (const token of ascii(bytes, MAGIC.length, headerEnd).split(' ').filter(Boolean)) {
    const value = token.slice(1);
    switch (token[0]) {
      case 'W': width = Number(value); break;
      case 'H': height = Number(value); break;
      case 'F': {
        const [num, den] = value.split(':').map(Number);
        fps = num / den;
        break;
      }
      case 'C': colorSpace = value; break;
      case 'X': if (value === 'COLORRANGE=FULL') fullRange = true; break;
    }
  }
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new OmniError('BAD_INPUT', `parseY4m: frame size ${width}×${height}; each side must be an integer in [1, ${MAX_IMAGE_SIDE}]`);
  }
  if (!Number.isFinite(fps) || fps <= 0) throw new OmniError('BAD_INPUT', 'parseY4m: the header has no valid frame rate (F<num>:<den>)');
  if (!(colorSpace in SUBSAMPLING)) {
    throw new OmniError('UNSUPPORTED_DTYPE', `parseY4m: colour space C${colorSpace} is not read (8-bit 420, 422, 444 and mono are)`);
  }
  const sub = SUBSAMPLING[colorSpace];
  const chromaWidth = sub ? Math.ceil(width / sub[0]) : 0, chromaHeight = sub ? Math.ceil(height / sub[1]) : 0;
  const frameBytes = width * height + 2 * chromaWidth * chromaHeight;
  const offsets: number[] = [];
  for (let at = headerEnd + 1; at < bytes.length;) {
    if (ascii(bytes, at, at + 5) !== 'FRAME') throw new OmniError('BAD_INPUT', `parseY4m: expected FRAME at offset ${at}`);
    const data = lineEnd(bytes, at) + 1;
    if (data + frameBytes > bytes.length) {
      throw new OmniError('TRUNCATED', `parseY4m: frame ${offsets.length} needs ${frameBytes} bytes, ${bytes.length - data} remain`);
    }
    offsets.push(data);
    at = data + frameBytes;
  }
  if (offsets.length === 0) throw new OmniError('BAD_INPUT', 'parseY4m: the file holds no frames');

  const frame = (index: number): RgbImage => {
    if (!Number.isSafeInteger(index) || index < 0 || index >= offsets.length) {
      throw new OmniError('BAD_INPUT', `y4m frame index ${index} is outside 0…${offsets.length - 1}`);
    }
    const y = offsets[index], u = y + width * height, v = u + chromaWidth * chromaHeight;
    const out = new Uint8Array(width * height * 3);
    // BT.601: R = Y' + 1.402·Cr, G = Y' − 0.344136·Cb − 0.714136·Cr, B = Y' + 1.772·Cb, with
    // limited range scaling Y by 255/219 and chroma by 255/224.
    const yScale = fullRange ? 1 : 255 / 219, yOffset = fullRange ? 0 : 16, cScale = fullRange ? 1 : 255 / 224;
    for (let row = 0; row < height; row++) {
      for (let col = 0; col < width; col++) {
        const luma = (bytes[y + row * width + col] - yOffset) * yScale;
        let cb = 0, cr = 0;
        if (sub) {
          const c = Math.floor(row / sub[1]) * chromaWidth + Math.floor(col / sub[0]);
          cb = (bytes[u + c] - 128) * cScale;
          cr = (bytes[v + c] - 128) * cScale;
        }
        const to = (row * width + col) * 3;
        out[to] = clampByte(luma + 1.402 * cr);
        out[to + 1] = clampByte(luma - 0.344136 * cb - 0.714136 * cr);
        out[to + 2] = clampByte(luma + 1.772 * cb);
      }
    }
    return { width, height, data: out };
  };
  return { width, height, fps, colorSpace, fullRange, frameCount: offsets.length, frame };
}

function clampByte(v: number): number {
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v);
}
