/**
 * Typed configuration of every Qwen2.5-Omni sub-model, read from the
 * checkpoint's config.json (fact sheet §2–§8). Every size comes from the file;
 * nothing assumes the 3B or 7B numbers. `parseOmniConfig` validates the JSON
 * (BAD_CONFIG: invalid; UNSUPPORTED_CONFIG: valid but not runnable here);
 * `checkConfigAgainstWeights` compares it with the tensor headers (SHAPE_MISMATCH).
 */
import { OmniError } from './errors.js';
import type { TensorStore } from './weights/tensorStore.js';

/** A Qwen2-style decoder: the Thinker's text model and the Talker share this shape. */
export interface DecoderConfig {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  rmsEps: number;
  ropeTheta: number;
  /** Rotary frequencies taken from the (T, H, W) position streams; sums to headDim / 2 (fact sheet §5.1). */
  mropeSection: [number, number, number];
  vocab: number;
  maxPositions: number;
}

export interface ThinkerTextConfig extends DecoderConfig {
  tieWordEmbeddings: boolean;
}

/** Ids of the multimodal placeholder tokens, in the Thinker's vocabulary (fact sheet §6). */
export interface MultimodalTokenIds {
  audio: number;
  audioStart: number;
  audioEnd: number;
  image: number;
  video: number;
  visionStart: number;
  visionEnd: number;
}

export interface AudioEncoderConfig {
  melBins: number;
  dModel: number;
  layers: number;
  heads: number;
  headDim: number;
  ffn: number;
  /** Largest post-CNN position the sinusoid table covers. */
  maxSourcePositions: number;
  /** Attention chunks are 2·nWindow mel frames (fact sheet §3.2). */
  nWindow: number;
  outputDim: number;
}

export interface VisionEncoderConfig {
  depth: number;
  hidden: number;
  heads: number;
  headDim: number;
  intermediate: number;
  inChannels: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  /** Window edge in pixels (fact sheet §4.3). */
  windowSize: number;
  /** Blocks that attend over a whole frame instead of a window. */
  fullAttnBlocks: number[];
  outHidden: number;
  tokensPerSecond: number;
}

export interface ThinkerConfig {
  text: ThinkerTextConfig;
  audio: AudioEncoderConfig;
  vision: VisionEncoderConfig;
  tokens: MultimodalTokenIds & { user: number; bos: number | null; eos: number | null; pad: number | null };
  positionIdPerSeconds: number;
  secondsPerChunk: number;
}

export interface TalkerConfig extends DecoderConfig {
  /** Width of the talker's input embeddings: the Thinker's hidden size. */
  embeddingSize: number;
  tokens: MultimodalTokenIds;
  codec: { pad: number; start: number; end: number; mask: number };
  /** Thinker-vocabulary ids of the TTS text markers (fact sheet §7.2). */
  ttsText: { pad: number; start: number; end: number };
  positionIdPerSeconds: number;
  secondsPerChunk: number;
  spatialMergeSize: number;
}

export interface DitConfig {
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  ffMult: number;
  /** Codec embedding width. */
  embDim: number;
  /** Codec ids are < numEmbeds; the table has numEmbeds + 1 rows. */
  numEmbeds: number;
  /** Mel frames per codec token. */
  repeats: number;
  melDim: number;
  blockSize: number;
  lookAheadLayers: number[];
  lookBackwardLayers: number[];
  ropeTheta: number;
  /** ECAPA-TDNN speaker encoder (fact sheet §8.2 step 3). */
  ecapa: {
    /** Width of the speaker `cond` vector. */
    condDim: number;
    /** Width of the encoder's output. */
    outDim: number;
    channels: number[];
    kernelSizes: number[];
    dilations: number[];
    attentionChannels: number;
    res2netScale: number;
    seChannels: number;
  };
}

export interface BigVganConfig {
  melDim: number;
  upsampleInitialChannel: number;
  upsampleRates: number[];
  upsampleKernelSizes: number[];
  resblockKernelSizes: number[];
  resblockDilationSizes: number[][];
}

