/**
 * Image preprocessing of Qwen2.5-Omni (fact sheet §4.1): smart_resize to a
 * multiple of 28, PIL bicubic resampling, rescale by 1/255, CLIP mean/std
 * normalisation, and patchify into `pixel_values` [patches, C·T·14·14] with
 * `image_grid_thw` — the Qwen2-VL image processor's output.
 */
import { OmniError } from '@omniweb/core';
import { imagePreprocessConfig, type VisionPreprocessConfig } from './preprocessor.js';

/** 8-bit RGB, rows top to bottom, 3 bytes per pixel (HWC). */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export interface VisionPatches {
  /** [patches, C·T·P·P] in the reference's patch order (§4.1). */
  pixelValues: Float32Array;
  patches: number;
  /** C·T·P·P: 1176 for RGB, temporal patch 2, patch 14. */
  patchDim: number;
  /** [t, h, w] in patches. */
  gridThw: [number, number, number];
}

/** Largest side accepted anywhere in this module: far above any camera, small enough to bound allocations. */
export const MAX_IMAGE_SIDE = 32768;

export function checkRgbImage(image: unknown, where: string): asserts image is RgbImage {
  const im = image as RgbImage;
  if (im === null || typeof im !== 'object' || !(im.data instanceof Uint8Array)) {
    throw new OmniError('BAD_INPUT', `${where} takes { width, height, data: Uint8Array } (RGB, HWC)`);
  }
  const { width, height } = im;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new OmniError('BAD_INPUT', `${where}: image is ${width}×${height}; each side must be an integer in [1, ${MAX_IMAGE_SIDE}]`);
  }
  if (im.data.length !== width * height * 3) {
    throw new OmniError('BAD_INPUT', `${where}: a ${width}×${height} RGB image needs ${width * height * 3} bytes, got ${im.data.length}`);
  }
}

/** Python's round(): halves go to the even neighbour (smart_resize is written in Python). */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

export interface SmartResizeOptions {
  /** Side multiple: patchSize·mergeSize (28). */
  factor?: number;
  minPixels?: number;
  maxPixels?: number;
}

/**
 * Target size (§4.1): each side rounded to the nearest multiple of `factor` (at least
 * `factor`, as qwen-omni-utils does); if the area exceeds maxPixels both sides are
 * scaled down and floored, if below minPixels scaled up and ceiled. BAD_INPUT for an
 * aspect ratio above 200, as the reference refuses it.
 */
export function smartResize(height: number, width: number, options: SmartResizeOptions = {}): { height: number; width: number } {
  const factor = options.factor ?? 28;
  const minPixels = options.minPixels ?? 4 * 28 * 28;
  const maxPixels = options.maxPixels ?? 16384 * 28 * 28;
  for (const [name, v] of [['height', height], ['width', width], ['factor', factor]] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new OmniError('BAD_INPUT', `smartResize: ${name} must be a positive integer, got ${v}`);
  }
  // The video path derives maxPixels from a budget, so pixel limits may be fractional (§4.2).
  if (!(minPixels > 0) || !(maxPixels >= minPixels) || !Number.isFinite(maxPixels)) {
    throw new OmniError('BAD_INPUT', `smartResize: need 0 < minPixels ≤ maxPixels < ∞, got ${minPixels} and ${maxPixels}`);
  }
  if (Math.max(height, width) / Math.min(height, width) > 200) {
    throw new OmniError('BAD_INPUT', `smartResize: aspect ratio of ${height}×${width} exceeds 200`);
  }
  let h = Math.max(factor, roundHalfEven(height / factor) * factor);
  let w = Math.max(factor, roundHalfEven(width / factor) * factor);
  if (h * w > maxPixels) {
    const beta = Math.sqrt((height * width) / maxPixels);
    h = Math.max(factor, Math.floor(height / beta / factor) * factor);
    w = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (h * w < minPixels) {
    const beta = Math.sqrt(minPixels / (height * width));
    h = Math.ceil((height * beta) / factor) * factor;
    w = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: h, width: w };
}

/** PIL's fixed-point resampling precision for 8-bit images: 32 − 8 − 2 bits. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

/** Keys' cubic with a = −0.5, PIL's BICUBIC filter (support 2). */
function bicubic(x: number): number {
  const a = -0.5;
  const t = Math.abs(x);
  if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
  return 0;
}

interface AxisKernel {
  /** Kernel width per output index. */
  size: number;
  /** First input index and tap count per output. */
  first: Int32Array;
  count: Int32Array;
  /** Fixed-point taps, [out, size]. */
  taps: Int32Array;
}

/**
 * PIL's resampling kernel along one axis: the filter is stretched by the scale when
 * shrinking (antialiasing), each output's taps are normalised to sum 1 in float64,
 * then rounded to 22-bit fixed point.
 */
function axisKernel(inSize: number, outSize: number): AxisKernel {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const size = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const taps = new Int32Array(outSize * size);
  const weights = new Float64Array(size);
  for (let o = 0; o < outSize; o++) {
    const centre = (o + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      weights[i - lo] = bicubic((i - centre + 0.5) / filterScale);
      sum += weights[i - lo];
    }
    for (let k = 0; k < hi - lo; k++) {
      const w = sum !== 0 ? weights[k] / sum : weights[k];
      taps[o * size + k] = Math.trunc(w < 0 ? w * ONE - 0.5 : w * ONE + 0.5);
    }
    first[o] = lo;
    count[o] = hi - lo;
  }
  return { size, first, count, taps };
}

/** Rounded fixed-point sum → byte, clamped as PIL clamps. */
function toByte(sum: number): number {
  const v = Math.floor(sum / ONE);
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Bicubic resize reproducing PIL `Image.resize(size, BICUBIC)` on an RGB image:
 * a horizontal pass then a vertical one, each in 22-bit fixed point with the
 * intermediate rounded to bytes. An axis whose size does not change is not filtered.
 */
export function resizeBicubic(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(image, 'resizeBicubic');
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE) {
    throw new OmniError('BAD_INPUT', `resizeBicubic: target ${width}×${height}; each side must be an integer in [1, ${MAX_IMAGE_SIDE}]`);
  }
  let current = image;
  if (width !== image.width) {
    const k = axisKernel(image.width, width);
    const out = new Uint8Array(width * image.height * 3);
    for (let y = 0; y < image.height; y++) {
      const row = y * image.width * 3;
      for (let x = 0; x < width; x++) {
        const taps = x * k.size;
        let r = ONE / 2, g = ONE / 2, b = ONE / 2;
        for (let i = 0, at = row + k.first[x] * 3; i < k.count[x]; i++, at += 3) {
          const w = k.taps[taps + i];
          r += image.data[at] * w; g += image.data[at + 1] * w; b += image.data[at + 2] * w;
        }
        const to = (y * width + x) * 3;
        out[to] = toByte(r); out[to + 1] = toByte(g); out[to + 2] = toByte(b);
      }
    }
    current = { width, height: image.height, data: out };
  }
  if (height !== current.height) {
    const k = axisKernel(current.height, height);
    const stride = width * 3;
    const out = new Uint8Array(height * stride);
    for (let y = 0; y < height; y++) {
      const taps = y * k.size;
      for (let x = 0; x < stride; x++) {
        let sum = ONE / 2;
        for (let i = 0, at = k.first[y] * stride + x; i < k.count[y]; i++, at += stride) sum += current.data[at] * k.taps[taps + i];
        out[y * stride + x] = toByte(sum);
      }
    }
    current = { width, height, data: out };
  }
  return current === image ? { width, height, data: image.data.slice() } : current;
}

/**
 * CHW float32 planes: v·(1/255) rounded to float32, then (x − mean) / std in float32,
 * the rounding sequence of the reference's rescale and normalize steps.
 */
export function normalizeImage(image: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  checkRgbImage(image, 'normalizeImage');
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  const m = mean.map(Math.fround), s = std.map(Math.fround);
  const table = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) table[c * 256 + v] = Math.fround(Math.fround(Math.fround(v * (1 / 255)) - m[c]) / s[c]);
  }
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) out[c * plane + p] = table[c * 256 + image.data[p * 3 + c]];
  }
  return out;
}

