import { describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_PREPROCESS } from '../src/preprocessor.js';
import { normalizeImage, patchify, processImage, resizeBicubic, smartResize, type RgbImage } from '../src/image.js';
import { goldenArray, maxAbsDiff } from './golden.js';

const code = (c: string) => expect.objectContaining({ code: c });

async function goldenImage(prefix: '' | 'resize_case_'): Promise<RgbImage> {
  const rgb = await goldenArray('image', `${prefix}image_rgb`);
  return { height: rgb.shape[0], width: rgb.shape[1], data: rgb.data as Uint8Array };
}

/**
 * Inverse of the reference patch layout and normalisation: 8-bit RGB of temporal frame 0 from
 * pixel_values [patches, 3·2·14·14] ordered (h/2, w/2, 2, 2) and (c, t, 14, 14).
 */
function pixelsFromPatches(pixelValues: Float32Array, gridH: number, gridW: number): RgbImage {
  const width = gridW * 14, height = gridH * 14;
  const data = new Uint8Array(width * height * 3);
  const { imageMean: mean, imageStd: std } = DEFAULT_IMAGE_PREPROCESS;
  let row = 0;
  for (let bh = 0; bh < gridH / 2; bh++) for (let bw = 0; bw < gridW / 2; bw++) for (let mh = 0; mh < 2; mh++) for (let mw = 0; mw < 2; mw++, row++) {
    for (let c = 0; c < 3; c++) for (let y = 0; y < 14; y++) for (let x = 0; x < 14; x++) {
      const v = pixelValues[row * 1176 + c * 392 + y * 14 + x]; // t = 0
      const py = (bh * 2 + mh) * 14 + y, px = (bw * 2 + mw) * 14 + x;
      data[(py * width + px) * 3 + c] = Math.round((v * std[c] + mean[c]) * 255);
    }
  }
  return { width, height, data };
}