export interface OmniConfig {
  thinker: ThinkerConfig;
  /** Null when config.json has no talker (a text-only checkpoint). */
  talker: TalkerConfig | null;
  token2wav: { dit: DitConfig; bigvgan: BigVganConfig } | null;
  enableAudioOutput: boolean;
}

/** Reads typed values out of one JSON object, naming the full key path in every error. */
class ConfigSection {
  constructor(
    private readonly values: Record<string, unknown>,
    readonly path: string,
    private readonly file: string,
  ) {}

  static root(json: unknown, file: string): ConfigSection {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new OmniError('BAD_CONFIG', `${file} is not a JSON object`);
    }
    return new ConfigSection(json as Record<string, unknown>, '', file);
  }

  key(name: string): string {
    return this.path ? `${this.path}.${name}` : name;
  }

  fail(name: string, expected: string): OmniError {
    const value = this.values[name];
    const shown = value === undefined ? 'missing' : `${JSON.stringify(value)}`;
    return new OmniError('BAD_CONFIG', `${this.file}: ${this.key(name)} is ${shown}; expected ${expected}. Fix config.json or use the checkpoint's own`);
  }

  unsupported(name: string, why: string): OmniError {
    return new OmniError('UNSUPPORTED_CONFIG', `${this.file}: ${this.key(name)} is ${JSON.stringify(this.values[name])}; ${why}`);
  }

  has(name: string): boolean {
    return this.values[name] !== undefined && this.values[name] !== null;
  }

  raw(name: string): unknown {
    return this.values[name];
  }

  section(name: string): ConfigSection {
    const v = this.values[name];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw this.fail(name, 'an object');
    return new ConfigSection(v as Record<string, unknown>, this.key(name), this.file);
  }

  optionalSection(name: string): ConfigSection | null {
    return this.has(name) ? this.section(name) : null;
  }

  int(name: string, min = 1): number {
    const v = this.values[name];
    if (!Number.isSafeInteger(v) || (v as number) < min) throw this.fail(name, `an integer ≥ ${min}`);
    return v as number;
  }

  optionalInt(name: string): number | null {
    return this.has(name) ? this.int(name, 0) : null;
  }

  positive(name: string): number {
    const v = this.values[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw this.fail(name, 'a positive number');
    return v;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.values[name] ?? fallback;
    if (typeof v !== 'boolean') throw this.fail(name, 'true or false');
    return v;
  }

  ints(name: string, min: number, length?: number): number[] {
    const v = this.values[name];
    const ok = Array.isArray(v) && (length === undefined || v.length === length) && v.every((x) => Number.isSafeInteger(x) && x >= min);
    if (!ok) throw this.fail(name, `a list of ${length ?? 'some'} integers ≥ ${min}`);
    return [...(v as number[])];
  }

  /** Requires a string value among `allowed` (default `fallback` when absent); others are UNSUPPORTED_CONFIG. */
  oneOf(name: string, allowed: readonly string[], fallback: string, why: string): string {
    const v = this.values[name] ?? fallback;
    if (typeof v !== 'string') throw this.fail(name, 'a string');
    if (!allowed.includes(v)) throw this.unsupported(name, `${why} (supported: ${allowed.join(', ')})`);
    return v;
  }

  /** A condition on values already read; `name` is the key the message blames. */
  check(ok: boolean, name: string, expected: string): void {
    if (!ok) throw this.fail(name, expected);
  }
}

/** The M-RoPE section and theta, from `rope_scaling` (transformers ≤ 4.5x) or `rope_parameters` (newer). */
function readRope(s: ConfigSection, headDim: number): { ropeTheta: number; mropeSection: [number, number, number] } {
  const rope = s.optionalSection('rope_parameters') ?? s.section('rope_scaling');
  const kind = rope.has('rope_type') ? 'rope_type' : 'type';
  rope.oneOf(kind, ['default', 'mrope'], 'default', 'only plain M-RoPE (no scaling) is implemented');
  const mropeSection = rope.ints('mrope_section', 1, 3) as [number, number, number];
  rope.check(mropeSection[0] + mropeSection[1] + mropeSection[2] === headDim / 2, 'mrope_section', `three counts summing to head_dim / 2 = ${headDim / 2}`);
  const ropeTheta = s.has('rope_theta') ? s.positive('rope_theta') : rope.positive('rope_theta');
  return { ropeTheta, mropeSection };
}

