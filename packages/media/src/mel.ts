/**
 * Whisper log-mel features as the Omni processor computes them (fact sheet §3.1):
 * periodic Hann window, centred STFT with reflect padding, |X|², Slaney mel
 * filters, log10 floored at 1e-10, clamp to (clip max − 8), then (x + 4) / 4.
 *
 * Layout: features are time-major, `[frames, melBins]` — the audio encoder's
 * conv1d input layout (core Backend conventions); the reference's
 * `input_features[0]` is the transpose.
 *
 * The STFT and filters run in float64 (host glue, not a model op); the log and
 * the clamp/normalise steps are rounded to float32 as the reference's torch
 * path does them, so a streamed block and the whole-signal result round alike.
 */
import { OmniError } from '@omniweb/core';
import { RealFft } from './fft.js';
import { audioFeatureConfig, type AudioFeatureConfig } from './preprocessor.js';

const MEL_FLOOR = 1e-10;
/** The clamp keeps values within 8 (log10 units, 80 dB) of the clip's max (§3.1). */
const CLAMP_RANGE = 8;

/** Slaney mel scale: linear below 1 kHz, logarithmic above (librosa's default, §3.1). */
const SLANEY_MIN_LOG_HZ = 1000;
const SLANEY_MIN_LOG_MEL = 15;
const SLANEY_LOG_STEP = Math.log(6.4) / 27;

function hzToMel(hz: number): number {
  return hz < SLANEY_MIN_LOG_HZ ? (3 * hz) / 200 : SLANEY_MIN_LOG_MEL + Math.log(hz / SLANEY_MIN_LOG_HZ) / SLANEY_LOG_STEP;
}

function melToHz(mel: number): number {
  return mel < SLANEY_MIN_LOG_MEL ? (200 * mel) / 3 : SLANEY_MIN_LOG_HZ * Math.exp((mel - SLANEY_MIN_LOG_MEL) * SLANEY_LOG_STEP);
}

/** Triangular filters with Slaney area normalisation, stored as one run of non-zero weights per filter. */
interface MelFilters {
  start: Int32Array;
  weights: Float64Array[];
}

function slaneyFilters(config: AudioFeatureConfig): MelFilters {
  const bins = config.nFft / 2 + 1;
  const nyquist = config.sampleRate / 2;
  const melMax = hzToMel(nyquist);
  const edges = new Float64Array(config.melBins + 2);
  for (let i = 0; i < edges.length; i++) edges[i] = melToHz((melMax * i) / (config.melBins + 1));
  const start = new Int32Array(config.melBins);
  const weights: Float64Array[] = [];
  for (let m = 0; m < config.melBins; m++) {
    const lower = edges[m], centre = edges[m + 1], upper = edges[m + 2];
    const area = 2 / (upper - lower);
    const row: number[] = [];
    let first = -1;
    for (let k = 0; k < bins; k++) {
      const hz = (k * config.sampleRate) / config.nFft;
      const w = Math.max(0, Math.min((hz - lower) / (centre - lower), (upper - hz) / (upper - centre)));
      if (w > 0) {
        if (first < 0) first = k;
        row.length = k - first;
        row.push(w * area);
      }
    }
    start[m] = Math.max(first, 0);
    weights.push(Float64Array.from(row));
  }
  return { start, weights };
}

/** One STFT frame → raw float32 log10 mel values. Buffers are allocated once. */
class MelFrameEngine {
  readonly config: AudioFeatureConfig;
  private readonly fft: RealFft;
  private readonly window: Float64Array;
  private readonly filters: MelFilters;
  private readonly windowed: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;
  private readonly power: Float64Array;

  constructor(config: AudioFeatureConfig) {
    this.config = config;
    this.fft = new RealFft(config.nFft);
    // Periodic Hann (torch.hann_window default), §3.1.
    this.window = new Float64Array(config.nFft);
    for (let n = 0; n < config.nFft; n++) this.window[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / config.nFft);
    this.filters = slaneyFilters(config);
    this.windowed = new Float64Array(config.nFft);
    this.re = new Float64Array(this.fft.bins);
    this.im = new Float64Array(this.fft.bins);
    this.power = new Float64Array(this.fft.bins);
  }

  /** `frame` holds nFft samples; writes melBins raw values at out[offset…] and returns their max. */
  rawFrame(frame: Float64Array, out: Float32Array, offset: number): number {
    const n = this.config.nFft;
    for (let i = 0; i < n; i++) this.windowed[i] = frame[i] * this.window[i];
    this.fft.forward(this.windowed, this.re, this.im);
    for (let k = 0; k < this.fft.bins; k++) this.power[k] = this.re[k] * this.re[k] + this.im[k] * this.im[k];
    let max = -Infinity;
    const { start, weights } = this.filters;
    for (let m = 0; m < this.config.melBins; m++) {
      const w = weights[m];
      let sum = 0;
      for (let j = 0, k = start[m]; j < w.length; j++, k++) sum += w[j] * this.power[k];
      const value = Math.fround(Math.log10(Math.max(sum, MEL_FLOOR)));
      out[offset + m] = value;
      if (value > max) max = value;
    }
    return max;
  }
}

