/**
 * The Qwen2.5-Omni audio encoder (fact sheet §3.2): a Whisper-style encoder
 * whose attention never leaves a 2-second block, so a clip can be encoded
 * block by block while it is being recorded.
 *
 * forward(blocks): per block of 2·nWindow mel frames: conv1 (k3) → GELU →
 * conv2 (k3, stride 2) → GELU → + sinusoid positions restarting at 0; blocks
 * concatenated → N × (LayerNorm → q/k/v → attention inside each block →
 * out_proj → residual → LayerNorm → fc1 → GELU → fc2 → residual) →
 * average pool (2 rows) → ln_post → proj to the Thinker width.
 */
import {
  modelWeights, OmniError,
  type AudioEncoderConfig, type Backend, type Tensor, type Weight, type WeightFormat, type WeightSource,
} from '@omniweb/core';
import { audioTokenCount } from '@omniweb/tmrope';

export type { AudioEncoderConfig, WeightSource } from '@omniweb/core';

/**
 * Log-mel features, time-major `[frames, melBins]`, 100 frames per second
 * (fact sheet §3.1). `@omniweb/media`'s `LogMel` (from `logMel`) and
 * `MelBlock` (from `MelStream`) fit as they are.
 */
export interface MelInput {
  features: Float32Array;
  frames: number;
  /** Bins per frame; default `features.length / frames`. */
  melBins?: number;
  /** Frames to encode, counted from the first (`feature_attention_mask`); default all `frames`. */
  validFrames?: number;
}

/**
 * Where `inspect` is called, with the tensor at that point (valid during the call only):
 * `conv1.<block>` / `conv2.<block>` (before GELU, [frames, dModel] of that block),
 * `input` (layer-0 input, [rows, dModel]), `layer.<i>` (output of layer i),
 * `avgPool` and `lnPost` ([tokens, dModel]).
 */
export type AudioTap = `conv1.${number}` | `conv2.${number}` | 'input' | `layer.${number}` | 'avgPool' | 'lnPost';

export interface AudioEncodeOptions {
  /** Debugging and golden checks; awaited, so it may read the tensor. */
  inspect?: (tap: AudioTap, t: Tensor) => void | Promise<void>;
}

export interface AudioLayerWeights {
  attnNorm: Tensor; // self_attn_layer_norm [dModel]
  attnNormBias: Tensor;
  q: Weight; // [dModel, dModel]
  qBias: Tensor;
  k: Weight; // no bias (fact sheet §10.4)
  v: Weight;
  vBias: Tensor;
  out: Weight;
  outBias: Tensor;
  ffnNorm: Tensor; // final_layer_norm [dModel]
  ffnNormBias: Tensor;
  fc1: Weight; // [ffn, dModel]
  fc1Bias: Tensor;
  fc2: Weight; // [dModel, ffn]
  fc2Bias: Tensor;
}

export interface AudioEncoderWeights {
  format: WeightFormat;
  conv1: Weight; // [dModel, melBins·3], torch Conv1d weight flattened
  conv1Bias: Tensor;
  conv2: Weight; // [dModel, dModel·3]
  conv2Bias: Tensor;
  layers: AudioLayerWeights[];
  lnPost: Tensor;
  lnPostBias: Tensor;
  proj: Weight; // [outputDim, dModel]
  projBias: Tensor;
}

const PREFIX = 'thinker.audio_tower.';
/** PyTorch's LayerNorm default; the audio tower keeps it (fact sheet §10.4). */
const LAYER_NORM_EPS = 1e-5;
const CONV_KERNEL = 3;

/** Post-CNN frames of `melFrames` (conv2 has stride 2, padding 1). */
function afterConv(melFrames: number): number {
  return Math.floor((melFrames - 1) / 2) + 1;
}

/**
 * Sinusoid table rows 0…rows−1 (fact sheet §3.2 step 3): sines of all
 * frequencies, then cosines. Each step rounds to f32 as torch does.
 */
export function audioPositionTable(rows: number, channels: number): Float32Array {
  const half = channels / 2;
  const increment = Math.fround(Math.log(10000) / (half - 1));
  const table = new Float32Array(rows * channels);
  for (let k = 0; k < half; k++) {
    const invTimescale = Math.fround(Math.exp(Math.fround(-increment * k)));
    for (let t = 0; t < rows; t++) {
      const angle = Math.fround(t * invTimescale);
      table[t * channels + k] = Math.sin(angle);
      table[t * channels + half + k] = Math.cos(angle);
    }
  }
  return table;
}