function readDecoder(s: ConfigSection): DecoderConfig {
  s.oneOf('hidden_act', ['silu'], 'silu', 'the decoder MLP is SwiGLU');
  if (s.bool('use_sliding_window', false)) throw s.unsupported('use_sliding_window', 'sliding-window attention is not implemented; set it to false');
  const hidden = s.int('hidden_size');
  const heads = s.int('num_attention_heads');
  const kvHeads = s.int('num_key_value_heads');
  s.check(heads % kvHeads === 0, 'num_key_value_heads', `a divisor of num_attention_heads ${heads} (grouped-query attention)`);
  let headDim: number;
  if (s.has('head_dim')) {
    headDim = s.int('head_dim');
  } else {
    s.check(hidden % heads === 0, 'hidden_size', `a multiple of num_attention_heads ${heads} (no explicit head_dim)`);
    headDim = hidden / heads;
  }
  s.check(headDim % 2 === 0, s.has('head_dim') ? 'head_dim' : 'hidden_size', 'an even head size (rotary pairs)');
  return {
    hidden,
    layers: s.int('num_hidden_layers'),
    heads,
    kvHeads,
    headDim,
    intermediate: s.int('intermediate_size'),
    rmsEps: s.positive('rms_norm_eps'),
    ...readRope(s, headDim),
    vocab: s.int('vocab_size'),
    maxPositions: s.int('max_position_embeddings'),
  };
}

function readTokenIds(s: ConfigSection, vocab: number): MultimodalTokenIds {
  const id = (name: string) => {
    const v = s.int(name, 0);
    s.check(v < vocab, name, `a token id below the thinker vocabulary size ${vocab}`);
    return v;
  };
  return {
    audio: id('audio_token_index'),
    audioStart: id('audio_start_token_id'),
    audioEnd: id('audio_end_token_id'),
    image: id('image_token_index'),
    video: id('video_token_index'),
    visionStart: id('vision_start_token_id'),
    visionEnd: id('vision_end_token_id'),
  };
}

function readAudio(s: ConfigSection): AudioEncoderConfig {
  s.oneOf('activation_function', ['gelu'], 'gelu', 'the audio encoder uses exact GELU');
  if (s.bool('scale_embedding', false)) throw s.unsupported('scale_embedding', 'embedding scaling is not implemented; Qwen2.5-Omni sets it to false');
  const dModel = s.int('d_model');
  const heads = s.int('encoder_attention_heads');
  s.check(dModel % heads === 0, 'd_model', `a multiple of encoder_attention_heads ${heads}`);
  // The sinusoid table splits channels into sin and cos halves, with log spacing over half − 1 steps.
  s.check(dModel % 2 === 0 && dModel >= 4, 'd_model', 'an even width ≥ 4 (sinusoidal positions)');
  return {
    melBins: s.int('num_mel_bins'),
    dModel,
    layers: s.int('encoder_layers'),
    heads,
    headDim: dModel / heads,
    ffn: s.int('encoder_ffn_dim'),
    maxSourcePositions: s.int('max_source_positions'),
    nWindow: s.int('n_window'),
    outputDim: s.int('output_dim'),
  };
}