/** raw → (max(raw, clampMax − 8) + 4) / 4 with float32 rounding at each step, as the reference does. */
function normalise(raw: Float32Array, out: Float32Array, count: number, clampMax: number): void {
  const floor = Math.fround(clampMax - CLAMP_RANGE);
  for (let i = 0; i < count; i++) out[i] = Math.fround(Math.max(raw[i], floor) + 4) / 4;
}

/**
 * Raises already-normalised features to the clamp of a larger clip max, in place.
 * A block emitted with clamp reference m₁ and re-clamped to m₂ ≥ m₁ equals the block
 * computed with m₂ from the start, bit for bit (rounding is monotonic).
 */
export function reclampMel(features: Float32Array, clampMax: number): void {
  if (!(features instanceof Float32Array)) throw new OmniError('BAD_INPUT', 'reclampMel takes the Float32Array of a mel block');
  if (!Number.isFinite(clampMax)) throw new OmniError('BAD_INPUT', `reclampMel: clampMax must be finite, got ${clampMax}`);
  const floor = Math.fround(Math.fround(clampMax - CLAMP_RANGE) + 4) / 4;
  for (let i = 0; i < features.length; i++) if (features[i] < floor) features[i] = floor;
}

function checkSamples(samples: unknown, where: string): asserts samples is Float32Array {
  if (!(samples instanceof Float32Array)) {
    throw new OmniError('BAD_INPUT', `${where} takes mono float samples as a Float32Array, got ${Object.prototype.toString.call(samples)}`);
  }
  for (let i = 0; i < samples.length; i++) {
    if (!Number.isFinite(samples[i])) throw new OmniError('NUMERIC', `${where}: sample ${i} is ${samples[i]}`);
  }
}

export interface LogMelOptions {
  /** Feature settings; default the Omni preprocessor's (16 kHz, n_fft 400, hop 160, 128 bins, 300 s). */
  config?: Partial<AudioFeatureConfig>;
  /** Return all nSamples/hop frames, as the reference pads (default: only the valid frames). */
  pad?: boolean;
  /** Cut audio longer than nSamples, as the reference processor does (default: BAD_INPUT). */
  truncate?: boolean;
}

export interface LogMel {
  /** [frames, melBins], time-major. */
  features: Float32Array;
  frames: number;
  melBins: number;
  /** ⌈L / hop⌉: the frames `feature_attention_mask` marks valid; they come first. */
  validFrames: number;
  /** The clamp reference: max raw log10 mel over the whole padded clip. */
  clampMax: number;
}

/**
 * Log-mel of one clip at the feature rate (16 kHz), equal to the reference's
 * `input_features` (valid frames, or all of them with `pad`) — see §3.1.
 * Only frames that can see signal are transformed: past ⌈(L + nFft/2) / hop⌉
 * every frame is silent and takes the clamp floor.
 */
export function logMel(samples: Float32Array, options: LogMelOptions = {}): LogMel {
  const config = audioFeatureConfig(options.config);
  checkSamples(samples, 'logMel');
  if (samples.length === 0) throw new OmniError('BAD_INPUT', 'logMel: the audio is empty (0 samples)');
  if (samples.length > config.nSamples && !options.truncate) {
    throw new OmniError('BAD_INPUT',
      `logMel: ${samples.length} samples (${(samples.length / config.sampleRate).toFixed(1)} s) exceed the clip limit of ${config.nSamples} ` +
      `(${config.nSamples / config.sampleRate} s); split the audio into clips, or pass truncate: true to cut it as the reference processor does`);
  }
  const length = Math.min(samples.length, config.nSamples);
  const { nFft, hopLength, melBins } = config;
  const half = nFft / 2;
  const paddedLength = config.nSamples;
  // Centred STFT over the padded clip gives paddedLength/hop + 1 frames; the reference drops the last (§3.1).
  const totalFrames = paddedLength / hopLength;
  const validFrames = Math.ceil(length / hopLength);
  const signalFrames = Math.min(totalFrames, Math.ceil((length + half) / hopLength));
  const frames = options.pad ? totalFrames : validFrames;

  const engine = new MelFrameEngine(config);
  const raw = new Float32Array(frames * melBins);
  const tail = new Float32Array(melBins);
  const frame = new Float64Array(nFft);
  let clampMax = -Infinity;
  for (let i = 0; i < signalFrames; i++) {
    const first = i * hopLength - half;
    if (first >= 0 && first + nFft <= length) {
      for (let t = 0; t < nFft; t++) frame[t] = samples[first + t];
    } else {
      for (let t = 0; t < nFft; t++) {
        // Reflect at both ends of the zero-padded clip (torch.stft center=True, pad_mode='reflect').
        let j = first + t;
        if (j < 0) j = -j;
        else if (j >= paddedLength) j = 2 * (paddedLength - 1) - j;
        frame[t] = j < length ? samples[j] : 0;
      }
    }
    const max = i < frames ? engine.rawFrame(frame, raw, i * melBins) : engine.rawFrame(frame, tail, 0);
    if (max > clampMax) clampMax = max;
  }
  // Frames past signalFrames see only zeros: raw = log10(floor), never above the max of a computed frame.
  raw.fill(Math.fround(Math.log10(MEL_FLOOR)), signalFrames * melBins);
  normalise(raw, raw, raw.length, clampMax);
  return { features: raw, frames, melBins, validFrames, clampMax };
}

