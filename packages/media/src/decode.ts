/**
 * PNG / JPEG → 8-bit RGB. Node decodes with pngjs / jpeg-js (loaded on demand);
 * a browser decodes with createImageBitmap and reads pixels back through an
 * OffscreenCanvas. Dimensions are read from the file header first, so an absurd
 * size is refused before any pixel memory is allocated.
 *
 * Alpha follows the reference (fact sheet §4.1, qwen-omni-utils `to_rgb`): an RGBA
 * image is composited on white; other modes drop alpha, as PIL's convert("RGB") does.
 */
import { OmniError } from '@omniweb/core';
import { MAX_IMAGE_SIDE, type RgbImage } from './image.js';

export interface ImageDecodeOptions {
  /** Largest width·height accepted (default 100 M pixels). */
  maxPixels?: number;
}

export type ImageFormat = 'png' | 'jpeg';

interface ImageHeader {
  format: ImageFormat;
  width: number;
  height: number;
  /** PNG colour type 6: RGBA, the only mode the reference composites on white. */
  rgba: boolean;
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_COLOR_RGBA = 6;

/** JPEG start-of-frame markers (baseline, progressive, lossless…); C4, C8, CC share the range but are not frames. */
function isStartOfFrame(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

/** Format and size from the first bytes (PNG IHDR, JPEG SOFn). BAD_INPUT when neither. */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length >= 26 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    return { format: 'png', width: view.getUint32(16), height: view.getUint32(20), rgba: bytes[25] === PNG_COLOR_RGBA };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let at = 2; at + 4 <= bytes.length;) {
      if (bytes[at] !== 0xff) break;
      const marker = bytes[at + 1];
      if (marker === 0xff) { at++; continue; }
      const length = view.getUint16(at + 2);
      if (isStartOfFrame(marker)) {
        if (at + 9 > bytes.length) break;
        return { format: 'jpeg', width: view.getUint16(at + 7), height: view.getUint16(at + 5), rgba: false };
      }
      if (marker === 0xda) break;
      at += 2 + length;
    }
    throw new OmniError('BAD_INPUT', 'decodeImage: JPEG without a frame header before its scan data');
  }
  throw new OmniError('BAD_INPUT', 'decodeImage: not a PNG or JPEG file (unknown signature)');
}

function checkHeader(header: ImageHeader, options: ImageDecodeOptions): void {
  const maxPixels = options.maxPixels ?? 100_000_000;
  if (typeof maxPixels !== 'number' || !(maxPixels > 0)) throw new OmniError('BAD_INPUT', `decodeImage: maxPixels must be positive, got ${maxPixels}`);
  const { width, height } = header;
  if (width === 0 || height === 0) throw new OmniError('BAD_INPUT', `decodeImage: the ${header.format} header gives a ${width}×${height} image`);
  if (width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE || width * height > maxPixels) {
    throw new OmniError('BAD_INPUT', `decodeImage: ${width}×${height} ${header.format} exceeds the limits (sides ≤ ${MAX_IMAGE_SIDE}, ≤ ${maxPixels} pixels)`);
  }
}

/**
 * RGBA → RGB. With `compositeOnWhite`, PIL's paste-with-mask onto white:
 * round((255·(255 − a) + c·a) / 255) in PIL's integer form; otherwise alpha is dropped.
 */
export function rgbaToRgb(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, compositeOnWhite: boolean): RgbImage {
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width <= 0 || height <= 0 || rgba.length !== width * height * 4) {
    throw new OmniError('BAD_INPUT', `rgbaToRgb: ${rgba.length} bytes do not hold a ${width}×${height} RGBA image`);
  }
  const out = new Uint8Array(width * height * 3);
  for (let p = 0, i = 0, o = 0; p < width * height; p++, i += 4, o += 3) {
    const a = rgba[i + 3];
    for (let c = 0; c < 3; c++) {
      if (!compositeOnWhite || a === 255) { out[o + c] = rgba[i + c]; continue; }
      const t = 255 * (255 - a) + rgba[i + c] * a + 128;
      out[o + c] = (t + (t >> 8)) >> 8;
    }
  }
  return { width, height, data: out };
}

function asBytes(input: Uint8Array | ArrayBuffer): Uint8Array {
  if (input instanceof ArrayBuffer) return new Uint8Array(input);
  if (input instanceof Uint8Array) return input;
  throw new OmniError('BAD_INPUT', 'decodeImage takes the file bytes (Uint8Array, ArrayBuffer or Blob)');
}

/** Node decoding with pngjs / jpeg-js. */
export async function decodeImageNode(input: Uint8Array | ArrayBuffer, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  const bytes = asBytes(input);
  const header = readImageHeader(bytes);
  checkHeader(header, options);
  try {
    if (header.format === 'png') {
      const { PNG } = await import('pngjs');
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return rgbaToRgb(png.data, png.width, png.height, header.rgba);
    }
    const jpeg = await import('jpeg-js');
    const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxResolutionInMP: (options.maxPixels ?? 100_000_000) / 1e6 });
    return { width: decoded.width, height: decoded.height, data: decoded.data };
  } catch (cause) {
    throw new OmniError('BAD_INPUT', `decodeImage: the ${header.format} data is corrupt (${(cause as Error).message})`, { cause });
  }
}

/** Browser decoding: createImageBitmap without colour conversion or premultiplication, read back via OffscreenCanvas. */
export async function decodeImageBrowser(input: Uint8Array | ArrayBuffer | Blob, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  const bytes = input instanceof Blob ? new Uint8Array(await input.arrayBuffer()) : asBytes(input);
  const header = readImageHeader(bytes);
  checkHeader(header, options);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]), { premultiplyAlpha: 'none', colorSpaceConversion: 'none' });
  } catch (cause) {
    throw new OmniError('BAD_INPUT', `decodeImage: the browser could not decode the ${header.format} data`, { cause });
  }
  try {
    return canvasPixels(bitmap, bitmap.width, bitmap.height, header.rgba);
  } finally {
    bitmap.close();
  }
}

/** Draws any canvas source at its size and reads it back as RGB (shared with the camera path). */
export function canvasPixels(source: CanvasImageSource, width: number, height: number, compositeOnWhite: boolean): RgbImage {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new OmniError('INTERNAL', 'OffscreenCanvas has no 2d context');
  context.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(context.getImageData(0, 0, width, height).data, width, height, compositeOnWhite);
}

/** PNG or JPEG bytes → RGB: the browser decoder where there is one, pngjs / jpeg-js in Node. */
export function decodeImage(input: Uint8Array | ArrayBuffer | Blob, options: ImageDecodeOptions = {}): Promise<RgbImage> {
  if (typeof createImageBitmap === 'function' && typeof OffscreenCanvas === 'function') return decodeImageBrowser(input, options);
  if (typeof Blob !== 'undefined' && input instanceof Blob) {
    return input.arrayBuffer().then((buffer) => decodeImageNode(buffer, options));
  }
  return decodeImageNode(input as Uint8Array | ArrayBuffer, options);
}