function readVision(s: ConfigSection): VisionEncoderConfig {
  s.oneOf('hidden_act', ['silu'], 'silu', 'the vision MLP is SwiGLU');
  const depth = s.int('depth');
  const hidden = s.int('hidden_size');
  const heads = s.int('num_heads');
  s.check(hidden % heads === 0, 'hidden_size', `a multiple of num_heads ${heads}`);
  const headDim = hidden / heads;
  // 2-D rotary: half the head rotates by row, half by column, each in pairs.
  s.check(headDim % 4 === 0, 'hidden_size', `hidden_size / num_heads (now ${headDim}) to be a multiple of 4 for the 2-D rotary`);
  const patchSize = s.int('patch_size');
  const spatialMergeSize = s.int('spatial_merge_size');
  const windowSize = s.int('window_size');
  s.check(windowSize >= patchSize * spatialMergeSize, 'window_size', `at least patch_size × spatial_merge_size = ${patchSize * spatialMergeSize} pixels`);
  const fullAttnBlocks = s.ints('fullatt_block_indexes', 0);
  s.check(fullAttnBlocks.every((b) => b < depth), 'fullatt_block_indexes', `block indexes below depth ${depth}`);
  return {
    depth,
    hidden,
    heads,
    headDim,
    intermediate: s.int('intermediate_size'),
    inChannels: s.int('in_channels'),
    patchSize,
    temporalPatchSize: s.int('temporal_patch_size'),
    spatialMergeSize,
    windowSize,
    fullAttnBlocks,
    outHidden: s.int('out_hidden_size'),
    tokensPerSecond: s.positive('tokens_per_second'),
  };
}

function readThinker(s: ConfigSection): ThinkerConfig {
  const textSection = s.section('text_config');
  const text: ThinkerTextConfig = { ...readDecoder(textSection), tieWordEmbeddings: textSection.bool('tie_word_embeddings', false) };
  const audioSection = s.section('audio_config');
  const audio = readAudio(audioSection);
  audioSection.check(audio.outputDim === text.hidden, 'output_dim', `the thinker hidden size ${text.hidden} (audio features replace token embeddings)`);
  const visionSection = s.section('vision_config');
  const vision = readVision(visionSection);
  visionSection.check(vision.outHidden === text.hidden, 'out_hidden_size', `the thinker hidden size ${text.hidden} (image features replace token embeddings)`);
  const optionalId = (name: string) => {
    const v = s.optionalInt(name);
    s.check(v === null || v < text.vocab, name, `a token id below the vocabulary size ${text.vocab}`);
    return v;
  };
  return {
    text,
    audio,
    vision,
    tokens: {
      ...readTokenIds(s, text.vocab),
      user: s.int('user_token_id', 0),
      bos: optionalId('bos_token_id'),
      eos: optionalId('eos_token_id'),
      pad: optionalId('pad_token_id'),
    },
    positionIdPerSeconds: s.positive('position_id_per_seconds'),
    secondsPerChunk: s.positive('seconds_per_chunk'),
  };
}

function readTalker(s: ConfigSection, thinker: ThinkerConfig): TalkerConfig {
  const decoder = readDecoder(s);
  const embeddingSize = s.int('embedding_size');
  s.check(embeddingSize === thinker.text.hidden, 'embedding_size', `the thinker hidden size ${thinker.text.hidden} (talker inputs are thinker states)`);
  const codecId = (name: string) => {
    const v = s.int(name, 0);
    s.check(v < decoder.vocab, name, `a codec id below the talker vocab_size ${decoder.vocab}`);
    return v;
  };
  const textId = (name: string) => {
    const v = s.int(name, 0);
    s.check(v < thinker.text.vocab, name, `a token id below the thinker vocabulary size ${thinker.text.vocab}`);
    return v;
  };
  return {
    ...decoder,
    embeddingSize,
    tokens: readTokenIds(s, thinker.text.vocab),
    codec: {
      pad: codecId('tts_codec_pad_token_id'),
      start: codecId('tts_codec_start_token_id'),
      end: codecId('tts_codec_end_token_id'),
      mask: codecId('tts_codec_mask_token_id'),
    },
    ttsText: { pad: textId('tts_text_pad_token_id'), start: textId('tts_text_start_token_id'), end: textId('tts_text_end_token_id') },
    positionIdPerSeconds: s.positive('position_id_per_seconds'),
    secondsPerChunk: s.positive('seconds_per_chunk'),
    spatialMergeSize: s.int('spatial_merge_size'),
  };
}