export interface MelStreamOptions {
  config?: Partial<AudioFeatureConfig>;
  /** Frames per block: the audio encoder's chunk, 2·n_window of its config (200 = 2 s), §3.2. */
  blockFrames?: number;
  /**
   * Clamp reference to start from (raw log10 units), e.g. `clampMax` of a previous turn
   * or of a file's whole-signal pass. Default −∞: the running max of the stream alone.
   */
  initialMax?: number;
}

export interface MelBlock {
  /** [frames, melBins], time-major. */
  features: Float32Array;
  frames: number;
  /** Index of the block's first frame in the stream. */
  firstFrame: number;
  /** The clamp reference this block was normalised with (raw log10 units). */
  clampMax: number;
}

/**
 * Whisper log-mel of live PCM (feature rate), fed in chunks of any size and emitted
 * in blocks of `blockFrames` frames as soon as each block's last frame has its
 * right context (nFft/2 samples).
 *
 * What streaming reproduces, and what it cannot:
 * - Every frame's raw log10 mel is bit-identical to `logMel` of the whole signal:
 *   the STFT is local (nFft samples), the left edge is reflected as in the reference,
 *   and `finish()` zero-pads the right edge as the padded clip does.
 * - The clamp `max(x, clipMax − 8)` needs the max of the *whole* clip (§3.1), which
 *   is unknown while audio is still arriving. A block emitted by `push` is clamped
 *   with the running max over blocks 0…k (and `initialMax`); blocks emitted by
 *   `finish()` use the final clip max, which includes the silent-padded tail frames
 *   exactly as the reference does. Hence:
 *   · every block emitted once the loudest frame has been seen is identical to the
 *     whole-signal features;
 *   · an earlier block differs only in entries more than 8 below the final max (80 dB
 *     under the loudest frame): there the stream keeps a lower value, and
 *     `reclampMel(block.features, stream.clampMax)` turns it into the whole-signal
 *     value exactly, if the block is still held;
 *   · with `initialMax` ≥ every frame of the clip, blocks equal the whole-signal
 *     features of a clip whose max is `initialMax`.
 * - The reference cuts a clip at nSamples (300 s) and reflects at that end; the
 *   stream has no end until `finish()`, so it equals `logMel` for streams of at most
 *   nSamples − nFft/2 samples and keeps going (with a running clamp) past that.
 * Memory is bounded: one block, and about nFft samples plus the largest chunk pushed.
 */
export class MelStream {
  readonly config: AudioFeatureConfig;
  readonly blockFrames: number;
  private readonly initialMax: number;
  private readonly engine: MelFrameEngine;
  private readonly frame: Float64Array;
  private readonly blockRaw: Float32Array;
  private blockCount = 0;
  private blockFirst = 0;
  private nextFrame = 0;
  private runMax: number;
  /** Samples from absolute index `bufferStart`, `bufferLength` of them valid. */
  private buffer: Float32Array;
  private bufferStart = 0;
  private bufferLength = 0;
  private finished = false;

  constructor(options: MelStreamOptions = {}) {
    this.config = audioFeatureConfig(options.config);
    const blockFrames = options.blockFrames ?? 200;
    if (!Number.isSafeInteger(blockFrames) || blockFrames <= 0 || blockFrames > 1_000_000) {
      throw new OmniError('BAD_INPUT', `MelStream: blockFrames must be an integer in [1, 1000000], got ${blockFrames}`);
    }
    const initialMax = options.initialMax ?? -Infinity;
    if (Number.isNaN(initialMax) || initialMax === Infinity) {
      throw new OmniError('BAD_INPUT', `MelStream: initialMax must be finite or −Infinity, got ${initialMax}`);
    }
    this.blockFrames = blockFrames;
    this.initialMax = initialMax;
    this.runMax = initialMax;
    this.engine = new MelFrameEngine(this.config);
    this.frame = new Float64Array(this.config.nFft);
    this.blockRaw = new Float32Array(blockFrames * this.config.melBins);
    this.buffer = new Float32Array(4 * this.config.nFft);
  }

