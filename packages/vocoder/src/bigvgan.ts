/**
 * The BigVGAN vocoder of Token2Wav (fact sheet §8.4–8.5): a log-mel [T, mel] → a waveform of
 * T·hop samples (hop = product of the upsample rates, 240 → 24 kHz at 100 mel frames/s).
 *
 * forward: mel re-normalisation → conv_pre → per stage (transposed conv ×rate → mean of the AMP
 * resblocks) → anti-aliased SnakeBeta → conv_post → clamp to [−1, 1].
 * AMP block: 3 × (x += conv2(act(conv1(act(x))))) with conv1 dilated; each act is SnakeBeta
 * between ×2 Kaiser-sinc up- and down-sampling (one backend op, `snakeBeta`).
 *
 * Tensors are time-major [L, C]. A ConvTranspose1d runs as a plain conv1d in polyphase form
 * (see `polyphaseWeight`), so the backend needs no transposed-conv kernel and no multiply is
 * spent on the zeros a zero-stuffing transposed conv would insert (only ⌈k/s⌉·s − k zero taps
 * pad the kernel: 4 of 15 for k 11, s 5).
 */
import {
  OmniError,
  type Backend, type BigVganConfig, type ResampleFilters, type Tensor, type Weight, type WeightFormat,
} from '@omniweb/core';
import { release, Scratch, WeightLoader, type WeightSource } from './weights.js';

export type { BigVganConfig } from '@omniweb/core';

interface Conv {
  w: Weight; // [Cout, Cin·kernel]
  b: Tensor | null;
  kernel: number;
  dilation: number;
}

interface Snake {
  alphaLog: Tensor; // [C]
  betaLog: Tensor;
}

interface AmpBlock {
  convs1: Conv[];
  convs2: Conv[];
  /** Before convs1[m] and before convs2[m]: activations 2m and 2m + 1. */
  acts: Snake[];
}

interface Stage {
  rate: number;
  /** The transposed conv's kernel. */
  kernel: number;
  /** The transposed conv as a conv1d over `taps` inputs with rate·Cout outputs (phase-major), bias repeated per phase. */
  up: Conv;
  taps: number;
  /** Output rows of the polyphase conv dropped in front: the transposed conv's padding. */
  crop: number;
  channels: number;
  resblocks: AmpBlock[];
}

export interface BigVganWeights {
  convPre: Conv;
  stages: Stage[];
  postAct: Snake;
  convPost: Conv;
  filters: ResampleFilters;
  held: (Tensor | Weight)[];
}

const PREFIX = 'token2wav.code2wav_bigvgan_model.';
/** Taps of the Kaiser-sinc resampling filters, both ways (UpSample1d/DownSample1d with ratio 2, §8.5). */
const RESAMPLE_TAPS = 12;

/** I0, the modified Bessel function of the first kind, by its power series. */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; term > 1e-17 * sum; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
  }
  return sum;
}

/**
 * The Kaiser-windowed sinc low-pass of the anti-aliased activation (§8.5): cutoff 0.5/ratio,
 * half-width 0.6/ratio, a symmetric Kaiser window whose β follows from the attenuation, taps at
 * half-integer offsets, normalised to sum 1.
 */
function kaiserSincFilter(taps = RESAMPLE_TAPS, ratio = 2): Float32Array {
  const cutoff = 0.5 / ratio;
  const halfWidth = 0.6 / ratio;
  const half = Math.floor(taps / 2);
  const attenuation = 2.285 * (half - 1) * Math.PI * (4 * halfWidth) + 7.95;
  const beta = attenuation > 50 ? 0.1102 * (attenuation - 8.7)
    : attenuation >= 21 ? 0.5842 * (attenuation - 21) ** 0.4 + 0.07886 * (attenuation - 21) : 0;
  const filter = new Float64Array(taps);
  let sum = 0;
  for (let n = 0; n < taps; n++) {
    const r = (2 * n) / (taps - 1) - 1;
    const window = besselI0(beta * Math.sqrt(1 - r * r)) / besselI0(beta);
    const t = taps % 2 === 0 ? n - half + 0.5 : n - half;
    const x = 2 * cutoff * t;
    const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
    sum += filter[n] = 2 * cutoff * window * sinc;
  }
  return Float32Array.from(filter, (v) => v / sum);
}

