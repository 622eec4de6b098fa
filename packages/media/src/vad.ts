/**
 * End-of-speech detection for hands-free turns: 16 kHz PCM in, `start` / `end` events out.
 *
 * `SpeechDetector` is the pluggable contract (a neural VAD can implement it); `EnergyVad`
 * is the default: 20 ms frames, each judged by its energy against an adaptive noise floor
 * and by its zero-crossing rate, then a small state machine:
 * - silence → speech once voiced frames cover `minSpeechMs` (short clicks never start a turn);
 *   the start is dated at the first of those frames, not at the moment it was decided;
 * - speech → silence after `hangoverMs` without a voiced frame (pauses between words do not
 *   end a turn); the end is dated at the end of the last voiced frame.
 * The noise floor is the quietest frame of the last `floorWindowMs`: speech always has
 * dips between syllables, so the floor stays at the background while someone talks, and a
 * fan or hiss that starts and stays is learnt within one window — it may open a spurious
 * turn once, which then ends, but it never holds the detector in speech.
 * Times are milliseconds of audio since the first sample (or `reset()`), from sample counts.
 */
import { OmniError } from '@omniweb/core';

export interface SpeechEvent {
  phase: 'start' | 'end';
  /** Audio time of the speech boundary, ms since the first sample pushed. */
  atMs: number;
}

/** Anything that turns a 16 kHz PCM stream into speech boundaries. */
export interface SpeechDetector {
  /** The rate `push` expects (Hz). */
  readonly sampleRate: number;
  /** Whether the last boundary reported was a start. */
  readonly speaking: boolean;
  /** Feeds mono PCM of any length; returns the boundaries it completes, in order. */
  push(pcm: Float32Array): SpeechEvent[];
  /** Forgets everything: the next sample is time 0 and nobody is speaking. */
  reset(): void;
}

export interface EnergyVadOptions {
  /** Voiced frames needed before speech starts (default 200 ms). */
  minSpeechMs?: number;
  /** Silence that ends speech (default 700 ms). */
  hangoverMs?: number;
  /** A frame is voiced this far above the noise floor (default 12 dB); it stays voiced down to `offDb`. */
  onDb?: number;
  /** Hysteresis: inside speech, frames this far above the floor still count as voiced (default 7 dB). */
  offDb?: number;
  /** Frames quieter than this are silence whatever the floor (default −55 dBFS). */
  minLevelDb?: number;
  /**
   * Zero crossings per sample above which a frame is noise-like (hiss, fricatives): such a
   * frame is voiced only when it is `onDb` + 10 dB above the floor (default 0.35).
   */
  maxZeroCrossingRate?: number;
  /** How far back the noise floor looks (default 5000 ms). */
  floorWindowMs?: number;
}

const SAMPLE_RATE = 16_000;
const FRAME_SAMPLES = 320;
const FRAME_MS = (1000 * FRAME_SAMPLES) / SAMPLE_RATE;
/** Extra margin noise-like frames (high zero-crossing rate) need to count as speech. */
const NOISY_EXTRA_DB = 10;
/** Voiced frames may be broken by this many unvoiced ones while speech is starting (plosive gaps). */
const ONSET_GAP_FRAMES = 2;

function option(value: number | undefined, fallback: number, name: string, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new OmniError('BAD_INPUT', `EnergyVad: ${name} must be a number in [${min}, ${max}], got ${String(value)}`);
  }
  return v;
}

/** The default detector: energy over an adaptive floor, zero-crossing rate, hangover and minimum speech length. */
export class EnergyVad implements SpeechDetector {
  readonly sampleRate = SAMPLE_RATE;
  readonly minSpeechMs: number;
  readonly hangoverMs: number;
  readonly #onDb: number;
  readonly #offDb: number;
  readonly #minLevelDb: number;
  readonly #maxZcr: number;
  readonly #frame = new Float32Array(FRAME_SAMPLES);
  /** Levels (dBFS) of the frames in the floor window, a ring indexed by frame number. */
  readonly #levels: Float64Array;
  #filled = 0;
  /** Frames judged so far. */
  #frames = 0;
  #floorDb = NaN;
  #speaking = false;
  /** Onset candidate: its first voiced frame, voiced frames in it, unvoiced frames since its last voiced one. */
  #onsetFirst = -1;
  #onsetVoiced = 0;
  #onsetGap = 0;
  /** In speech: the last voiced frame. */
  #lastVoiced = -1;