  /** Samples pushed so far. */
  get samplesReceived(): number {
    return this.bufferStart + this.bufferLength;
  }

  /** Current clamp reference (raw log10 units); after `finish()`, the clip's max. */
  get clampMax(): number {
    return this.runMax;
  }

  /** Appends PCM at the feature rate; returns the blocks it completes (often none). */
  push(chunk: Float32Array): MelBlock[] {
    if (this.finished) throw new OmniError('BAD_INPUT', 'MelStream.push after finish(); call reset() to start a new clip');
    checkSamples(chunk, 'MelStream.push');
    this.append(chunk);
    const blocks: MelBlock[] = [];
    const { hopLength } = this.config;
    const half = this.config.nFft / 2;
    const received = this.samplesReceived;
    // Frame i reads samples i·hop − half … i·hop + half − 1 (and, reflected, up to index half).
    while (Math.max(this.nextFrame * hopLength + half - 1, half - this.nextFrame * hopLength) < received) {
      this.fillFrame(this.nextFrame, received);
      const max = this.engine.rawFrame(this.frame, this.blockRaw, this.blockCount * this.config.melBins);
      if (max > this.runMax) this.runMax = max;
      this.nextFrame++;
      if (++this.blockCount === this.blockFrames) blocks.push(this.emit());
    }
    this.discardBefore(this.nextFrame * hopLength - half);
    return blocks;
  }

  /**
   * Ends the clip: the remaining valid frames (⌈L / hop⌉ in all) are computed with zero
   * padding, the tail frames that still see signal enter the max, and the rest is emitted.
   */
  finish(): MelBlock[] {
    if (this.finished) throw new OmniError('BAD_INPUT', 'MelStream.finish called twice; call reset() to start a new clip');
    this.finished = true;
    const length = this.samplesReceived;
    const { hopLength, melBins } = this.config;
    const half = this.config.nFft / 2;
    const validFrames = Math.ceil(length / hopLength);
    const signalFrames = Math.ceil((length + half) / hopLength);
    // Raw frames first, so that blocks finished here are clamped with the whole clip's max.
    const pending: Float32Array[] = [];
    while (this.nextFrame < signalFrames) {
      const raw = new Float32Array(melBins);
      this.fillFrame(this.nextFrame, length);
      const max = this.engine.rawFrame(this.frame, raw, 0);
      if (max > this.runMax) this.runMax = max;
      if (this.nextFrame < validFrames) pending.push(raw);
      this.nextFrame++;
    }
    const blocks: MelBlock[] = [];
    for (const raw of pending) {
      this.blockRaw.set(raw, this.blockCount * melBins);
      if (++this.blockCount === this.blockFrames) blocks.push(this.emit());
    }
    if (this.blockCount > 0) blocks.push(this.emit());
    return blocks;
  }

  /** Forgets everything: the next push starts a new clip (clamp reference back to `initialMax`). */
  reset(): void {
    this.blockCount = 0;
    this.blockFirst = 0;
    this.nextFrame = 0;
    this.runMax = this.initialMax;
    this.bufferStart = 0;
    this.bufferLength = 0;
    this.finished = false;
  }

  /** Samples of frame i; indices ≥ `length` are the clip's zero padding. */
  private fillFrame(i: number, length: number): void {
    const { nFft, hopLength } = this.config;
    const first = i * hopLength - nFft / 2;
    for (let t = 0; t < nFft; t++) {
      const j = Math.abs(first + t);
      this.frame[t] = j < length ? this.buffer[j - this.bufferStart] : 0;
    }
  }

  private emit(): MelBlock {
    const frames = this.blockCount;
    const features = new Float32Array(frames * this.config.melBins);
    normalise(this.blockRaw, features, features.length, this.runMax);
    const block = { features, frames, firstFrame: this.blockFirst, clampMax: this.runMax };
    this.blockFirst += frames;
    this.blockCount = 0;
    return block;
  }

  private append(chunk: Float32Array): void {
    const needed = this.bufferLength + chunk.length;
    if (needed > this.buffer.length) {
      const grown = new Float32Array(Math.max(needed, 2 * this.buffer.length));
      grown.set(this.buffer.subarray(0, this.bufferLength));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.bufferLength);
    this.bufferLength = needed;
  }

  /** Drops samples before absolute index `keepFrom` (never those a reflected frame still reads). */
  private discardBefore(keepFrom: number): void {
    const drop = Math.min(Math.max(0, keepFrom - this.bufferStart), this.bufferLength);
    if (drop === 0) return;
    this.buffer.copyWithin(0, drop, this.bufferLength);
    this.bufferStart += drop;
    this.bufferLength -= drop;
  }
}