/**
 * torch ConvTranspose1d weight W [Cin, Cout, k] (stride s) as a conv1d weight for the polyphase
 * form. Output m of the transposed conv (before its padding is cropped) is, with m = q·s + r,
 *   z[q·s + r, co] = Σ_ci Σ_u x[q − u, ci] · W[ci, co, r + s·u]   (u < taps = ⌈k/s⌉, r + s·u < k)
 * — a conv1d over x with `taps` taps and zero padding taps − 1, whose rate·Cout outputs per frame
 * are the s phases: row (r, co), column ci·taps + (taps − 1 − u). Viewed as [Q·s, Cout], its
 * rows are the transposed conv's output frames.
 */
function polyphaseWeight(w: Float32Array, cin: number, cout: number, kernel: number, stride: number): { values: Float32Array; taps: number } {
  const taps = Math.ceil(kernel / stride);
  const values = new Float32Array(stride * cout * cin * taps);
  for (let r = 0; r < stride; r++) {
    for (let co = 0; co < cout; co++) {
      const row = (r * cout + co) * cin * taps;
      for (let ci = 0; ci < cin; ci++) {
        for (let u = 0; u < taps; u++) {
          const j = r + stride * u;
          if (j < kernel) values[row + ci * taps + (taps - 1 - u)] = w[(ci * cout + co) * kernel + j];
        }
      }
    }
  }
  return { values, taps };
}

