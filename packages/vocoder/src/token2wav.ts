/**
 * Token2Wav (fact sheet §8): codec codes and a voice → 24 kHz speech. The DiT integrates the
 * codes into a log-mel (§8.2–8.3), BigVGAN turns the mel into samples (§8.4–8.5). `synthesize`
 * decodes a whole utterance; `stream` decodes while codes arrive, with the reference's windows
 * (§8.6), and yields each piece of PCM as soon as no later code can change it.
 */
import {
  OmniError,
  type Backend, type BigVganConfig, type DitConfig, type HostArray, type Tensor, type WeightFormat,
} from '@omniweb/core';
import { BigVgan } from './bigvgan.js';
import { Dit, type DitCondition, type DitRun, type SampleOptions } from './dit.js';
import type { WeightSource } from './weights.js';

/** Output rate: 100 mel frames/s times BigVGAN's hop of 240 (§1, §8.4). */
export const SAMPLE_RATE = 24000;

/** A voice from the speaker dictionary (`spk_dict.pt`; core's `Speaker` fits): cond [enc_emb_dim] or [1, enc_emb_dim], ref mel [T_ref, mel] or [1, T_ref, mel]. */
export interface Voice {
  cond: HostArray;
  refMel: HostArray;
}

/** The DiT's sampling options (solver, steps, guidance, sway) hold for every window `stream` decodes. */
export interface SynthesisOptions extends SampleOptions {
  /**
   * The ODE's initial noise, row-major [frames, mel], frames ≥ 2 per code (the reference draws
   * N(0, 1); `stream` slices its windows from this one tensor, §8.6). Default: drawn from `seed`.
   */
  noise?: Float32Array;
  /** Seed of the N(0, 1) noise when `noise` is not given (default 0). */
  seed?: number;
}

/** The noise seed of `SynthesisOptions` (default 0); BAD_INPUT when it is not an integer. */
export function synthesisSeed(options: Pick<SynthesisOptions, 'seed'>): number {
  const seed = options.seed ?? 0;
  if (!Number.isSafeInteger(seed)) throw new OmniError('BAD_INPUT', `seed must be an integer, got ${String(seed)}`);
  return seed;
}

/** What `stream` reads: batches of codes (or single codes) as the talker emits them. */
export type CodeSource = AsyncIterable<ArrayLike<number> | number> | Iterable<ArrayLike<number> | number>;

export interface Token2WavLoadOptions {
  /** Matrix weights' precision (default f32, as the reference runs token2wav). */
  format?: WeightFormat;
}

/**
 * The reference streamer's windows for the 50 Hz codec (§8.6), in mel frames: each chunk of 72
 * is decoded with 48 frames of past and 24 of future context (DiT blocks of 24: 2 back, 1 ahead),
 * and BigVGAN re-reads the last 40 frames of the previous chunk, trimming 20 frames' worth of
 * samples at every seam.
 */
interface StreamWindows {
  chunk: number;
  past: number;
  future: number;
  /** Mel frames BigVGAN overlaps; half of it is trimmed from the samples on each side of a seam. */
  overlap: number;
}

export class Token2Wav {
  private constructor(readonly dit: Dit, readonly bigvgan: BigVgan) {}

  /** Loads the DiT (with its speaker encoder) and BigVGAN from a checkpoint; `config` is `parseOmniConfig(...).token2wav`. */
  static async load(
    backend: Backend, source: WeightSource, config: { dit: DitConfig; bigvgan: BigVganConfig }, options: Token2WavLoadOptions = {},
  ): Promise<Token2Wav> {
    if (!config?.dit || !config.bigvgan) throw new OmniError('BAD_INPUT', 'Token2Wav.load needs the typed token2wav config (parseOmniConfig(...).token2wav)');
    if (config.dit.melDim !== config.bigvgan.melDim) {
      throw new OmniError('BAD_CONFIG', `the DiT makes ${config.dit.melDim}-bin mels but BigVGAN reads ${config.bigvgan.melDim} bins`);
    }
    const dit = await Dit.load(backend, source, config.dit, options);
    try {
      return new Token2Wav(dit, await BigVgan.load(backend, source, config.bigvgan, options));
    } catch (e) {
      dit.dispose();
      throw e;
    }
  }