/**
 * Patchify (§4.1): `frames` are CHW planes of one size, a multiple of temporalPatchSize of them.
 * Rows are ordered (t, h/merge, w/merge, merge row, merge col); each row holds
 * (channel, frame in the temporal patch, patch row, patch col).
 */
export function patchify(frames: readonly Float32Array[], height: number, width: number, config: VisionPreprocessConfig): VisionPatches {
  const { patchSize: p, temporalPatchSize: tp, mergeSize: m } = config;
  const unit = p * m;
  if (height % unit !== 0 || width % unit !== 0) {
    throw new OmniError('BAD_INPUT', `patchify: ${height}×${width} is not a multiple of patchSize·mergeSize = ${unit}`);
  }
  if (frames.length === 0 || frames.length % tp !== 0) {
    throw new OmniError('BAD_INPUT', `patchify: ${frames.length} frames is not a positive multiple of temporalPatchSize ${tp}`);
  }
  const plane = height * width;
  for (const f of frames) {
    if (!(f instanceof Float32Array) || f.length !== 3 * plane) {
      throw new OmniError('BAD_INPUT', `patchify: every frame must be a Float32Array of 3·${height}·${width} values`);
    }
  }
  const gridT = frames.length / tp, gridH = height / p, gridW = width / p;
  const patchDim = 3 * tp * p * p;
  const patches = gridT * gridH * gridW;
  const out = new Float32Array(patches * patchDim);
  let at = 0;
  for (let t = 0; t < gridT; t++) {
    for (let bh = 0; bh < gridH / m; bh++) {
      for (let bw = 0; bw < gridW / m; bw++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const top = (bh * m + mh) * p, left = (bw * m + mw) * p;
            for (let c = 0; c < 3; c++) {
              for (let k = 0; k < tp; k++) {
                const frame = frames[t * tp + k];
                for (let y = 0; y < p; y++) {
                  const from = c * plane + (top + y) * width + left;
                  out.set(frame.subarray(from, from + p), at);
                  at += p;
                }
              }
            }
          }
        }
      }
    }
  }
  return { pixelValues: out, patches, patchDim, gridThw: [gridT, gridH, gridW] };
}

export interface ProcessedImage extends VisionPatches {
  /** Size after smart_resize (pixels). */
  height: number;
  width: number;
}

/**
 * One image → `pixel_values` and `image_grid_thw` (§4.1): smart_resize with the image
 * pixel limits, PIL bicubic resize when the size changes, normalisation, and the
 * image repeated temporalPatchSize times so that grid_t = 1.
 */
export function processImage(image: RgbImage, overrides: Partial<VisionPreprocessConfig> = {}): ProcessedImage {
  checkRgbImage(image, 'processImage');
  const config = imagePreprocessConfig(overrides);
  const size = smartResize(image.height, image.width, {
    factor: config.patchSize * config.mergeSize, minPixels: config.minPixels, maxPixels: config.maxPixels,
  });
  const resized = size.width === image.width && size.height === image.height ? image : resizeBicubic(image, size.width, size.height);
  const planes = normalizeImage(resized, config.imageMean, config.imageStd);
  const frames = new Array<Float32Array>(config.temporalPatchSize).fill(planes);
  return { ...patchify(frames, size.height, size.width, config), height: size.height, width: size.width };
}