async function loadBigVganWeights(loader: WeightLoader, config: BigVganConfig): Promise<BigVganWeights> {
  const { melDim, upsampleInitialChannel: initial, upsampleRates, upsampleKernelSizes, resblockKernelSizes, resblockDilationSizes } = config;
  const conv = async (name: string, cout: number, cin: number, kernel: number, dilation: number, bias: boolean, because: string): Promise<Conv> => ({
    w: loader.matrix(await loader.values(`${name}.weight`, [cout, cin, kernel], because), cout, cin * kernel),
    b: bias ? await loader.vector(`${name}.bias`, cout, because) : null,
    kernel,
    dilation,
  });
  const snake = async (name: string, channels: number, because: string): Promise<Snake> => ({
    alphaLog: await loader.vector(`${name}.act.alpha`, channels, because),
    betaLog: await loader.vector(`${name}.act.beta`, channels, because),
  });
  for (const [j, k] of resblockKernelSizes.entries()) {
    // Resblock convs keep the length only with whole "same" padding d·(k − 1)/2.
    if (resblockDilationSizes[j].some((d) => (d * (k - 1)) % 2 !== 0)) {
      throw new OmniError('UNSUPPORTED_CONFIG', `resblock kernel ${k} with dilations ${resblockDilationSizes[j].join('/')} does not keep the length (an odd kernel is needed)`);
    }
  }
  const convPre = await conv(`${PREFIX}conv_pre`, initial, melDim, 7, 1, true, `upsample_initial_channel ${initial}, mel_dim ${melDim}`);
  const stages: Stage[] = [];
  for (let i = 0; i < upsampleRates.length; i++) {
    const cin = initial / 2 ** i;
    const cout = cin / 2;
    const rate = upsampleRates[i];
    const kernel = upsampleKernelSizes[i];
    const because = `stage ${i}: channels ${cin} → ${cout}, kernel ${kernel}, rate ${rate}`;
    const { values, taps } = polyphaseWeight(await loader.values(`${PREFIX}ups.${i}.0.weight`, [cin, cout, kernel], because), cin, cout, kernel, rate);
    const bias = await loader.values(`${PREFIX}ups.${i}.0.bias`, [cout], because);
    const phaseBias = new Float32Array(rate * cout);
    for (let r = 0; r < rate; r++) phaseBias.set(bias, r * cout);
    const resblocks: AmpBlock[] = [];
    for (let j = 0; j < resblockKernelSizes.length; j++) {
      const p = `${PREFIX}resblocks.${i * resblockKernelSizes.length + j}.`;
      const k = resblockKernelSizes[j];
      const dilations = resblockDilationSizes[j];
      const blockBecause = `${cout} channels, kernel ${k}, dilations ${dilations.join('/')}`;
      const convs1: Conv[] = [];
      const convs2: Conv[] = [];
      const acts: Snake[] = [];
      for (let m = 0; m < dilations.length; m++) {
        convs1.push(await conv(`${p}convs1.${m}`, cout, cout, k, dilations[m], true, blockBecause));
        convs2.push(await conv(`${p}convs2.${m}`, cout, cout, k, 1, true, blockBecause));
        acts.push(await snake(`${p}activations.${2 * m}`, cout, blockBecause), await snake(`${p}activations.${2 * m + 1}`, cout, blockBecause));
      }
      resblocks.push({ convs1, convs2, acts });
    }
    stages.push({
      rate,
      kernel,
      up: { w: loader.matrix(values, rate * cout, cin * taps), b: loader.tensor(phaseBias, [rate * cout]), kernel: taps, dilation: 1 },
      taps,
      // ConvTranspose1d padding (k − r)/2 (§8.4), an integer by config validation.
      crop: (kernel - rate) / 2,
      channels: cout,
      resblocks,
    });
  }
  const last = initial / 2 ** upsampleRates.length;
  const filter = kaiserSincFilter();
  return {
    convPre,
    stages,
    postAct: await snake(`${PREFIX}activation_post`, last, `${last} channels after ${upsampleRates.length} stages`),
    convPost: await conv(`${PREFIX}conv_post`, 1, last, 7, 1, false, `${last} channels after ${upsampleRates.length} stages`),
    filters: { up: loader.tensor(filter, [RESAMPLE_TAPS]), down: loader.tensor(filter, [RESAMPLE_TAPS]) },
    held: loader.held,
  };
}

/** Where `forward` lets a caller look (golden checks). */
export type BigVganProbe = (point: 'convPre' | `upsample${number}` | `resblock${number}`, value: Tensor) => void | Promise<void>;

export interface BigVganLoadOptions {
  /** Conv weights' precision (default f32, as the reference runs token2wav). */
  format?: WeightFormat;
}

/** −115 dB as the floor of the amplitude, in the reference's f32: the mel's log floor (§8.4 step 1). */
const MIN_LOG_AMPLITUDE = Math.log(Math.fround(Math.exp(Math.fround((-115 / 20) * Math.log(10)))));

export class BigVgan {
  /** Waveform samples per mel frame. */
  readonly hop: number;
  #disposed = false;

  private constructor(readonly backend: Backend, readonly config: BigVganConfig, readonly weights: BigVganWeights) {
    this.hop = config.upsampleRates.reduce((a, b) => a * b, 1);
  }

  static async load(backend: Backend, source: WeightSource, config: BigVganConfig, options: BigVganLoadOptions = {}): Promise<BigVgan> {
    if (!config || !Array.isArray(config.upsampleRates)) {
      throw new OmniError('BAD_INPUT', 'BigVgan.load needs the typed BigVGAN config (parseOmniConfig(...).token2wav.bigvgan)');
    }
    const loader = new WeightLoader(backend, source, options.format ?? 'f32');
    try {
      return new BigVgan(backend, config, await loadBigVganWeights(loader, config));
    } catch (e) {
      release(backend, loader.held);
      throw e;
    }
  }