  get backend(): Backend {
    return this.dit.backend;
  }

  /** PCM samples per codec code (mel frames per code × hop: 480 for the 50 Hz codec). */
  get samplesPerCode(): number {
    return this.dit.repeats * this.bigvgan.hop;
  }

  /** The log-mel of the codes, time-major [2·N, mel] row-major (the DiT's ODE, §8.3). */
  async mel(codes: ArrayLike<number>, voice: Voice, options: SynthesisOptions = {}): Promise<Float32Array> {
    const ids = this.#codes(codes);
    const condition = this.#condition(voice);
    try {
      const { run } = await this.#sample(condition, ids, new NoiseRows(this.dit.config.melDim, options), 0, options);
      try {
        return (await this.backend.read(run.y)) as Float32Array;
      } finally {
        run.dispose();
      }
    } finally {
      condition.dispose();
    }
  }

  /** The whole utterance at once: N codes → N · samplesPerCode samples at 24 kHz in [−1, 1]. */
  async synthesize(codes: ArrayLike<number>, voice: Voice, options: SynthesisOptions = {}): Promise<Float32Array> {
    const ids = this.#codes(codes);
    const condition = this.#condition(voice);
    try {
      return await this.#decodeAll(condition, ids, new NoiseRows(this.dit.config.melDim, options), options);
    } finally {
      condition.dispose();
    }
  }

  /**
   * Decodes codes as they arrive (§8.6): once 2·N − 24 mel frames reach past a chunk of 72, that
   * chunk is decoded in a window with 48 frames of past and 24 of future context, and its
   * samples are yielded as soon as they are final. When the source ends, the rest follows; a
   * source that ends before the first chunk is due is decoded whole. The chunks concatenate
   * to N · samplesPerCode samples.
   */
  async *stream(source: CodeSource, voice: Voice, options: SynthesisOptions = {}): AsyncGenerator<Float32Array, void, undefined> {
    if (source === null || typeof source !== 'object' || !(Symbol.asyncIterator in source || Symbol.iterator in source)) {
      throw new OmniError('BAD_INPUT', 'stream reads codes from an iterable or async iterable of code batches (or single codes)');
    }
    const windows = this.#streamWindows();
    const { repeats } = this.dit;
    const noise = new NoiseRows(this.dit.config.melDim, options);
    const condition = this.#condition(voice);
    const runs = new Map<number, DitRun>();
    let codes = new Int32Array(256);
    let count = 0;
    let chunk = 0;
    let overlap: Tensor | null = null;
    try {
      for await (const batch of source) {
        const ids = this.#codes(typeof batch === 'number' ? [batch] : batch);
        if (count + ids.length > codes.length) {
          const grown = new Int32Array(Math.max(2 * codes.length, count + ids.length));
          grown.set(codes.subarray(0, count));
          codes = grown;
        }
        codes.set(ids, count);
        count += ids.length;
        while (count * repeats >= windows.chunk * (chunk + 1) + windows.future) {
          const piece = await this.#streamChunk(condition, codes.subarray(0, count), noise, runs, windows, chunk, overlap, false, options);
          overlap = piece.overlap;
          chunk++;
          yield piece.samples;
        }
      }
      if (count === 0) return;
      if (chunk === 0) {
        yield await this.#decodeAll(condition, codes.slice(0, count), noise, options);
      } else {
        yield (await this.#streamChunk(condition, codes.subarray(0, count), noise, runs, windows, chunk, overlap, true, options)).samples;
      }
    } finally {
      for (const run of runs.values()) run.dispose();
      if (overlap) this.backend.dispose(overlap);
      condition.dispose();
    }
  }

  dispose(): void {
    this.dit.dispose();
    this.bigvgan.dispose();
  }

  #streamWindows(): StreamWindows {
    const { blockSize, repeats } = this.dit.config;
    // The 40-frame BigVGAN overlap is the reference's constant for the 50 Hz codec (2 mel frames per code) only.
    if (repeats !== 2) throw new OmniError('UNSUPPORTED_CONFIG', `streaming follows the reference for 2 mel frames per code; this DiT repeats ${repeats}`);
    return { chunk: 3 * blockSize, past: blockSize * repeats, future: blockSize, overlap: 40 };
  }