/** Reads the audio tower's tensors, checking each shape against the config, and uploads them. */
export async function loadAudioEncoderWeights(
  backend: Backend, source: WeightSource, config: AudioEncoderConfig, format: WeightFormat,
): Promise<AudioEncoderWeights> {
  const { matrix, vector } = modelWeights(backend, source, format, { prefix: PREFIX, config: 'audio config' });
  const { dModel, melBins, ffn, outputDim } = config;
  const d = `d_model ${dModel}`;
  const layers: AudioLayerWeights[] = [];
  for (let l = 0; l < config.layers; l++) {
    const p = `layers.${l}.`;
    const f = `encoder_ffn_dim ${ffn}`;
    layers.push({
      attnNorm: await vector(`${p}self_attn_layer_norm.weight`, dModel, d),
      attnNormBias: await vector(`${p}self_attn_layer_norm.bias`, dModel, d),
      q: await matrix(`${p}self_attn.q_proj.weight`, [dModel, dModel], d),
      qBias: await vector(`${p}self_attn.q_proj.bias`, dModel, d),
      k: await matrix(`${p}self_attn.k_proj.weight`, [dModel, dModel], d),
      v: await matrix(`${p}self_attn.v_proj.weight`, [dModel, dModel], d),
      vBias: await vector(`${p}self_attn.v_proj.bias`, dModel, d),
      out: await matrix(`${p}self_attn.out_proj.weight`, [dModel, dModel], d),
      outBias: await vector(`${p}self_attn.out_proj.bias`, dModel, d),
      ffnNorm: await vector(`${p}final_layer_norm.weight`, dModel, d),
      ffnNormBias: await vector(`${p}final_layer_norm.bias`, dModel, d),
      fc1: await matrix(`${p}fc1.weight`, [ffn, dModel], `${f}, ${d}`),
      fc1Bias: await vector(`${p}fc1.bias`, ffn, f),
      fc2: await matrix(`${p}fc2.weight`, [dModel, ffn], `${d}, ${f}`),
      fc2Bias: await vector(`${p}fc2.bias`, dModel, d),
    });
  }
  return {
    format,
    conv1: await matrix('conv1.weight', [dModel, melBins, CONV_KERNEL], `${d}, num_mel_bins ${melBins}`),
    conv1Bias: await vector('conv1.bias', dModel, d),
    conv2: await matrix('conv2.weight', [dModel, dModel, CONV_KERNEL], d),
    conv2Bias: await vector('conv2.bias', dModel, d),
    layers,
    lnPost: await vector('ln_post.weight', dModel, d),
    lnPostBias: await vector('ln_post.bias', dModel, d),
    proj: await matrix('proj.weight', [outputDim, dModel], `output_dim ${outputDim}, ${d}`),
    projBias: await vector('proj.bias', outputDim, d),
  };
}

/** Activations of the encoder layers over `rows` post-CNN frames, allocated once per pass. */
class RunState {
  readonly x: Tensor; // [rows, dModel] residual stream, ping-ponged with xAlt
  readonly xAlt: Tensor;
  readonly xb: Tensor; // [rows, dModel] normed input of a sub-block
  readonly q: Tensor;
  readonly q3: Tensor; // view [rows, heads, headDim]
  readonly k: Tensor;
  readonly k3: Tensor;
  readonly v: Tensor;
  readonly v3: Tensor;
  readonly att3: Tensor; // [rows, heads, headDim]
  readonly att: Tensor; // view [rows, dModel]
  readonly xo: Tensor; // [rows, dModel] out_proj / fc2 output
  readonly ffn: Tensor; // [rows, ffn]
  readonly ffnAct: Tensor;
  readonly #owned: Tensor[];