function readDit(s: ConfigSection): DitConfig {
  const layers = s.int('num_hidden_layers');
  const headDim = s.int('head_dim');
  s.check(headDim % 2 === 0, 'head_dim', 'an even head size (rotary pairs)');
  const layerList = (name: string) => {
    const list = s.ints(name, 0);
    s.check(list.every((l) => l < layers), name, `layer indexes below num_hidden_layers ${layers}`);
    return list;
  };
  const channels = s.ints('enc_channels', 1);
  // blocks[0] is a TDNN, the middle ones SE-Res2Net, the last one the MFA conv.
  s.check(channels.length >= 3, 'enc_channels', 'at least 3 channel counts (first TDNN, SE-Res2Net blocks, MFA)');
  const kernelSizes = s.ints('enc_kernel_sizes', 1, channels.length);
  const dilations = s.ints('enc_dilations', 1, channels.length);
  const res2netScale = s.int('enc_res2net_scale');
  s.check(channels.slice(1, -1).every((c) => c % res2netScale === 0), 'enc_res2net_scale', `a divisor of the SE-Res2Net channel counts ${channels.slice(1, -1).join(', ')}`);
  return {
    hidden: s.int('hidden_size'),
    layers,
    heads: s.int('num_attention_heads'),
    headDim,
    ffMult: s.int('ff_mult'),
    embDim: s.int('emb_dim'),
    numEmbeds: s.int('num_embeds'),
    repeats: s.int('repeats'),
    melDim: s.int('mel_dim'),
    blockSize: s.int('block_size'),
    lookAheadLayers: layerList('look_ahead_layers'),
    lookBackwardLayers: layerList('look_backward_layers'),
    ropeTheta: s.positive('rope_theta'),
    ecapa: {
      condDim: s.int('enc_emb_dim'),
      outDim: s.int('enc_dim'),
      channels,
      kernelSizes,
      dilations,
      attentionChannels: s.int('enc_attention_channels'),
      res2netScale,
      seChannels: s.int('enc_se_channels'),
    },
  };
}

function readBigVgan(s: ConfigSection): BigVganConfig {
  const upsampleRates = s.ints('upsample_rates', 1);
  const upsampleKernelSizes = s.ints('upsample_kernel_sizes', 1, upsampleRates.length);
  // ConvTranspose padding (k − r) / 2 gives exactly ×r samples only when k − r is even and ≥ 0 (fact sheet §8.4).
  const exact = upsampleRates.every((r, i) => upsampleKernelSizes[i] >= r && (upsampleKernelSizes[i] - r) % 2 === 0);
  if (!exact) throw s.unsupported('upsample_kernel_sizes', `each kernel minus its rate (${upsampleRates.join(', ')}) must be even and ≥ 0 for exact upsampling`);
  const upsampleInitialChannel = s.int('upsample_initial_channel');
  s.check(upsampleInitialChannel % 2 ** upsampleRates.length === 0, 'upsample_initial_channel', `a multiple of 2^${upsampleRates.length} (channels halve at every stage)`);
  const resblockKernelSizes = s.ints('resblock_kernel_sizes', 1);
  const dilations = s.raw('resblock_dilation_sizes');
  const validDilations = Array.isArray(dilations) && dilations.length === resblockKernelSizes.length
    && dilations.every((d) => Array.isArray(d) && d.length > 0 && d.every((x) => Number.isSafeInteger(x) && x >= 1));
  s.check(validDilations, 'resblock_dilation_sizes', `${resblockKernelSizes.length} non-empty lists of integers ≥ 1, one per resblock kernel`);
  return {
    melDim: s.int('mel_dim'),
    upsampleInitialChannel,
    upsampleRates,
    upsampleKernelSizes,
    resblockKernelSizes,
    resblockDilationSizes: (dilations as number[][]).map((d) => [...d]),
  };
}

/** Parses and validates a Qwen2.5-Omni config.json (already JSON-decoded). */
export function parseOmniConfig(json: unknown, file = 'config.json'): OmniConfig {
  const root = ConfigSection.root(json, file);
  root.oneOf('model_type', ['qwen2_5_omni'], 'qwen2_5_omni', 'this runtime runs Qwen2.5-Omni checkpoints');
  const thinker = readThinker(root.section('thinker_config'));
  const talkerSection = root.optionalSection('talker_config');
  const token2wavSection = root.optionalSection('token2wav_config');
  return {
    thinker,
    talker: talkerSection && readTalker(talkerSection, thinker),
    token2wav: token2wavSection && {
      dit: readDit(token2wavSection.section('dit_config')),
      bigvgan: readBigVgan(token2wavSection.section('bigvgan_config')),
    },
    enableAudioOutput: root.bool('enable_audio_output', true),
  };
}