  constructor(options: EnergyVadOptions = {}) {
    if (options === null || typeof options !== 'object') throw new OmniError('BAD_INPUT', 'EnergyVad takes an options object');
    this.minSpeechMs = option(options.minSpeechMs, 200, 'minSpeechMs', FRAME_MS, 5000);
    this.hangoverMs = option(options.hangoverMs, 700, 'hangoverMs', FRAME_MS, 10_000);
    this.#onDb = option(options.onDb, 12, 'onDb', 1, 60);
    this.#offDb = option(options.offDb, 7, 'offDb', 0, this.#onDb);
    this.#minLevelDb = option(options.minLevelDb, -55, 'minLevelDb', -120, 0);
    this.#maxZcr = option(options.maxZeroCrossingRate, 0.35, 'maxZeroCrossingRate', 0, 1);
    const floorWindowMs = option(options.floorWindowMs, 5000, 'floorWindowMs', FRAME_MS, 60_000);
    this.#levels = new Float64Array(Math.round(floorWindowMs / FRAME_MS));
  }

  get speaking(): boolean {
    return this.#speaking;
  }

  /** The learnt background level (dBFS); NaN before the first frame. */
  get noiseFloorDb(): number {
    return this.#floorDb;
  }

  push(pcm: Float32Array): SpeechEvent[] {
    if (!(pcm instanceof Float32Array)) throw new OmniError('BAD_INPUT', `EnergyVad.push takes mono 16 kHz PCM as a Float32Array, got ${Object.prototype.toString.call(pcm)}`);
    const events: SpeechEvent[] = [];
    let at = 0;
    while (at < pcm.length) {
      const take = Math.min(FRAME_SAMPLES - this.#filled, pcm.length - at);
      this.#frame.set(pcm.subarray(at, at + take), this.#filled);
      this.#filled += take;
      at += take;
      if (this.#filled < FRAME_SAMPLES) break;
      this.#filled = 0;
      const event = this.#judge();
      if (event) events.push(event);
    }
    return events;
  }

  reset(): void {
    this.#filled = 0;
    this.#frames = 0;
    this.#floorDb = NaN;
    this.#speaking = false;
    this.#onsetFirst = -1;
    this.#onsetVoiced = 0;
    this.#onsetGap = 0;
    this.#lastVoiced = -1;
  }

  #judge(): SpeechEvent | null {
    const frame = this.#frame;
    let energy = 0, crossings = 0;
    for (let i = 0; i < FRAME_SAMPLES; i++) {
      const x = frame[i];
      if (!Number.isFinite(x)) throw new OmniError('NUMERIC', `EnergyVad.push: sample ${this.#frames * FRAME_SAMPLES + i} is ${x}`);
      energy += x * x;
      if (i > 0 && (x >= 0) !== (frame[i - 1] >= 0)) crossings++;
    }
    const levelDb = 10 * Math.log10(energy / FRAME_SAMPLES + 1e-12);
    const zcr = crossings / (FRAME_SAMPLES - 1);
    const index = this.#frames++;
    this.#levels[index % this.#levels.length] = levelDb;
    let floor = Infinity;
    for (let i = Math.min(this.#frames, this.#levels.length) - 1; i >= 0; i--) floor = Math.min(floor, this.#levels[i]);
    this.#floorDb = floor;
    const margin = (this.#speaking ? this.#offDb : this.#onDb) + (zcr > this.#maxZcr ? NOISY_EXTRA_DB : 0);
    const voiced = levelDb > this.#minLevelDb && levelDb > this.#floorDb + margin;

    if (this.#speaking) {
      if (voiced) this.#lastVoiced = index;
      else if ((index - this.#lastVoiced) * FRAME_MS >= this.hangoverMs) {
        this.#speaking = false;
        this.#onsetFirst = -1;
        return { phase: 'end', atMs: ((this.#lastVoiced + 1) * FRAME_SAMPLES * 1000) / SAMPLE_RATE };
      }
      return null;
    }
    if (voiced) {
      if (this.#onsetFirst < 0) this.#onsetFirst = index;
      this.#onsetVoiced++;
      this.#onsetGap = 0;
      if (this.#onsetVoiced * FRAME_MS >= this.minSpeechMs) {
        this.#speaking = true;
        this.#lastVoiced = index;
        const first = this.#onsetFirst;
        this.#onsetFirst = -1;
        this.#onsetVoiced = 0;
        return { phase: 'start', atMs: (first * FRAME_SAMPLES * 1000) / SAMPLE_RATE };
      }
      return null;
    }
    if (this.#onsetFirst >= 0 && ++this.#onsetGap > ONSET_GAP_FRAMES) {
      this.#onsetFirst = -1;
      this.#onsetVoiced = 0;
    }
    return null;
  }
}