  /** The waveform [T·hop, 1] of a natural-log mel [T, mel] (the caller frees it). */
  async forward(mel: Tensor, probe?: BigVganProbe): Promise<Tensor> {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this BigVGAN was disposed');
    const b = this.backend;
    const w = this.weights;
    if (mel.shape.length !== 2 || mel.shape[1] !== this.config.melDim || mel.dtype !== 'f32') {
      throw new OmniError('SHAPE_MISMATCH', `BigVGAN takes an f32 mel [T, ${this.config.melDim}], got ${mel.dtype} [${mel.shape.join(', ')}]`);
    }
    const s = new Scratch(b);
    try {
      // dB = 20·log10(max(e^mel, floor)) − 20 mapped from [−115, 0] to [−1, 1]: affine in max(mel, ln floor).
      const floored = s.temp(b.unary(mel, { kind: 'clamp', min: MIN_LOG_AMPLITUDE, max: Infinity }));
      const scaled = s.temp(b.unary(floored, { kind: 'affine', scale: 40 / (115 * Math.LN10), shift: (2 * (115 - 20)) / 115 - 1 }));
      let x = this.#conv(s, s.temp(b.unary(scaled, { kind: 'clamp', min: -1, max: 1 })), w.convPre);
      await probe?.('convPre', x);
      for (const [i, stage] of w.stages.entries()) {
        x = this.#upsample(s, x, stage);
        await probe?.(`upsample${i}`, x);
        let sum: Tensor | null = null;
        for (const [j, block] of stage.resblocks.entries()) {
          const y = this.#ampBlock(s, x, block);
          await probe?.(`resblock${i * stage.resblocks.length + j}`, y);
          sum = sum ? s.temp(b.add(sum, y)) : y;
        }
        x = s.temp(b.unary(sum!, { kind: 'affine', scale: 1 / stage.resblocks.length, shift: 0 }));
      }
      const activated = s.temp(b.snakeBeta(x, w.postAct.alphaLog, w.postAct.betaLog, w.filters));
      const wave = s.temp(b.unary(this.#conv(s, activated, w.convPost), { kind: 'clamp', min: -1, max: 1 }));
      s.free(wave);
      return wave;
    } catch (e) {
      s.free();
      throw e;
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    release(this.backend, this.weights.held);
  }

  /** ConvTranspose1d(x) [L, Cin] → [(L − 1)·rate − 2·crop + kernel, Cout], through its polyphase conv1d. */
  #upsample(s: Scratch, x: Tensor, stage: Stage): Tensor {
    const b = this.backend;
    const phases = s.temp(b.conv1d(x, stage.up.w, stage.up.b, { kernel: stage.taps, padding: stage.taps - 1 }));
    const length = (x.shape[0] - 1) * stage.rate - 2 * stage.crop + stage.kernel;
    const out = s.temp(b.empty([length, stage.channels]));
    b.copy(phases, out, stage.crop * stage.channels, 0, length * stage.channels);
    return out;
  }

  #ampBlock(s: Scratch, x: Tensor, block: AmpBlock): Tensor {
    const b = this.backend;
    const act = (t: Tensor, snake: Snake) => s.temp(b.snakeBeta(t, snake.alphaLog, snake.betaLog, this.weights.filters));
    for (let m = 0; m < block.convs1.length; m++) {
      const inner = this.#conv(s, act(x, block.acts[2 * m]), block.convs1[m]);
      x = s.temp(b.add(x, this.#conv(s, act(inner, block.acts[2 * m + 1]), block.convs2[m])));
    }
    return x;
  }

  /** A "same"-length conv: padding dilation·(kernel − 1)/2 with zeros. */
  #conv(s: Scratch, x: Tensor, conv: Conv): Tensor {
    const padding = (conv.dilation * (conv.kernel - 1)) / 2;
    return s.temp(this.backend.conv1d(x, conv.w, conv.b, { kernel: conv.kernel, dilation: conv.dilation, padding }));
  }
}