  constructor(private readonly backend: Backend, config: AudioEncoderConfig, readonly rows: number) {
    const { dModel, heads, headDim, ffn } = config;
    const e = (shape: number[]) => backend.empty(shape);
    this.x = e([rows, dModel]);
    this.xAlt = e([rows, dModel]);
    this.xb = e([rows, dModel]);
    this.q = e([rows, dModel]);
    this.k = e([rows, dModel]);
    this.v = e([rows, dModel]);
    this.att3 = e([rows, heads, headDim]);
    this.xo = e([rows, dModel]);
    this.ffn = e([rows, ffn]);
    this.ffnAct = e([rows, ffn]);
    this.#owned = [this.x, this.xAlt, this.xb, this.q, this.k, this.v, this.att3, this.xo, this.ffn, this.ffnAct];
    this.q3 = backend.reshape(this.q, [rows, heads, headDim]);
    this.k3 = backend.reshape(this.k, [rows, heads, headDim]);
    this.v3 = backend.reshape(this.v, [rows, heads, headDim]);
    this.att = backend.reshape(this.att3, [rows, dModel]);
  }

  dispose(): void {
    for (const t of this.#owned) this.backend.dispose(t);
  }
}

/** Checked mel frames: `frames` rows of `melBins` values from `data[0]`. */
interface MelFrames {
  frames: number;
  data: Float32Array;
}

export class AudioEncoder {
  /** Mel frames per attention block: 2 s (fact sheet §3.2 step 1). */
  readonly blockFrames: number;
  /** Sinusoid rows 0…nWindow−1 (the post-CNN length of a full block); host copy for shorter tail blocks. */
  readonly #positionTable: Float32Array;
  readonly #positions: Tensor;
  #disposed = false;

  private constructor(readonly backend: Backend, readonly config: AudioEncoderConfig, readonly weights: AudioEncoderWeights) {
    this.blockFrames = 2 * config.nWindow;
    this.#positionTable = audioPositionTable(config.nWindow, config.dModel);
    this.#positions = backend.tensor(this.#positionTable, [config.nWindow, config.dModel]);
  }

  /** Loads `thinker.audio_tower.*` with the config parsed from config.json (`loadOmniConfig(...).thinker.audio`). */
  static async load(backend: Backend, source: WeightSource, config: AudioEncoderConfig, options: { format?: WeightFormat } = {}): Promise<AudioEncoder> {
    if (!config || !Number.isSafeInteger(config.nWindow) || !Number.isSafeInteger(config.dModel)) {
      throw new OmniError('BAD_INPUT', 'AudioEncoder.load needs the typed audio config (loadOmniConfig(...).thinker.audio)');
    }
    if (config.nWindow > config.maxSourcePositions) {
      throw new OmniError('UNSUPPORTED_CONFIG', `n_window ${config.nWindow} exceeds max_source_positions ${config.maxSourcePositions}: the sinusoid table has no rows for a full block`);
    }
    return new AudioEncoder(backend, config, await loadAudioEncoderWeights(backend, source, config, options.format ?? 'f32'));
  }

  /** Encodes a whole clip (≥ 3 mel frames) → [audioTokenCount(frames), outputDim]; the caller disposes it. */
  async encode(mel: MelInput, options: AudioEncodeOptions = {}): Promise<Tensor> {
    const clip = this.#checkMel(mel, 'encode');
    if (audioTokenCount(clip.frames) === 0) {
      throw new OmniError('BAD_INPUT', `encode: a clip of ${clip.frames} mel frames gives no audio token; it needs at least 3 (30 ms)`);
    }
    const bins = this.config.melBins;
    const blocks: MelFrames[] = [];
    for (let start = 0; start < clip.frames; start += this.blockFrames) {
      const frames = Math.min(this.blockFrames, clip.frames - start);
      blocks.push({ frames, data: clip.data.subarray(start * bins, (start + frames) * bins) });
    }
    return this.#forward(blocks, options.inspect);
  }

