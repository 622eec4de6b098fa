/**
 * Video input of Qwen2.5-Omni (fact sheet §4.2): frames sampled at 2 fps,
 * resized with the video pixel budget, normalised like images and paired into
 * temporal patches (2 frames each; an odd count repeats the last frame), giving
 * `pixel_values_videos`, `video_grid_thw` and `second_per_grid_ts`.
 *
 * Two forms: `processVideo` / `videoFromSource` for a clip whose frames are all
 * known (the reference's file path), and `VideoPatchStream` + `FrameRateSampler`
 * for live frames, which emit one temporal patch at a time.
 */
import { OmniError } from '@omniweb/core';
import { checkRgbImage, normalizeImage, patchify, resizeBicubic, smartResize, type RgbImage, type VisionPatches } from './image.js';
import { videoPreprocessConfig, type VideoPreprocessConfig } from './preprocessor.js';

export interface ProcessedVideo extends VisionPatches {
  /** Frame size after smart_resize (pixels). */
  height: number;
  width: number;
  /** Seconds per temporal patch: temporalPatchSize / fps (1.0 at 2 fps), the reference's second_per_grid_ts. */
  secondPerGrid: number;
}

/** A decoded clip: frames addressed by index (an array of frames, a y4m file). */
export interface FrameSource {
  frameCount: number;
  /** Frame rate of the source (frames per second). */
  fps: number;
  frame(index: number): RgbImage;
}

/** Frames of a clip held in memory, at `fps`. */
export function framesSource(frames: readonly RgbImage[], fps: number): FrameSource {
  if (!Array.isArray(frames) || frames.length === 0) throw new OmniError('BAD_INPUT', 'framesSource needs a non-empty array of RGB frames');
  if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0) throw new OmniError('BAD_INPUT', `framesSource: fps must be a positive number, got ${fps}`);
  return {
    frameCount: frames.length,
    fps,
    frame(index) {
      if (!Number.isSafeInteger(index) || index < 0 || index >= frames.length) {
        throw new OmniError('BAD_INPUT', `frame index ${index} is outside 0…${frames.length - 1}`);
      }
      return frames[index];
    },
  };
}

/**
 * Which frames of a clip the reference samples (§4.2, qwen-omni-utils smart_nframes):
 * n = total / videoFps · fps, clamped to [minFrames rounded up to even, min(maxFrames, total)
 * rounded down to even] and to ≤ total, then floored to even; indices round(linspace(0, total − 1, n)).
 * Indices are rounded in exact rational arithmetic, ties to even. With the frame factor 2, n is even, so k·(total − 1)/(n − 1) is never
 * an exact .5 tie; torch computes the linspace in float32, which can only round the other way
 * when its error reaches the distance to .5 (≥ 1/(2(n − 1))) — clips of thousands of frames.
 */
export function sampleFrameIndices(totalFrames: number, videoFps: number, options: Partial<Pick<VideoPreprocessConfig, 'fps' | 'minFrames' | 'maxFrames'>> = {}): number[] {
  if (!Number.isSafeInteger(totalFrames) || totalFrames <= 0) throw new OmniError('BAD_INPUT', `sampleFrameIndices: totalFrames must be a positive integer, got ${totalFrames}`);
  if (typeof videoFps !== 'number' || !Number.isFinite(videoFps) || videoFps <= 0) throw new OmniError('BAD_INPUT', `sampleFrameIndices: videoFps must be a positive number, got ${videoFps}`);
  const config = videoPreprocessConfig(options);
  const factor = config.temporalPatchSize;
  const minFrames = Math.ceil(config.minFrames / factor) * factor;
  const maxFrames = Math.floor(Math.min(config.maxFrames, totalFrames) / factor) * factor;
  let n = (totalFrames / videoFps) * config.fps;
  n = Math.min(Math.min(Math.max(n, minFrames), maxFrames), totalFrames);
  n = Math.floor(n / factor) * factor;
  if (n < factor || n > totalFrames) {
    throw new OmniError('BAD_INPUT', `sampleFrameIndices: a clip of ${totalFrames} frames gives ${n} samples; at least ${factor} frames are needed`);
  }
  const indices: number[] = [];
  const span = totalFrames - 1, steps = n - 1;
  for (let k = 0; k < n; k++) {
    const num = k * span, q = Math.floor(num / steps), twice = 2 * (num - q * steps);
    indices.push(twice < steps ? q : twice > steps ? q + 1 : q + (q % 2));
  }
  return indices;
}

/**
 * Frame size for a clip of `frames` frames (§4.2): smart_resize with the video limits, the
 * per-frame cap being max(min(maxPixels, totalPixels / frames · 2), ⌊minPixels · 1.05⌋).
 * Without `frames` (live video, length unknown) the cap is maxPixels.
 */