/** Decodes config.json text, then `parseOmniConfig`. */
export function parseOmniConfigText(text: string, file = 'config.json'): OmniConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new OmniError('BAD_CONFIG', `${file} is not valid JSON (${(e as Error).message})`);
  }
  return parseOmniConfig(json, file);
}

/** One expected tensor shape, and the config numbers it follows from (for the message). */
interface ShapeExpectation {
  tensor: string;
  shape: number[];
  because: string;
  /** May be absent (the thinker's lm_head: then tied to the embedding, fact sheet §2.1). */
  optional?: boolean;
}

/** A numbered block list (`prefix.N.…`) and how many blocks the config says it has. */
interface LayerCountExpectation {
  prefix: string;
  count: number;
  because: string;
}

function thinkerExpectations(t: ThinkerConfig): { shapes: ShapeExpectation[]; counts: LayerCountExpectation[] } {
  const { text, audio, vision } = t;
  const mergedWidth = vision.hidden * vision.spatialMergeSize ** 2;
  const p = 'thinker.';
  return {
    shapes: [
      { tensor: `${p}model.embed_tokens.weight`, shape: [text.vocab, text.hidden], because: `vocab_size ${text.vocab}, hidden_size ${text.hidden}` },
      { tensor: `${p}model.layers.0.self_attn.q_proj.weight`, shape: [text.heads * text.headDim, text.hidden], because: `${text.heads} heads × head_dim ${text.headDim}, hidden ${text.hidden}` },
      { tensor: `${p}model.layers.0.self_attn.k_proj.weight`, shape: [text.kvHeads * text.headDim, text.hidden], because: `${text.kvHeads} kv heads × head_dim ${text.headDim}, hidden ${text.hidden}` },
      { tensor: `${p}model.layers.0.mlp.gate_proj.weight`, shape: [text.intermediate, text.hidden], because: `intermediate_size ${text.intermediate}, hidden ${text.hidden}` },
      { tensor: `${p}lm_head.weight`, shape: [text.vocab, text.hidden], because: `vocab_size ${text.vocab}, hidden_size ${text.hidden}`, optional: true },
      { tensor: `${p}audio_tower.conv1.weight`, shape: [audio.dModel, audio.melBins, 3], because: `d_model ${audio.dModel}, num_mel_bins ${audio.melBins}` },
      { tensor: `${p}audio_tower.layers.0.fc1.weight`, shape: [audio.ffn, audio.dModel], because: `encoder_ffn_dim ${audio.ffn}, d_model ${audio.dModel}` },
      { tensor: `${p}audio_tower.proj.weight`, shape: [audio.outputDim, audio.dModel], because: `output_dim ${audio.outputDim}, d_model ${audio.dModel}` },
      {
        tensor: `${p}visual.patch_embed.proj.weight`,
        shape: [vision.hidden, vision.inChannels, vision.temporalPatchSize, vision.patchSize, vision.patchSize],
        because: `hidden_size ${vision.hidden}, in_channels ${vision.inChannels}, temporal_patch_size ${vision.temporalPatchSize}, patch_size ${vision.patchSize}`,
      },
      { tensor: `${p}visual.blocks.0.mlp.gate_proj.weight`, shape: [vision.intermediate, vision.hidden], because: `intermediate_size ${vision.intermediate}, hidden ${vision.hidden}` },
      { tensor: `${p}visual.merger.mlp.0.weight`, shape: [mergedWidth, mergedWidth], because: `hidden ${vision.hidden} × spatial_merge_size² ${vision.spatialMergeSize ** 2}` },
      { tensor: `${p}visual.merger.mlp.2.weight`, shape: [vision.outHidden, mergedWidth], because: `out_hidden_size ${vision.outHidden}` },
    ],
    counts: [
      { prefix: `${p}model.layers.`, count: text.layers, because: 'text_config.num_hidden_layers' },
      { prefix: `${p}audio_tower.layers.`, count: audio.layers, because: 'audio_config.encoder_layers' },
      { prefix: `${p}visual.blocks.`, count: vision.depth, because: 'vision_config.depth' },
    ],
  };
}

