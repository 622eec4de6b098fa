import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import * as jpeg from 'jpeg-js';
import { decodeImage, decodeImageNode, readImageHeader, rgbaToRgb } from '../src/decode.js';
import { processImage } from '../src/image.js';
import { goldenArray, maxAbsDiff } from './golden.js';

const code = (c: string) => expect.objectContaining({ code: c });

/** PNG bytes of an RGBA buffer, written in the given PNG colour type. */
function png(width: number, height: number, rgba: number[], colorType: 0 | 2 | 4 | 6): Uint8Array {
  const image = new PNG({ width, height });
  image.data.set(rgba);
  return new Uint8Array(PNG.sync.write(image, { colorType }));
}

describe('decodeImage in Node (pngjs / jpeg-js)', () => {
  it('an RGB PNG decodes to its exact bytes and feeds processImage to the golden pixel_values', async () => {
    const rgb = await goldenArray('image', 'image_rgb');
    const [height, width] = rgb.shape;
    const rgba: number[] = [];
    for (let p = 0; p < width * height; p++) rgba.push(rgb.data[p * 3], rgb.data[p * 3 + 1], rgb.data[p * 3 + 2], 255);
    const decoded = await decodeImage(png(width, height, rgba, 2));
    expect([decoded.width, decoded.height]).toEqual([width, height]);
    expect(maxAbsDiff(decoded.data, rgb.data)).toBe(0);
    const reference = (await goldenArray('image', 'pixel_values')).data as Float32Array;
    expect(maxAbsDiff(processImage(decoded).pixelValues, reference)).toBeLessThanOrEqual(1e-6);
  });

  it('composites RGBA on white with PIL paste rounding', async () => {
    const decoded = await decodeImage(png(4, 1, [0, 0, 0, 128, 255, 0, 0, 0, 10, 20, 30, 255, 200, 100, 50, 64], 6));
    // round((255·(255 − a) + c·a) / 255): (0,128) → 127; a = 0 → white; a = 255 → as is; (200,100,50 @ 64) → 241, 216, 204.
    expect(Array.from(decoded.data)).toEqual([127, 127, 127, 255, 255, 255, 10, 20, 30, 241, 216, 204]);
  });

  it('drops alpha of grey+alpha PNGs (PIL convert("RGB") does not composite them) and expands grey', async () => {
    const greyAlpha = await decodeImage(png(2, 1, [90, 90, 90, 0, 200, 200, 200, 128], 4));
    expect(Array.from(greyAlpha.data)).toEqual([90, 90, 90, 200, 200, 200]);
    const grey = await decodeImage(png(1, 1, [33, 33, 33, 255], 0));
    expect(Array.from(grey.data)).toEqual([33, 33, 33]);
  });

  it('decodes a JPEG (lossy: a smooth gradient comes back within a few levels)', async () => {
    const width = 48, height = 32;
    const rgba = new Uint8Array(width * height * 4);
    for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) rgba.set([x * 5, y * 7, 128, 255], (y * width + x) * 4);
    const bytes = new Uint8Array(jpeg.encode({ width, height, data: rgba }, 100).data);
    expect(readImageHeader(bytes)).toMatchObject({ format: 'jpeg', width, height });
    const decoded = await decodeImage(bytes);
    const expected = new Uint8Array(width * height * 3);
    for (let p = 0; p < width * height; p++) expected.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
    expect(maxAbsDiff(decoded.data, expected)).toBeLessThanOrEqual(6);
  });

  it('accepts a Blob and an ArrayBuffer', async () => {
    const bytes = png(1, 1, [1, 2, 3, 255], 2);
    expect(Array.from((await decodeImage(new Blob([bytes as Uint8Array<ArrayBuffer>]))).data)).toEqual([1, 2, 3]);
    expect(Array.from((await decodeImage(bytes.slice().buffer)).data)).toEqual([1, 2, 3]);
  });

  it('refuses absurd and empty dimensions from the header, before decoding', async () => {
    const header = png(1, 1, [0, 0, 0, 255], 2);
    const huge = header.slice();
    new DataView(huge.buffer).setUint32(16, 100000);
    new DataView(huge.buffer).setUint32(20, 100000);
    await expect(decodeImage(huge)).rejects.toThrow(code('BAD_INPUT'));
    const empty = header.slice();
    new DataView(empty.buffer).setUint32(16, 0);
    await expect(decodeImage(empty)).rejects.toThrow(code('BAD_INPUT'));
    await expect(decodeImage(png(100, 100, new Array(40000).fill(255), 2), { maxPixels: 5000 })).rejects.toThrow(code('BAD_INPUT'));
    const jpg = new Uint8Array(jpeg.encode({ width: 100, height: 100, data: new Uint8Array(40000) }, 50).data);
    await expect(decodeImage(jpg, { maxPixels: 5000 })).rejects.toThrow(code('BAD_INPUT'));
  });

  it('refuses unknown formats and corrupt data with BAD_INPUT', async () => {
    await expect(decodeImage(new TextEncoder().encode('GIF89a......'))).rejects.toThrow(code('BAD_INPUT'));
    await expect(decodeImage(new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2]))).rejects.toThrow(code('BAD_INPUT'));
    const corrupt = png(8, 8, new Array(256).fill(7), 2);
    corrupt.fill(0x55, 40, corrupt.length - 12); // IDAT payload
    const error = await decodeImageNode(corrupt).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BAD_INPUT' });
    expect((error as Error).cause).toBeDefined();
    await expect(decodeImage('not bytes' as unknown as Uint8Array)).rejects.toThrow(code('BAD_INPUT'));
  });

  it('rgbaToRgb refuses a buffer of the wrong size', () => {
    expect(() => rgbaToRgb(new Uint8Array(15), 2, 2, true)).toThrow(code('BAD_INPUT'));
  });
});
