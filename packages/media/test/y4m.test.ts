import { describe, expect, it } from 'vitest';
import { parseY4m } from '../src/y4m.js';
import { processVideo, videoFromSource } from '../src/video.js';
import { maxAbsDiff } from './golden.js';

const code = (c: string) => expect.objectContaining({ code: c });

/** A y4m file whose every frame is one flat colour (Y, Cb, Cr per frame). */
function y4m(header: string, width: number, height: number, chroma: [number, number] | null, colours: [number, number, number][]): Uint8Array {
  const cw = chroma ? Math.ceil(width / chroma[0]) : 0, ch = chroma ? Math.ceil(height / chroma[1]) : 0;
  const parts: Uint8Array[] = [new TextEncoder().encode(`YUV4MPEG2 W${width} H${height} ${header}\n`)];
  for (const [y, u, v] of colours) {
    parts.push(new TextEncoder().encode('FRAME\n'));
    parts.push(new Uint8Array(width * height).fill(y), new Uint8Array(cw * ch).fill(u), new Uint8Array(cw * ch).fill(v));
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** BT.601 limited-range encoding of an RGB colour (the inverse of what the reader applies). */
function bt601(r: number, g: number, b: number): [number, number, number] {
  const y = 0.299 * r + 0.587 * g + 0.114 * b;
  return [Math.round(16 + (219 / 255) * y), Math.round(128 + (224 / 255) * ((b - y) / 1.772)), Math.round(128 + (224 / 255) * ((r - y) / 1.402))];
}

describe('parseY4m', () => {
  it('reads the header and converts BT.601 limited-range 4:2:0 to RGB', () => {
    const colours: [number, number, number][] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [0, 0, 0], [128, 64, 200]];
    const video = parseY4m(y4m('F30000:1001 Ip A1:1 C420jpeg XYSCSS=420JPEG', 6, 4, [2, 2], colours.map(([r, g, b]) => bt601(r, g, b))));
    expect(video).toMatchObject({ width: 6, height: 4, frameCount: 6, colorSpace: '420jpeg', fullRange: false });
    expect(video.fps).toBeCloseTo(29.97, 2);
    colours.forEach((rgb, i) => {
      const frame = video.frame(i);
      expect(frame.data.length).toBe(6 * 4 * 3);
      // 8-bit YCbCr rounding costs up to ~2 levels on the way back.
      expect(maxAbsDiff(frame.data, new Uint8Array(24 * 3).map((_, k) => rgb[k % 3]))).toBeLessThanOrEqual(2);
    });
  });

  it('reads full range (XCOLORRANGE=FULL), 4:4:4, 4:2:2, mono and odd sizes', () => {
    expect(Array.from(parseY4m(y4m('F25:1 C444 XCOLORRANGE=FULL', 2, 2, [1, 1], [[255, 128, 128]])).frame(0).data.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(parseY4m(y4m('F25:1 C444', 2, 2, [1, 1], [[235, 128, 128]])).frame(0).data.subarray(0, 3))).toEqual([255, 255, 255]);
    expect(Array.from(parseY4m(y4m('F25:1 C422', 3, 2, [2, 1], [[16, 128, 128]])).frame(0).data)).toEqual(new Array(18).fill(0));
    const mono = parseY4m(y4m('F25:1 Cmono', 3, 3, null, [[126, 0, 0]])).frame(0);
    expect(new Set(mono.data)).toEqual(new Set([128]));
    const odd = parseY4m(y4m('F25:1 C420', 5, 3, [2, 2], [[81, 90, 240]])).frame(0);
    expect(odd.data.length).toBe(45);
  });

  it('feeds videoFromSource: 20 frames at 10 fps → 4 sampled frames, only those decoded', () => {
    const colours = Array.from({ length: 20 }, (_, i) => bt601(i * 12, 100, 255 - i * 12));
    const video = parseY4m(y4m('F10:1 C420jpeg', 56, 56, [2, 2], colours));
    const out = videoFromSource(video, { minPixels: 3136, maxPixels: 12845056 });
    expect(out.frameIndices).toEqual([0, 6, 13, 19]);
    expect(out.gridThw).toEqual([2, 4, 4]);
    expect(maxAbsDiff(out.pixelValues, processVideo([0, 6, 13, 19].map((i) => video.frame(i)), { minPixels: 3136, maxPixels: 12845056 }).pixelValues)).toBe(0);
  });

  it('refuses files that are not y4m, truncated frames, unread colour spaces and absurd sizes', () => {
    const good = y4m('F25:1 C420jpeg', 4, 4, [2, 2], [[16, 128, 128], [16, 128, 128]]);
    expect(() => parseY4m(new TextEncoder().encode('RIFF....'))).toThrow(code('BAD_INPUT'));
    expect(() => parseY4m(good.subarray(0, good.length - 1))).toThrow(code('TRUNCATED'));
    expect(() => parseY4m(y4m('F25:1 C420p10', 4, 4, [2, 2], [[0, 0, 0]]))).toThrow(code('UNSUPPORTED_DTYPE'));
    expect(() => parseY4m(y4m('F25:1', 100000, 4, [2, 2], []))).toThrow(code('BAD_INPUT'));
    expect(() => parseY4m(y4m('C420', 4, 4, [2, 2], [[0, 0, 0]]))).toThrow(code('BAD_INPUT'));
    expect(() => parseY4m(y4m('F25:1', 4, 4, [2, 2], []))).toThrow(code('BAD_INPUT'));
    const garbled = good.slice();
    garbled.set(new TextEncoder().encode('FRAMX'), good.length - 24 - 6);
    expect(() => parseY4m(garbled)).toThrow(code('BAD_INPUT'));
    expect(() => parseY4m(new TextEncoder().encode('YUV4MPEG2 W4 H4 F25:1'))).toThrow(code('TRUNCATED'));
    expect(() => parseY4m(good).frame(2)).toThrow(code('BAD_INPUT'));
  });
});