  /**
   * Chunk `index` of the stream: the DiT on its window, the kept frames after the previous
   * chunk's last `overlap` frames through BigVGAN, and the samples between the trims.
   */
  async #streamChunk(
    condition: DitCondition, codes: Int32Array, noise: NoiseRows, runs: Map<number, DitRun>, w: StreamWindows,
    index: number, previous: Tensor | null, last: boolean, options: SynthesisOptions,
  ): Promise<{ samples: Float32Array; overlap: Tensor }> {
    const b = this.backend;
    const { repeats } = this.dit;
    const { melDim } = this.dit.config;
    const total = codes.length * repeats;
    const start = Math.max(0, w.chunk * index - w.past);
    const end = last ? total : Math.min(w.chunk * (index + 1) + w.future, total);
    let run = runs.get(end - start);
    if (!run) runs.set(end - start, run = this.dit.createRun(end - start));
    this.dit.prepare(run, condition, codes.slice(start / repeats, end / repeats));
    const mel = await this.dit.sample(run, noise.rows(start, end - start), options);
    // Frames of the window that are final: all but the context (the first chunk starts at frame 0).
    const keepFrom = w.chunk * index - start;
    const keepTo = last ? end - start : keepFrom + w.chunk;
    const before = previous ? w.overlap : 0;
    const input = b.empty([before + keepTo - keepFrom, melDim]);
    let wave: Tensor | null = null;
    try {
      if (previous) b.copy(previous, input, 0, 0, previous.size);
      b.copy(mel, input, keepFrom * melDim, before * melDim, (keepTo - keepFrom) * melDim);
      wave = await this.bigvgan.forward(input);
      const trim = (w.overlap / 2) * this.bigvgan.hop;
      const from = index === 0 ? 0 : trim;
      const to = wave.size - (last ? 0 : trim);
      const samples = (await b.read(wave, { offset: from, count: to - from })) as Float32Array;
      const overlap = b.empty([w.overlap, melDim]);
      b.copy(input, overlap, input.size - overlap.size, 0, overlap.size);
      if (previous) b.dispose(previous);
      return { samples, overlap };
    } finally {
      b.dispose(input);
      if (wave) b.dispose(wave);
    }
  }

  async #decodeAll(condition: DitCondition, codes: Int32Array, noise: NoiseRows, options: SampleOptions): Promise<Float32Array> {
    const { run, mel } = await this.#sample(condition, codes, noise, 0, options);
    try {
      const wave = await this.bigvgan.forward(mel);
      try {
        return (await this.backend.read(wave)) as Float32Array;
      } finally {
        this.backend.dispose(wave);
      }
    } finally {
      run.dispose();
    }
  }

  /** The DiT's ODE over the codes' frames, from the noise rows starting at `firstFrame`. */
  async #sample(condition: DitCondition, codes: Int32Array, noise: NoiseRows, firstFrame: number, options: SampleOptions): Promise<{ run: DitRun; mel: Tensor }> {
    const frames = codes.length * this.dit.repeats;
    const run = this.dit.createRun(frames);
    try {
      this.dit.prepare(run, condition, codes);
      return { run, mel: await this.dit.sample(run, noise.rows(firstFrame, frames), options) };
    } catch (e) {
      run.dispose();
      throw e;
    }
  }

  /**
   * Codes as DiT table ids. The talker's vocabulary is larger than the DiT's table (§8.6): ids
   * past the table (its special tokens, e.g. an end-of-speech that was not stripped) become 0,
   * as the reference streamer replaces them.
   */
  #codes(codes: ArrayLike<number>): Int32Array {
    if (codes === null || typeof codes !== 'object' || typeof codes.length !== 'number') {
      throw new OmniError('BAD_INPUT', 'codes must be an array of integer codec ids');
    }
    const rows = this.dit.config.numEmbeds + 1;
    const ids = new Int32Array(codes.length);
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i];
      if (!Number.isSafeInteger(code) || code < 0) throw new OmniError('BAD_INPUT', `code ${String(code)} at ${i} is not a codec id (an integer ≥ 0)`);
      ids[i] = code < rows ? code : 0;
    }
    return ids;
  }

  #condition(voice: Voice): DitCondition {
    const { condDim } = this.dit.config.ecapa;
    const { melDim } = this.dit.config;
    if (voice === null || typeof voice !== 'object') throw new OmniError('BAD_INPUT', 'a voice { cond, refMel } is required (an entry of spk_dict.pt)');
    const floats = (a: HostArray | undefined, what: string, shapes: string, ok: (shape: readonly number[]) => boolean): Float32Array => {
      if (!a || a.dtype !== 'f32' || !(a.data instanceof Float32Array) || !Array.isArray(a.shape) || !ok(a.shape)) {
        throw new OmniError('BAD_INPUT', `voice ${what} must be f32 ${shapes}, got ${a?.dtype} [${a?.shape?.join(', ')}]`);
      }
      for (const v of a.data) if (!Number.isFinite(v)) throw new OmniError('BAD_INPUT', `voice ${what} holds ${v}; every value must be finite`);
      return a.data;
    };
    const cond = floats(voice.cond, 'cond', `[${condDim}] or [1, ${condDim}]`, (s) => s.at(-1) === condDim && s.length <= 2 && s.slice(0, -1).every((d) => d === 1));
    const refMel = floats(voice.refMel, 'refMel', `[T_ref, ${melDim}] or [1, T_ref, ${melDim}]`, (s) => s.at(-1) === melDim && (s.length === 2 || (s.length === 3 && s[0] === 1)));
    return this.dit.condition(cond, refMel);
  }
}