export function videoFrameSize(height: number, width: number, config: VideoPreprocessConfig, frames?: number): { height: number; width: number } {
  const budget = frames === undefined ? config.maxPixels : (config.totalPixels / frames) * config.temporalPatchSize;
  const maxPixels = Math.max(Math.min(config.maxPixels, budget), Math.floor(config.minPixels * 1.05));
  return smartResize(height, width, { factor: config.patchSize * config.mergeSize, minPixels: config.minPixels, maxPixels });
}

/** One sampled frame → normalised CHW planes at the clip's size. */
function framePlanes(frame: RgbImage, size: { height: number; width: number }, config: VideoPreprocessConfig): Float32Array {
  const resized = frame.width === size.width && frame.height === size.height ? frame : resizeBicubic(frame, size.width, size.height);
  return normalizeImage(resized, config.imageMean, config.imageStd);
}

function checkFrameSize(frame: RgbImage, first: RgbImage, index: number, where: string): void {
  checkRgbImage(frame, where);
  if (frame.width !== first.width || frame.height !== first.height) {
    throw new OmniError('BAD_INPUT', `${where}: frame ${index} is ${frame.width}×${frame.height}, the clip's first frame is ${first.width}×${first.height}`);
  }
}

/**
 * Already-sampled frames of one clip (all the same size) → `pixel_values_videos`,
 * `video_grid_thw`, `second_per_grid_ts`. Frames are resized (PIL bicubic) when the
 * video limits call for it; an odd count repeats the last frame (§4.2).
 */
export function processVideo(frames: readonly RgbImage[], overrides: Partial<VideoPreprocessConfig> = {}): ProcessedVideo {
  const config = videoPreprocessConfig(overrides);
  if (!Array.isArray(frames) || frames.length === 0) throw new OmniError('BAD_INPUT', 'processVideo needs at least one frame');
  if (frames.length > config.maxFrames) {
    throw new OmniError('BAD_INPUT', `processVideo: ${frames.length} frames exceed maxFrames = ${config.maxFrames}; sample the clip first (sampleFrameIndices)`);
  }
  checkRgbImage(frames[0], 'processVideo');
  frames.forEach((f, i) => checkFrameSize(f, frames[0], i, 'processVideo'));
  const size = videoFrameSize(frames[0].height, frames[0].width, config, frames.length);
  const planes = frames.map((f) => framePlanes(f, size, config));
  while (planes.length % config.temporalPatchSize !== 0) planes.push(planes[planes.length - 1]);
  return { ...patchify(planes, size.height, size.width, config), ...size, secondPerGrid: config.temporalPatchSize / config.fps };
}

export interface SampledVideo extends ProcessedVideo {
  /** Source frame indices used. */
  frameIndices: number[];
  /** Effective sampling rate n / total · videoFps (the reference's sample_fps). */
  sampleFps: number;
}

/** A whole clip from a frame source: sampled at `fps` (§4.2) and processed. Only the sampled frames are read. */
export function videoFromSource(source: FrameSource, overrides: Partial<VideoPreprocessConfig> = {}): SampledVideo {
  if (source === null || typeof source !== 'object' || typeof source.frame !== 'function') {
    throw new OmniError('BAD_INPUT', 'videoFromSource takes a FrameSource { frameCount, fps, frame(i) }');
  }
  const frameIndices = sampleFrameIndices(source.frameCount, source.fps, overrides);
  const frames = frameIndices.map((i) => source.frame(i));
  return {
    ...processVideo(frames, overrides), frameIndices,
    sampleFps: (frameIndices.length / source.frameCount) * source.fps,
  };
}

export interface VideoTemporalPatch extends ProcessedVideo {
  /** Index of this temporal patch in the stream (its time is index · secondPerGrid). */
  index: number;
}

export interface VideoPatchStreamOptions extends Partial<VideoPreprocessConfig> {
  /** Frames the clip will have, when known: sizes frames with the clip's pixel budget as processVideo does. */
  frames?: number;
}

/**
 * Live form of `processVideo`: push sampled frames one at a time; every
 * temporalPatchSize frames it returns one temporal patch ([gh·gw, 1176], grid
 * [1, gh, gw]). The frame size is fixed by the first frame; later frames of another
 * size are refused. Concatenating the patches equals `processVideo` of the same frames.
 */
export class VideoPatchStream {
  readonly config: VideoPreprocessConfig;
  private readonly expectedFrames: number | undefined;
  private first: RgbImage | null = null;
  private size: { height: number; width: number } | null = null;
  private pending: Float32Array[] = [];
  private framesSeen = 0;
  private patchIndex = 0;