  /** A streaming encoder for one clip: feed it each 2-second mel block as soon as it is complete. */
  blockEncoder(): AudioBlockEncoder {
    this.#checkLive();
    // Pool pairs stay inside a block only when a full block has an even post-CNN length (nWindow).
    if (this.config.nWindow % 2 !== 0) {
      throw new OmniError('UNSUPPORTED_CONFIG', `n_window ${this.config.nWindow} is odd: average-pool pairs would straddle blocks, so blocks cannot be encoded one at a time; use encode()`);
    }
    return new AudioBlockEncoder(this.blockFrames, {
      check: (block) => this.#checkMel(block, 'encodeBlock'),
      encode: (block, inspect) => this.#forward([block], inspect),
    });
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    const w = this.weights;
    const all: (Tensor | Weight)[] = [w.conv1, w.conv1Bias, w.conv2, w.conv2Bias, w.lnPost, w.lnPostBias, w.proj, w.projBias, this.#positions];
    for (const layer of w.layers) all.push(...Object.values(layer));
    for (const t of all) this.backend.dispose(t);
  }

  #checkLive(): void {
    if (this.#disposed) throw new OmniError('BAD_INPUT', 'this AudioEncoder was disposed');
  }

  /** The valid frames of `mel`, after checking its layout against the config (BAD_INPUT, NUMERIC). */
  #checkMel(mel: MelInput, where: string): MelFrames {
    this.#checkLive();
    if (!mel || typeof mel !== 'object' || !(mel.features instanceof Float32Array)) {
      throw new OmniError('BAD_INPUT', `${where}: expected log-mel features { features: Float32Array [frames, melBins], frames }`);
    }
    const { features, frames } = mel;
    if (!Number.isSafeInteger(frames) || frames < 1) throw new OmniError('BAD_INPUT', `${where}: frames is ${frames}; expected an integer ≥ 1`);
    const bins = mel.melBins ?? features.length / frames;
    if (bins !== this.config.melBins) {
      throw new OmniError('BAD_INPUT', `${where}: the mel has ${bins} bins per frame; this encoder takes ${this.config.melBins} (num_mel_bins); compute it with the model's feature settings`);
    }
    if (features.length !== frames * bins) {
      throw new OmniError('BAD_INPUT', `${where}: ${features.length} values for ${frames} frames × ${bins} bins (${frames * bins} expected)`);
    }
    const valid = mel.validFrames ?? frames;
    if (!Number.isSafeInteger(valid) || valid < 1 || valid > frames) {
      throw new OmniError('BAD_INPUT', `${where}: validFrames is ${valid}; expected an integer in [1, ${frames}]`);
    }
    const data = features.subarray(0, valid * bins);
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new OmniError('NUMERIC', `${where}: mel value ${data[i]} at frame ${Math.floor(i / bins)}, bin ${i % bins}`);
    }
    return { frames: valid, data };
  }

