/**
 * Preprocessing settings of Qwen2.5-Omni, as `preprocessor_config.json` holds
 * them (fact sheet §3.1, §4.1, §4.2). Defaults are the values the fact sheet
 * derives for the official checkpoints; `parsePreprocessorConfig` reads a
 * checkpoint's own file and falls back to them field by field.
 */
import { OmniError } from '@omniweb/core';

export interface AudioFeatureConfig {
  /** Input rate of the feature extractor (Hz). */
  sampleRate: number;
  nFft: number;
  hopLength: number;
  melBins: number;
  /** Every clip is zero-padded (and, with `truncate`, cut) to this many samples: 300 s for Omni (§3.1). */
  nSamples: number;
}

export interface VisionPreprocessConfig {
  patchSize: number;
  temporalPatchSize: number;
  /** Spatial merge: smart_resize rounds sides to patchSize·mergeSize (28). */
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
}

export interface VideoPreprocessConfig extends VisionPreprocessConfig {
  /** Sampling rate of frames (§4.2): also sets second_per_grid = temporalPatchSize / fps. */
  fps: number;
  minFrames: number;
  maxFrames: number;
  /** Pixel budget over all sampled frames; the per-frame cap follows from it (§4.2). */
  totalPixels: number;
}

export interface PreprocessorConfig {
  audio: AudioFeatureConfig;
  image: VisionPreprocessConfig;
  video: VideoPreprocessConfig;
}