  constructor(options: VideoPatchStreamOptions = {}) {
    const { frames, ...overrides } = options;
    this.config = videoPreprocessConfig(overrides);
    if (frames !== undefined && (!Number.isSafeInteger(frames) || frames <= 0)) {
      throw new OmniError('BAD_INPUT', `VideoPatchStream: frames must be a positive integer, got ${frames}`);
    }
    this.expectedFrames = frames;
  }

  /** Size frames are resized to, once the first frame has been seen. */
  get frameSize(): { height: number; width: number } | null {
    return this.size;
  }

  push(frame: RgbImage): VideoTemporalPatch | null {
    checkRgbImage(frame, 'VideoPatchStream.push');
    if (!this.first || !this.size) {
      this.first = frame;
      this.size = videoFrameSize(frame.height, frame.width, this.config, this.expectedFrames);
    }
    checkFrameSize(frame, this.first, this.framesSeen, 'VideoPatchStream.push');
    this.framesSeen++;
    this.pending.push(framePlanes(frame, this.size, this.config));
    return this.pending.length === this.config.temporalPatchSize ? this.emit() : null;
  }

  /** Ends the clip: an incomplete patch is completed by repeating its last frame (§4.2). */
  finish(): VideoTemporalPatch | null {
    if (this.pending.length === 0) return null;
    while (this.pending.length < this.config.temporalPatchSize) this.pending.push(this.pending[this.pending.length - 1]);
    return this.emit();
  }

  private emit(): VideoTemporalPatch {
    const size = this.size!;
    const patches = patchify(this.pending, size.height, size.width, this.config);
    this.pending = [];
    return { ...patches, ...size, secondPerGrid: this.config.temporalPatchSize / this.config.fps, index: this.patchIndex++ };
  }
}

/**
 * Picks live frames at `fps` from their timestamps: the first frame, then the first frame
 * at or after each tick t₀ + k / fps (within `toleranceSeconds`, so a camera at exactly
 * the target rate with jitter is not halved). Ticks stay on the t₀ grid, so the rate
 * does not drift; ticks with no frame are skipped.
 */
export class FrameRateSampler {
  readonly fps: number;
  readonly toleranceSeconds: number;
  private origin = NaN;
  private nextTick = 0;
  private last = -Infinity;

  constructor(fps = 2, toleranceSeconds = 0.01) {
    if (typeof fps !== 'number' || !Number.isFinite(fps) || fps <= 0) throw new OmniError('BAD_INPUT', `FrameRateSampler: fps must be a positive number, got ${fps}`);
    if (typeof toleranceSeconds !== 'number' || !(toleranceSeconds >= 0) || toleranceSeconds >= 0.5 / fps) {
      throw new OmniError('BAD_INPUT', `FrameRateSampler: toleranceSeconds must be in [0, ${0.5 / fps}), got ${toleranceSeconds}`);
    }
    this.fps = fps;
    this.toleranceSeconds = toleranceSeconds;
  }

  /** Whether to keep the frame shown at `timestampSeconds`. Timestamps must not go backwards. */
  accept(timestampSeconds: number): boolean {
    if (typeof timestampSeconds !== 'number' || !Number.isFinite(timestampSeconds)) {
      throw new OmniError('BAD_INPUT', `FrameRateSampler: timestamp must be a finite number of seconds, got ${timestampSeconds}`);
    }
    if (timestampSeconds < this.last) {
      throw new OmniError('BAD_INPUT', `FrameRateSampler: timestamp ${timestampSeconds} s comes before the previous one (${this.last} s)`);
    }
    this.last = timestampSeconds;
    if (Number.isNaN(this.origin)) {
      this.origin = timestampSeconds;
      this.nextTick = 1;
      return true;
    }
    const ticks = (timestampSeconds - this.origin + this.toleranceSeconds) * this.fps;
    if (ticks < this.nextTick) return false;
    this.nextTick = Math.floor(ticks) + 1;
    return true;
  }
}

export interface TimedFrame {
  image: RgbImage;
  timestampSeconds: number;
}

/**
 * The live video path: frames with timestamps (a camera, a decoder) → sampled at
 * `fps` → one temporal patch per `temporalPatchSize` kept frames; an incomplete last
 * patch is padded when the frames end.
 */
export async function* liveVideoPatches(frames: AsyncIterable<TimedFrame> | Iterable<TimedFrame>, options: VideoPatchStreamOptions = {}): AsyncGenerator<VideoTemporalPatch> {
  const stream = new VideoPatchStream(options);
  const sampler = new FrameRateSampler(stream.config.fps);
  for await (const frame of frames) {
    if (!sampler.accept(frame.timestampSeconds)) continue;
    const patch = stream.push(frame.image);
    if (patch) yield patch;
  }
  const last = stream.finish();
  if (last) yield last;
}