function talkerExpectations(t: TalkerConfig): { shapes: ShapeExpectation[]; counts: LayerCountExpectation[] } {
  return {
    shapes: [
      { tensor: 'talker.thinker_to_talker_proj.weight', shape: [t.hidden, t.embeddingSize], because: `hidden_size ${t.hidden}, embedding_size ${t.embeddingSize}` },
      { tensor: 'talker.model.embed_tokens.weight', shape: [t.vocab, t.embeddingSize], because: `vocab_size ${t.vocab}, embedding_size ${t.embeddingSize}` },
      { tensor: 'talker.model.layers.0.self_attn.q_proj.weight', shape: [t.heads * t.headDim, t.hidden], because: `${t.heads} heads × head_dim ${t.headDim}, hidden ${t.hidden}` },
      { tensor: 'talker.model.layers.0.self_attn.k_proj.weight', shape: [t.kvHeads * t.headDim, t.hidden], because: `${t.kvHeads} kv heads × head_dim ${t.headDim}, hidden ${t.hidden}` },
      { tensor: 'talker.model.layers.0.mlp.gate_proj.weight', shape: [t.intermediate, t.hidden], because: `intermediate_size ${t.intermediate}, hidden ${t.hidden}` },
      { tensor: 'talker.codec_head.weight', shape: [t.vocab, t.hidden], because: `vocab_size ${t.vocab}, hidden_size ${t.hidden}` },
    ],
    counts: [{ prefix: 'talker.model.layers.', count: t.layers, because: 'talker_config.num_hidden_layers' }],
  };
}

function token2wavExpectations(dit: DitConfig, vocoder: BigVganConfig): { shapes: ShapeExpectation[]; counts: LayerCountExpectation[] } {
  const d = 'token2wav.code2wav_dit_model.';
  const v = 'token2wav.code2wav_bigvgan_model.';
  const inputWidth = dit.melDim + dit.ecapa.outDim + dit.embDim + dit.ecapa.condDim;
  const stageChannels = (i: number) => vocoder.upsampleInitialChannel / 2 ** i;
  return {
    shapes: [
      { tensor: `${d}text_embed.codec_embed.weight`, shape: [dit.numEmbeds + 1, dit.embDim], because: `num_embeds ${dit.numEmbeds} + 1, emb_dim ${dit.embDim}` },
      {
        tensor: `${d}input_embed.proj.weight`,
        shape: [dit.hidden, inputWidth],
        because: `hidden ${dit.hidden}; mel ${dit.melDim} + enc_dim ${dit.ecapa.outDim} + emb_dim ${dit.embDim} + enc_emb_dim ${dit.ecapa.condDim}`,
      },
      { tensor: `${d}transformer_blocks.0.attn.to_q.weight`, shape: [dit.heads * dit.headDim, dit.hidden], because: `${dit.heads} heads × head_dim ${dit.headDim}, hidden ${dit.hidden}` },
      { tensor: `${d}transformer_blocks.0.ff.ff.0.weight`, shape: [dit.hidden * dit.ffMult, dit.hidden], because: `hidden ${dit.hidden} × ff_mult ${dit.ffMult}` },
      { tensor: `${d}proj_out.weight`, shape: [dit.melDim, dit.hidden], because: `mel_dim ${dit.melDim}, hidden ${dit.hidden}` },
      { tensor: `${v}conv_pre.weight`, shape: [vocoder.upsampleInitialChannel, vocoder.melDim, 7], because: `upsample_initial_channel ${vocoder.upsampleInitialChannel}, mel_dim ${vocoder.melDim}` },
      ...vocoder.upsampleRates.map((_, i) => ({
        tensor: `${v}ups.${i}.0.weight`,
        shape: [stageChannels(i), stageChannels(i + 1), vocoder.upsampleKernelSizes[i]],
        because: `stage ${i}: channels ${stageChannels(i)} → ${stageChannels(i + 1)}, kernel ${vocoder.upsampleKernelSizes[i]}`,
      })),
      { tensor: `${v}conv_post.weight`, shape: [1, stageChannels(vocoder.upsampleRates.length), 7], because: `${vocoder.upsampleRates.length} upsampling stages` },
    ],
    counts: [
      { prefix: `${d}transformer_blocks.`, count: dit.layers, because: 'dit_config.num_hidden_layers' },
      { prefix: `${v}ups.`, count: vocoder.upsampleRates.length, because: 'bigvgan_config.upsample_rates' },
    ],
  };
}

