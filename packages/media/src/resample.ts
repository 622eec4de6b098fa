/**
 * Band-limited sample-rate conversion to the feature rate (16 kHz, fact sheet
 * §3.1; the reference resamples with librosa). A rational polyphase filter:
 * the rate ratio is reduced to up/down = L/M, and each of the L phases holds
 * the taps of one Kaiser-windowed sinc, so every output sample is one dot
 * product over the input, computed in float64.
 *
 * Filter: cutoff at 0.94 of the lower Nyquist (7.52 kHz for 16 kHz output),
 * 24 sinc zero crossings per side, Kaiser β = 8.6 (about 85 dB of stopband).
 * For 48 → 16 kHz the transition band is about 6.7–8.4 kHz: a 9 kHz tone
 * (which would alias to 7 kHz) and anything above are suppressed by more than
 * 60 dB, and the passband up to 6 kHz stays flat within 0.01 dB (tests).
 *
 * Output sample n is the input at time n·M/L (zero phase, no delay); the
 * signal is taken as zero before its start and after its end, and a clip of
 * n samples gives ⌈n·L/M⌉ samples.
 */
import { OmniError } from '@omniweb/core';

const ROLLOFF = 0.94;
const ZERO_CROSSINGS = 24;
const KAISER_BETA = 8.6;
/** Lowest and highest rates accepted (Hz); ordinary hardware rates lie well inside. */
const MIN_RATE = 1000;
const MAX_RATE = 384_000;
/** Phase table cap (coefficients): rates whose ratio to the target barely reduces would need more. */
const MAX_TABLE = 1 << 22;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Zeroth-order modified Bessel function of the first kind (series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1, term = 1;
  for (let k = 1; k < 64; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

function checkRate(rate: unknown, name: string): number {
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < MIN_RATE || rate > MAX_RATE) {
    throw new OmniError('BAD_INPUT', `${name} must be an integer number of Hz in [${MIN_RATE}, ${MAX_RATE}], got ${rate}`);
  }
  return rate;
}

/**
 * Streaming resampler: push PCM chunks of any size, get the output samples
 * they complete; `flush()` ends the signal. The concatenated output is
 * bit-identical to `resample()` of the whole signal for any chunking.
 * State: the last ~2·taps input samples and the output position.
 */
export class Resampler {
  readonly fromRate: number;
  readonly toRate: number;
  /** L: phases per input sample period. */
  private readonly up: number;
  /** M: input samples advanced per L outputs. */
  private readonly down: number;
  /** Taps on each side of the output instant; output n reads inputs ⌊n·M/L⌋ − half + 1 … ⌊n·M/L⌋ + half. */
  private readonly half: number;
  /** [L, 2·half] taps, phase-major. */
  private readonly taps: Float32Array;
  /** Input samples from absolute index `bufferStart` (negative indices are the leading zeros). */
  private buffer: Float32Array;
  private bufferStart: number;
  private bufferLength: number;
  private inputCount = 0;
  /** Next output: n, and its split n·M = base·L + phase. */
  private outputCount = 0;
  private base = 0;
  private phase = 0;
  private flushed = false;

  constructor(fromRate: number, toRate = 16000) {
    this.fromRate = checkRate(fromRate, 'fromRate');
    this.toRate = checkRate(toRate, 'toRate');
    const g = gcd(fromRate, toRate);
    this.up = toRate / g;
    this.down = fromRate / g;
    // Cutoff in cycles per input sample; the sinc's zero crossings are 1/(2·cutoff) input samples apart.
    const cutoff = (ROLLOFF * Math.min(fromRate, toRate)) / (2 * fromRate);
    const reach = ZERO_CROSSINGS / (2 * cutoff);
    this.half = fromRate === toRate ? 1 : Math.ceil(reach);
    const width = 2 * this.half;
    if (this.up * width > MAX_TABLE) {
      throw new OmniError('BAD_INPUT',
        `resampling ${fromRate} → ${toRate} Hz reduces to ${this.up}/${this.down} and would need a ${this.up}×${width} filter table; ` +
        'resample from a rate with a larger common factor with the target (e.g. 48000 or 44100)');
    }
    this.taps = new Float32Array(this.up * width);
    const i0Beta = besselI0(KAISER_BETA);
    for (let p = 0; p < this.up; p++) {
      const row = this.taps.subarray(p * width, (p + 1) * width);
      if (fromRate === toRate) { row[this.half - 1] = 1; continue; }
      let sum = 0;
      const weights = new Float64Array(width);
      for (let k = 0; k < width; k++) {
        // Distance (input samples) from the output instant base + p/L to input base − half + 1 + k.
        const tau = p / this.up + this.half - 1 - k;
        const edge = tau / reach;
        if (Math.abs(edge) >= 1) continue;
        const x = 2 * cutoff * tau;
        const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
        weights[k] = 2 * cutoff * sinc * (besselI0(KAISER_BETA * Math.sqrt(1 - edge * edge)) / i0Beta);
        sum += weights[k];
      }
      // Unit DC gain in every phase, so a constant stays exactly constant.
      for (let k = 0; k < width; k++) row[k] = weights[k] / sum;
    }
    this.bufferStart = -(this.half - 1);
    this.buffer = new Float32Array(Math.max(4096, 4 * width));
    this.bufferLength = this.half - 1;
  }

  /** Output samples per input sample. */
  get ratio(): number {
    return this.toRate / this.fromRate;
  }

  /** Appends input; returns the output samples whose filter window is now complete. */
  push(chunk: Float32Array): Float32Array {
    if (this.flushed) throw new OmniError('BAD_INPUT', 'Resampler.push after flush(); call reset() for a new signal');
    checkChunk(chunk);
    const needed = this.bufferLength + chunk.length;
    if (needed > this.buffer.length) {
      const grown = new Float32Array(Math.max(needed, 2 * this.buffer.length));
      grown.set(this.buffer.subarray(0, this.bufferLength));
      this.buffer = grown;
    }
    this.buffer.set(chunk, this.bufferLength);
    this.bufferLength = needed;
    this.inputCount += chunk.length;
    return this.produce(Infinity);
  }

  /** Ends the signal (zeros after it) and returns the remaining output, ⌈inputs·L/M⌉ in all. */
  flush(): Float32Array {
    if (this.flushed) throw new OmniError('BAD_INPUT', 'Resampler.flush called twice; call reset() for a new signal');
    this.flushed = true;
    const total = Math.ceil((this.inputCount * this.up) / this.down);
    const zeros = new Float32Array(this.half);
    const needed = this.bufferLength + zeros.length;
    if (needed > this.buffer.length) {
      const grown = new Float32Array(needed);
      grown.set(this.buffer.subarray(0, this.bufferLength));
      this.buffer = grown;
    }
    this.buffer.set(zeros, this.bufferLength);
    this.bufferLength = needed;
    return this.produce(total);
  }

  /** Back to an empty signal, same rates. */
  reset(): void {
    this.bufferStart = -(this.half - 1);
    this.buffer.fill(0, 0, this.half - 1);
    this.bufferLength = this.half - 1;
    this.inputCount = 0;
    this.outputCount = 0;
    this.base = 0;
    this.phase = 0;
    this.flushed = false;
  }

  private produce(limit: number): Float32Array {
    const width = 2 * this.half;
    const available = this.bufferStart + this.bufferLength;
    // Output n is ready once input base + half exists (including flush's trailing zeros).
    let count = 0;
    {
      let base = this.base, phase = this.phase;
      while (this.outputCount + count < limit && base + this.half < available) {
        count++;
        phase += this.down;
        base += Math.floor(phase / this.up);
        phase %= this.up;
      }
    }
    const out = new Float32Array(count);
    const buffer = this.buffer, taps = this.taps;
    for (let n = 0; n < count; n++) {
      const from = this.base - this.half + 1 - this.bufferStart;
      const tapFrom = this.phase * width;
      let acc = 0;
      for (let k = 0; k < width; k++) acc += buffer[from + k] * taps[tapFrom + k];
      out[n] = acc;
      this.phase += this.down;
      this.base += Math.floor(this.phase / this.up);
      this.phase %= this.up;
    }
    this.outputCount += count;
    // Keep from the first input the next output reads.
    const keepFrom = this.base - this.half + 1;
    const drop = Math.min(Math.max(0, keepFrom - this.bufferStart), this.bufferLength);
    if (drop > 0) {
      buffer.copyWithin(0, drop, this.bufferLength);
      this.bufferStart += drop;
      this.bufferLength -= drop;
    }
    return out;
  }
}

function checkChunk(chunk: unknown): asserts chunk is Float32Array {
  if (!(chunk instanceof Float32Array)) {
    throw new OmniError('BAD_INPUT', `the resampler takes mono float samples as a Float32Array, got ${Object.prototype.toString.call(chunk)}`);
  }
  for (let i = 0; i < chunk.length; i++) {
    if (!Number.isFinite(chunk[i])) throw new OmniError('NUMERIC', `resampler input sample ${i} is ${chunk[i]}`);
  }
}

/** One-shot conversion of a whole signal; equal to pushing it through a `Resampler` and flushing. */
export function resample(samples: Float32Array, fromRate: number, toRate = 16000): Float32Array {
  const resampler = new Resampler(fromRate, toRate);
  const head = resampler.push(samples);
  const tail = resampler.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}