/**
 * The ODE's initial noise as one persistent [frames, mel] sequence that windows slice (§8.6):
 * the caller's, or N(0, 1) from a seed, drawn as far as asked and kept.
 */
class NoiseRows {
  #values: Float32Array;
  #filled: number;
  readonly #given: boolean;
  readonly #next: () => number;

  constructor(readonly melDim: number, options: { noise?: Float32Array; seed?: number }) {
    const { noise } = options;
    if (noise !== undefined && !(noise instanceof Float32Array && noise.length % melDim === 0)) {
      throw new OmniError('BAD_INPUT', `noise must be a Float32Array of frames × ${melDim} values`);
    }
    const seed = synthesisSeed(options);
    this.#given = noise !== undefined;
    this.#values = noise ?? new Float32Array(0);
    this.#filled = this.#values.length;
    this.#next = gaussian(seed);
  }

  /** Frames [start, start + count) of the sequence, row-major. */
  rows(start: number, count: number): Float32Array {
    const end = (start + count) * this.melDim;
    if (end > this.#filled) {
      if (this.#given) throw new OmniError('BAD_INPUT', `the noise holds ${this.#filled / this.melDim} frames; these codes need ${start + count}`);
      const grown = new Float32Array(Math.max(end, 2 * this.#values.length));
      grown.set(this.#values.subarray(0, this.#filled));
      for (let i = this.#filled; i < grown.length; i++) grown[i] = this.#next();
      this.#values = grown;
      this.#filled = grown.length;
    }
    return this.#values.slice(start * this.melDim, end);
  }
}

/** N(0, 1) deviates: Box–Muller over a 32-bit mulberry generator, so a seed gives the same noise everywhere. */
function gaussian(seed: number): () => number {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = Math.imul(state ^ (state >>> 15), state | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return (((z ^ (z >>> 14)) >>> 0) + 0.5) / 2 ** 32;
  };
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const v = spare;
      spare = null;
      return v;
    }
    const radius = Math.sqrt(-2 * Math.log(uniform()));
    const angle = 2 * Math.PI * uniform();
    spare = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };
}