const CLIP_MEAN: [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD: [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

export const DEFAULT_AUDIO_FEATURES: Readonly<AudioFeatureConfig> = Object.freeze({
  sampleRate: 16000, nFft: 400, hopLength: 160, melBins: 128, nSamples: 4_800_000,
});

export const DEFAULT_IMAGE_PREPROCESS: Readonly<VisionPreprocessConfig> = Object.freeze({
  patchSize: 14, temporalPatchSize: 2, mergeSize: 2,
  minPixels: 4 * 28 * 28, maxPixels: 16384 * 28 * 28,
  imageMean: CLIP_MEAN, imageStd: CLIP_STD,
});

export const DEFAULT_VIDEO_PREPROCESS: Readonly<VideoPreprocessConfig> = Object.freeze({
  ...DEFAULT_IMAGE_PREPROCESS,
  minPixels: 128 * 28 * 28, maxPixels: 768 * 28 * 28,
  fps: 2, minFrames: 4, maxFrames: 768,
  totalPixels: Math.floor(128000 * 28 * 28 * 0.9),
});

function positiveInt(value: unknown, name: string, errorCode: 'BAD_INPUT' | 'BAD_CONFIG' = 'BAD_INPUT'): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new OmniError(errorCode, `${name} must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

function positive(value: unknown, name: string, errorCode: 'BAD_INPUT' | 'BAD_CONFIG' = 'BAD_INPUT'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new OmniError(errorCode, `${name} must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

function triple(value: unknown, name: string, errorCode: 'BAD_INPUT' | 'BAD_CONFIG'): [number, number, number] {
  if (!Array.isArray(value) || value.length !== 3 || !value.every((v) => typeof v === 'number' && Number.isFinite(v))) {
    throw new OmniError(errorCode, `${name} must be three finite numbers (R, G, B), got ${JSON.stringify(value)}`);
  }
  return [value[0], value[1], value[2]];
}

/** Fills and validates audio feature settings (BAD_INPUT names the bad field). */
export function audioFeatureConfig(overrides: Partial<AudioFeatureConfig> = {}, errorCode: 'BAD_INPUT' | 'BAD_CONFIG' = 'BAD_INPUT'): AudioFeatureConfig {
  const c = { ...DEFAULT_AUDIO_FEATURES, ...overrides };
  positiveInt(c.sampleRate, 'sampleRate', errorCode);
  positiveInt(c.melBins, 'melBins', errorCode);
  positiveInt(c.hopLength, 'hopLength', errorCode);
  positiveInt(c.nSamples, 'nSamples', errorCode);
  if (positiveInt(c.nFft, 'nFft', errorCode) % 2 !== 0 || c.nFft < 4) {
    throw new OmniError(errorCode, `nFft must be even and ≥ 4, got ${c.nFft}`);
  }
  // Reflect padding of nFft/2 needs that many samples past the edge; the frame count assumes whole hops.
  if (c.nSamples % c.hopLength !== 0 || c.nSamples <= c.nFft / 2) {
    throw new OmniError(errorCode, `nSamples (${c.nSamples}) must be a multiple of hopLength (${c.hopLength}) and longer than nFft/2`);
  }
  return c;
}

function visionFields<T extends VisionPreprocessConfig>(c: T, errorCode: 'BAD_INPUT' | 'BAD_CONFIG'): T {
  positiveInt(c.patchSize, 'patchSize', errorCode);
  positiveInt(c.temporalPatchSize, 'temporalPatchSize', errorCode);
  positiveInt(c.mergeSize, 'mergeSize', errorCode);
  positiveInt(c.minPixels, 'minPixels', errorCode);
  positiveInt(c.maxPixels, 'maxPixels', errorCode);
  if (c.minPixels > c.maxPixels) {
    throw new OmniError(errorCode, `minPixels (${c.minPixels}) exceeds maxPixels (${c.maxPixels})`);
  }
  triple(c.imageMean, 'imageMean', errorCode);
  if (triple(c.imageStd, 'imageStd', errorCode).some((s) => s <= 0)) {
    throw new OmniError(errorCode, `imageStd must be positive, got ${JSON.stringify(c.imageStd)}`);
  }
  return c;
}

export function imagePreprocessConfig(overrides: Partial<VisionPreprocessConfig> = {}, errorCode: 'BAD_INPUT' | 'BAD_CONFIG' = 'BAD_INPUT'): VisionPreprocessConfig {
  return visionFields({ ...DEFAULT_IMAGE_PREPROCESS, ...overrides }, errorCode);
}

export function videoPreprocessConfig(overrides: Partial<VideoPreprocessConfig> = {}, errorCode: 'BAD_INPUT' | 'BAD_CONFIG' = 'BAD_INPUT'): VideoPreprocessConfig {
  const c = visionFields({ ...DEFAULT_VIDEO_PREPROCESS, ...overrides }, errorCode);
  positive(c.fps, 'fps', errorCode);
  positiveInt(c.minFrames, 'minFrames', errorCode);
  positiveInt(c.maxFrames, 'maxFrames', errorCode);
  positiveInt(c.totalPixels, 'totalPixels', errorCode);
  if (c.minFrames > c.maxFrames) throw new OmniError(errorCode, `minFrames (${c.minFrames}) exceeds maxFrames (${c.maxFrames})`);
  return c;
}

/**
 * Reads `preprocessor_config.json` (parsed JSON). Whisper fields (`feature_size`, `sampling_rate`,
 * `hop_length`, `n_fft`, `n_samples`) and Qwen2-VL image fields (`patch_size`, `temporal_patch_size`,
 * `merge_size`, `min_pixels`, `max_pixels`, `image_mean`, `image_std`) override the defaults; video
 * pixel limits are not in that file and keep the qwen-omni-utils values (§4.2). BAD_CONFIG on bad values.
 */
export function parsePreprocessorConfig(json: unknown): PreprocessorConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new OmniError('BAD_CONFIG', 'preprocessor_config.json must hold a JSON object');
  }
  const j = json as Record<string, unknown>;
  const pick = <T>(key: string): T | undefined => (j[key] === undefined ? undefined : (j[key] as T));
  const defined = <T extends object>(o: T): Partial<T> =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
  const audio = audioFeatureConfig(defined({
    sampleRate: pick<number>('sampling_rate'), nFft: pick<number>('n_fft'), hopLength: pick<number>('hop_length'),
    melBins: pick<number>('feature_size'), nSamples: pick<number>('n_samples'),
  }), 'BAD_CONFIG');
  const vision = defined({
    patchSize: pick<number>('patch_size'), temporalPatchSize: pick<number>('temporal_patch_size'),
    mergeSize: pick<number>('merge_size'), imageMean: pick<[number, number, number]>('image_mean'),
    imageStd: pick<[number, number, number]>('image_std'),
  });
  const image = imagePreprocessConfig({ ...vision, ...defined({ minPixels: pick<number>('min_pixels'), maxPixels: pick<number>('max_pixels') }) }, 'BAD_CONFIG');
  const video = videoPreprocessConfig(vision, 'BAD_CONFIG');
  return { audio, image, video };
}