describe('processImage against the golden Qwen2VLImageProcessor output', () => {
  it('140×168 image (no resize): pixel_values and image_grid_thw', async () => {
    const image = await goldenImage('');
    const reference = await goldenArray('image', 'pixel_values');
    const out = processImage(image);
    expect(out.gridThw).toEqual(Array.from((await goldenArray('image', 'image_grid_thw')).data));
    expect([out.patches, out.patchDim]).toEqual(reference.shape);
    const diff = maxAbsDiff(out.pixelValues, reference.data as Float32Array);
    console.log(`image pixel_values: max |Δ| ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-6);
  });

  it('50×100 image resized by smart_resize to 56×112 with PIL bicubic: pixel_values, grid [1, 4, 8]', async () => {
    const image = await goldenImage('resize_case_');
    const reference = await goldenArray('image', 'resize_case_pixel_values');
    const out = processImage(image);
    expect(out.gridThw).toEqual(Array.from((await goldenArray('image', 'resize_case_image_grid_thw')).data));
    expect([out.height, out.width]).toEqual([56, 112]);
    const diff = maxAbsDiff(out.pixelValues, reference.data as Float32Array);
    console.log(`resize case pixel_values: max |Δ| ${diff}`);
    expect(diff).toBeLessThanOrEqual(1e-6);
  });

  it('the resized pixels equal the reference resize within 1/255 per channel', async () => {
    const reference = pixelsFromPatches((await goldenArray('image', 'resize_case_pixel_values')).data as Float32Array, 4, 8);
    const ours = resizeBicubic(await goldenImage('resize_case_'), 112, 56);
    const levels = maxAbsDiff(ours.data, reference.data);
    console.log(`resize case: max per-channel difference ${levels}/255`);
    expect(levels).toBeLessThanOrEqual(1);
  });

  it('the temporal copy: both frames of an image patch are identical', async () => {
    const out = processImage(await goldenImage(''));
    for (let row = 0; row < out.patches; row += 17) {
      for (let c = 0; c < 3; c++) {
        const base = row * 1176 + c * 392;
        expect(firstDiff(out.pixelValues.subarray(base, base + 196), out.pixelValues.subarray(base + 196, base + 392))).toBe(-1);
      }
    }
  });
});

function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

describe('smartResize (fact sheet §4.1)', () => {
  // Expected values worked through the reference formula (Python's round: halves to even).
  it.each([
    [50, 100, 56, 112],
    [70, 280, 56, 280], // 70/28 = 2.5 rounds to 2, not 3
    [20, 30, 56, 84], // below min_pixels: scaled up, ceil
    [1, 200, 28, 196], // aspect ratio exactly 200 is allowed; a side never drops below 28
    [14, 300, 28, 308],
    [4000, 3000, 4004, 2996],
    [10000, 10000, 3556, 3556], // above max_pixels: scaled down, floor (float64 puts 128 just below)
  ])('%i×%i → %i×%i', (h, w, eh, ew) => {
    expect(smartResize(h, w)).toEqual({ height: eh, width: ew });
  });

  it('uses the pixel limits it is given', () => {
    expect(smartResize(60, 100, { minPixels: 128 * 28 * 28, maxPixels: 768 * 28 * 28 })).toEqual({ height: 252, width: 420 });
    expect(smartResize(1000, 1000, { maxPixels: 56 * 56 })).toEqual({ height: 56, width: 56 });
  });

  it('refuses 0×0, aspect ratios above 200 and bad limits', () => {
    expect(() => smartResize(0, 0)).toThrow(code('BAD_INPUT'));
    expect(() => smartResize(1, 201)).toThrow(code('BAD_INPUT'));
    expect(() => smartResize(10.5, 20)).toThrow(code('BAD_INPUT'));
    expect(() => smartResize(100, 100, { minPixels: 5000, maxPixels: 4000 })).toThrow(code('BAD_INPUT'));
  });
});

describe('resizeBicubic (PIL BICUBIC)', () => {
  it('keeps a flat image flat when enlarging and shrinking', () => {
    const flat = { width: 9, height: 7, data: new Uint8Array(9 * 7 * 3).map((_, i) => [200, 10, 77][i % 3]) };
    for (const [w, h] of [[30, 20], [4, 3], [9, 21]]) {
      const out = resizeBicubic(flat, w, h);
      expect(out.data.length).toBe(w * h * 3);
      expect(firstDiff(out.data, new Uint8Array(w * h * 3).map((_, i) => [200, 10, 77][i % 3]))).toBe(-1);
    }
  });

  it('clamps the cubic overshoot at a hard edge to 0…255', () => {
    const edge = { width: 4, height: 1, data: new Uint8Array([0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255]) };
    const out = resizeBicubic(edge, 16, 1);
    expect(Math.min(...out.data)).toBe(0);
    expect(Math.max(...out.data)).toBe(255);
  });

  it('refuses a 0×0 image, a wrong byte count and a 0×0 target', () => {
    expect(() => resizeBicubic({ width: 0, height: 0, data: new Uint8Array(0) }, 28, 28)).toThrow(code('BAD_INPUT'));
    expect(() => resizeBicubic({ width: 2, height: 2, data: new Uint8Array(16) }, 28, 28)).toThrow(code('BAD_INPUT'));
    expect(() => resizeBicubic({ width: 2, height: 2, data: new Uint8Array(12) }, 0, 0)).toThrow(code('BAD_INPUT'));
  });
});

describe('processImage input checks', () => {
  it('refuses 0×0 and malformed images, sides beyond the limit, and bad settings', () => {
    expect(() => processImage({ width: 0, height: 0, data: new Uint8Array(0) })).toThrow(code('BAD_INPUT'));
    expect(() => processImage({ width: 28, height: 28, data: new Uint8Array(28 * 28 * 4) })).toThrow(code('BAD_INPUT'));
    expect(() => processImage({ width: 40000, height: 1, data: new Uint8Array(120000) })).toThrow(code('BAD_INPUT'));
    expect(() => processImage(null as unknown as RgbImage)).toThrow(code('BAD_INPUT'));
    const small = { width: 28, height: 28, data: new Uint8Array(28 * 28 * 3) };
    expect(() => processImage(small, { imageStd: [0, 1, 1] })).toThrow(code('BAD_INPUT'));
    expect(() => processImage(small, { minPixels: 10, maxPixels: 5 })).toThrow(code('BAD_INPUT'));
  });

  it('patchify refuses sizes off the 28 grid and frame counts off the temporal patch', () => {
    const planes = normalizeImage({ width: 28, height: 28, data: new Uint8Array(28 * 28 * 3) }, [0, 0, 0], [1, 1, 1]);
    expect(() => patchify([planes, planes], 14, 56, DEFAULT_IMAGE_PREPROCESS)).toThrow(code('BAD_INPUT'));
    expect(() => patchify([planes], 28, 28, DEFAULT_IMAGE_PREPROCESS)).toThrow(code('BAD_INPUT'));
    expect(patchify([planes, planes], 28, 28, DEFAULT_IMAGE_PREPROCESS).gridThw).toEqual([1, 2, 2]);
  });
});