export type ModelPart = 'thinker' | 'talker' | 'token2wav';

/**
 * Checks the config against the checkpoint's tensor headers for the parts
 * asked for (default: every part the config describes). A tensor the
 * config implies is absent → MISSING_TENSOR (the thinker's lm_head may be
 * absent: it is then tied to the embedding); a shape or block count that
 * disagrees → SHAPE_MISMATCH with both numbers.
 */
export function checkConfigAgainstWeights(config: OmniConfig, weights: TensorStore, parts?: readonly ModelPart[]): void {
  const wanted = parts ?? (['thinker', 'talker', 'token2wav'] as const).filter((p) => p === 'thinker' || config[p] !== null);
  const names = weights.names();
  for (const part of wanted) {
    let expected: { shapes: ShapeExpectation[]; counts: LayerCountExpectation[] };
    if (part === 'thinker') expected = thinkerExpectations(config.thinker);
    else if (part === 'talker') {
      if (!config.talker) throw new OmniError('BAD_CONFIG', 'config.json has no talker_config, but the talker was asked for');
      expected = talkerExpectations(config.talker);
    } else {
      if (!config.token2wav) throw new OmniError('BAD_CONFIG', 'config.json has no token2wav_config, but token2wav was asked for');
      expected = token2wavExpectations(config.token2wav.dit, config.token2wav.bigvgan);
    }
    for (const { tensor, shape, because, optional } of expected.shapes) {
      if (optional && !weights.has(tensor)) continue;
      const actual = weights.info(tensor).shape;
      if (actual.length !== shape.length || actual.some((d, i) => d !== shape[i])) {
        throw new OmniError('SHAPE_MISMATCH', `${tensor} is [${actual.join(', ')}], but config.json implies [${shape.join(', ')}] (${because}); config.json and the weights are of different models`);
      }
    }
    for (const { prefix, count, because } of expected.counts) {
      const present = new Set<number>();
      for (const name of names) {
        if (!name.startsWith(prefix)) continue;
        const index = Number.parseInt(name.slice(prefix.length), 10);
        if (Number.isSafeInteger(index)) present.add(index);
      }
      // Blocks 0…k−1 with k ≠ count: another model size. A hole below count: an incomplete checkpoint.
      const hole = Array.from({ length: count }, (_, i) => i).find((i) => !present.has(i));
      if (hole !== undefined && hole < present.size) {
        throw new OmniError('MISSING_TENSOR', `${prefix}${hole}.* is missing, though the checkpoint has ${present.size} ${prefix}N blocks (${because} is ${count})`);
      }
      if (present.size !== count) {
        throw new OmniError('SHAPE_MISMATCH', `the checkpoint has ${present.size} ${prefix}N blocks, but ${because} is ${count}`);
      }
    }
  }
}

/**
 * Reads config.json beside the weights, parses it and checks it against
 * the tensor headers. `readText` is `Checkpoint.readText`.
 */
export async function loadOmniConfig(
  checkpoint: TensorStore & { readText(fileName: string): Promise<string | null> },
  parts?: readonly ModelPart[],
): Promise<OmniConfig> {
  const text = await checkpoint.readText('config.json');
  if (text === null) {
    throw new OmniError('BAD_CONFIG', 'no config.json beside the weights; open the checkpoint folder (not a lone .safetensors) or add the model\'s config.json');
  }
  const config = parseOmniConfigText(text);
  checkConfigAgainstWeights(config, checkpoint, parts);
  return config;
}