  async #forward(blocks: MelFrames[], inspect: AudioEncodeOptions['inspect']): Promise<Tensor> {
    this.#checkLive();
    const b = this.backend;
    const { dModel, melBins } = this.config;
    const w = this.weights;
    const rows = blocks.reduce((sum, block) => sum + afterConv(block.frames), 0);
    const s = new RunState(b, this.config, rows);
    const temporary: Tensor[] = [];
    const keep = (t: Tensor) => (temporary.push(t), t);
    const release = () => {
      for (const t of temporary.splice(0)) b.dispose(t);
    };
    try {
      // Each block is convolved alone: its edges see zero padding, as the reference's padded chunk batch does (§3.2 step 2).
      const bounds = new Int32Array(blocks.length + 1);
      for (const [i, block] of blocks.entries()) {
        const mel = keep(b.tensor(block.data, [block.frames, melBins]));
        const conv1 = keep(b.conv1d(mel, w.conv1, w.conv1Bias, { kernel: CONV_KERNEL, padding: 1 })); // [frames, dModel]
        await inspect?.(`conv1.${i}`, conv1);
        const conv2 = keep(b.conv1d(keep(b.gelu(conv1, 'erf')), w.conv2, w.conv2Bias, { kernel: CONV_KERNEL, stride: 2, padding: 1 }));
        await inspect?.(`conv2.${i}`, conv2);
        const n = conv2.shape[0];
        // Positions restart at 0 in every block (§3.2 step 3, §10.3).
        const positions = n === this.config.nWindow
          ? this.#positions
          : keep(b.tensor(this.#positionTable.subarray(0, n * dModel), [n, dModel]));
        const embedded = keep(b.add(keep(b.gelu(conv2, 'erf')), positions));
        b.copy(embedded, s.x, 0, bounds[i] * dModel, n * dModel);
        bounds[i + 1] = bounds[i] + n;
        // A 300 s clip has 150 blocks: their conv activations go as soon as each is copied.
        release();
      }
      await inspect?.('input', s.x);

      // Attention is block-diagonal: each block sees only itself (§3.2 step 5).
      const mask = { kind: 'segments', bounds } as const;
      let x = s.x;
      let xAlt = s.xAlt;
      for (const [l, layer] of w.layers.entries()) {
        b.layernorm(x, layer.attnNorm, layer.attnNormBias, LAYER_NORM_EPS, s.xb);
        b.linear(s.xb, layer.q, layer.qBias, s.q);
        b.linear(s.xb, layer.k, null, s.k);
        b.linear(s.xb, layer.v, layer.vBias, s.v);
        b.attention(s.q3, s.k3, s.v3, { mask }, s.att3);
        b.linear(s.att, layer.out, layer.outBias, s.xo);
        b.add(x, s.xo, xAlt);
        [x, xAlt] = [xAlt, x];
        b.layernorm(x, layer.ffnNorm, layer.ffnNormBias, LAYER_NORM_EPS, s.xb);
        b.linear(s.xb, layer.fc1, layer.fc1Bias, s.ffn);
        b.gelu(s.ffn, 'erf', s.ffnAct);
        b.linear(s.ffnAct, layer.fc2, layer.fc2Bias, s.xo);
        b.add(x, s.xo, xAlt);
        [x, xAlt] = [xAlt, x];
        await inspect?.(`layer.${l}`, x);
      }

      // Pairs of rows over the whole clip; an odd last row is dropped (§3.2 step 6).
      const pooled = keep(b.avgPoolRows(x, 2)); // [tokens, dModel]
      await inspect?.('avgPool', pooled);
      const normed = keep(b.layernorm(pooled, w.lnPost, w.lnPostBias, LAYER_NORM_EPS));
      await inspect?.('lnPost', normed);
      return b.linear(normed, w.proj, w.projBias); // [tokens, outputDim]
    } finally {
      s.dispose();
      release();
    }
  }
}

/**
 * Encodes one clip block by block (fact sheet §3.2; ARCHITECTURE "streaming path" step 1).
 * Every block but the last holds exactly `blockFrames` mel frames; a shorter
 * block ends the clip. The tokens of all blocks, in order, equal `encode` of
 * the whole clip: attention never crosses a block, and a full block has an
 * even post-CNN length, so no pool pair straddles two blocks.
 */
export class AudioBlockEncoder {
  #blocks = 0;
  #tokens = 0;
  #ended = false;

  /** Made by `AudioEncoder.blockEncoder()`, which lends it the encoder's input check and forward pass. */
  constructor(
    readonly blockFrames: number,
    private readonly model: {
      check(block: MelInput): MelFrames;
      encode(block: MelFrames, inspect: AudioEncodeOptions['inspect']): Promise<Tensor>;
    },
  ) {}

  /** Blocks encoded so far. */
  get blocks(): number {
    return this.#blocks;
  }

  /** Tokens produced so far. */
  get tokens(): number {
    return this.#tokens;
  }

  /** True once a block shorter than `blockFrames` (the clip's tail) was encoded. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Encodes one block → its tokens [n, outputDim] (the caller disposes them),
   * or null for a tail of 1–2 frames, which gives no token.
   */
  async encodeBlock(melBlock: MelInput, options: AudioEncodeOptions = {}): Promise<Tensor | null> {
    if (this.#ended) {
      throw new OmniError('BAD_INPUT', `encodeBlock: block ${this.#blocks - 1} was shorter than ${this.blockFrames} frames, so it ended the clip; start a new blockEncoder() for the next clip`);
    }
    const block = this.model.check(melBlock);
    if (block.frames > this.blockFrames) {
      throw new OmniError('BAD_INPUT', `encodeBlock: ${block.frames} frames; a block holds at most ${this.blockFrames} (2·n_window, 2 s)`);
    }
    const count = audioTokenCount(block.frames);
    // A tail of 1–2 frames gives one post-CNN row, which the pool drops: nothing to encode.
    const tokens = count === 0 ? null : await this.model.encode(block, options.inspect);
    this.#ended = block.frames < this.blockFrames;
    this.#blocks++;
    this.#tokens += count;
    return tokens;
  }
}
