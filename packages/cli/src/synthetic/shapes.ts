/**
 * The checkpoint shapes `omniweb make-checkpoint` writes, and their
 * config.json in the structure of the official one: the keys, nesting and
 * per-sub-config boilerplate of fixtures/golden/tiny-omni/config.json (written
 * by transformers 4.52.4 `save_pretrained`), with the sizes of each shape.
 * Sizes of 3B and 7B: fact sheet §2–§8.
 */

export const SHAPE_NAMES = ['3b', '7b', '0.5b-thinker', 'tiny'] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

interface DecoderSize {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  /** Rotary frequencies per (T, H, W) stream; sums to head_dim / 2. */
  mropeSection: [number, number, number];
}

interface DitSize {
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  embDim: number;
  lookAheadLayers: number[];
  lookBackwardLayers: number[];
  encChannels: number[];
  encDim: number;
  encEmbDim: number;
  encAttentionChannels: number;
  encSeChannels: number;
}

export interface ShapeSize {
  text: DecoderSize & { vocab: number; tieWordEmbeddings: boolean };
  audio: { dModel: number; layers: number; heads: number; ffn: number };
  vision: { depth: number; hidden: number; heads: number; intermediate: number; fullAttnBlocks: number[] };
  /** Null: a thinker-only checkpoint (no talker, no token2wav). */
  talker: (DecoderSize & { headDim: number }) | null;
  token2wav: { dit: DitSize; bigvganChannels: number } | null;
  /** What the numbers rest on; written to config.json as `_omniweb_note`. */
  note: string;
}

/** The real audio and vision towers: the same in 3B and 7B (fact sheet §2.2, §2.3, §3.2, §4.3). */
const REAL_AUDIO = { dModel: 1280, layers: 32, heads: 20, ffn: 5120 };
const REAL_VISION = { depth: 32, hidden: 1280, heads: 16, intermediate: 3420, fullAttnBlocks: [7, 15, 23, 31] };
/** The 7B talker (fact sheet §2.4); its `embedding_size` is the thinker width, set per shape. */
const REAL_TALKER = { hidden: 896, layers: 24, heads: 12, kvHeads: 4, headDim: 128, intermediate: 18944, mropeSection: [16, 24, 24] as [number, number, number] };
/** The token2wav DiT and BigVGAN (fact sheet §8.1, §8.4). */
const REAL_TOKEN2WAV = {
  dit: {
    hidden: 1024, layers: 22, heads: 16, headDim: 64, embDim: 512, lookAheadLayers: [10], lookBackwardLayers: [0, 20],
    encChannels: [256, 256, 256, 256, 768], encDim: 128, encEmbDim: 192, encAttentionChannels: 64, encSeChannels: 64,
  },
  bigvganChannels: 1536,
};
/** The tiny towers of fixtures/golden/tiny-omni (golden README). */
const TINY_AUDIO = { dModel: 32, layers: 2, heads: 2, ffn: 64 };
const TINY_VISION = { depth: 4, hidden: 32, heads: 2, intermediate: 64, fullAttnBlocks: [1, 3] };

const SYNTHETIC = 'Synthetic checkpoint written by `omniweb make-checkpoint`: seeded random weights, not a trained model.';
const STRUCTURE = 'Keys and boilerplate follow fixtures/golden/tiny-omni/config.json (transformers 4.52.4); the official file may differ in keys that do not change the model.';

export const SHAPES: Record<ShapeName, ShapeSize> = {
  '7b': {
    text: { hidden: 3584, layers: 28, heads: 28, kvHeads: 4, intermediate: 18944, vocab: 152064, tieWordEmbeddings: false, mropeSection: [16, 24, 24] },
    audio: REAL_AUDIO,
    vision: REAL_VISION,
    talker: REAL_TALKER,
    token2wav: REAL_TOKEN2WAV,
    note: `${SYNTHETIC} Sizes of Qwen2.5-Omni-7B from the fact sheet (§2–§8). ${STRUCTURE}`,
  },
  '3b': {
    text: { hidden: 2048, layers: 36, heads: 16, kvHeads: 2, intermediate: 11008, vocab: 151936, tieWordEmbeddings: true, mropeSection: [16, 24, 24] },
    audio: REAL_AUDIO,
    vision: REAL_VISION,
    talker: REAL_TALKER,
    token2wav: REAL_TOKEN2WAV,
    note: `${SYNTHETIC} Sizes of Qwen2.5-Omni-3B from the fact sheet (§2–§8). UNVERIFIED there, and chosen as its documented best guesses: `
      + 'the talker has the 7B talker\'s layers (24), heads (12), kv heads (4), head_dim (128) and intermediate size (18944), only hidden_size 896 and embedding_size 2048 being verified; '
      + 'the thinker lm_head is tied to embed_tokens as in Qwen2.5-3B (tie_word_embeddings true, no thinker.lm_head.weight); '
      + `token2wav is the 7B one; the shard count follows from 5 GB shards. ${STRUCTURE}`,
  },
  '0.5b-thinker': {
    text: { hidden: 896, layers: 24, heads: 14, kvHeads: 2, intermediate: 4864, vocab: 151936, tieWordEmbeddings: true, mropeSection: [8, 12, 12] },
    audio: TINY_AUDIO,
    vision: TINY_VISION,
    talker: null,
    token2wav: null,
    note: `${SYNTHETIC} Thinker only: a text model of the Qwen2.5-0.5B shape (24 layers, hidden 896, 14 heads, 2 kv heads, intermediate 4864, vocab 151936, `
      + 'embeddings tied as in Qwen2.5-0.5B, so no thinker.lm_head.weight; mrope_section [8, 12, 12] is [16, 24, 24] scaled to head_dim 64) '
      + `with tiny audio and vision towers (width 32) projecting to 896 so the config parses; no talker or token2wav, enable_audio_output false. ${STRUCTURE}`,
  },
  tiny: {
    text: { hidden: 32, layers: 2, heads: 2, kvHeads: 1, intermediate: 64, vocab: 151936, tieWordEmbeddings: false, mropeSection: [2, 3, 3] },
    audio: TINY_AUDIO,
    vision: TINY_VISION,
    talker: { hidden: 24, layers: 2, heads: 2, kvHeads: 1, headDim: 16, intermediate: 48, mropeSection: [2, 3, 3] },
    token2wav: {
      dit: {
        hidden: 32, layers: 3, heads: 2, headDim: 16, embDim: 16, lookAheadLayers: [1], lookBackwardLayers: [0, 2],
        encChannels: [32, 32, 32, 32, 96], encDim: 16, encEmbDim: 24, encAttentionChannels: 16, encSeChannels: 16,
      },
      bigvganChannels: 64,
    },
    note: `${SYNTHETIC} Every part of Qwen2.5-Omni at the sizes of fixtures/golden/tiny-omni (the real vocabulary, codec ids and token ids, tiny widths). ${STRUCTURE}`,
  },
};

/** Token ids every shape shares (fact sheet §6, §7.1). */
const MULTIMODAL_TOKENS = {
  audio_end_token_id: 151648,
  audio_start_token_id: 151647,
  audio_token_index: 151646,
  image_token_index: 151655,
  video_token_index: 151656,
  vision_end_token_id: 151653,
  vision_start_token_id: 151652,
};

/** The `PretrainedConfig` defaults transformers writes into every nested model config. */
const PRETRAINED_DEFAULTS = {
  _name_or_path: '', add_cross_attention: false, architectures: null, bad_words_ids: null, begin_suppress_tokens: null,
  bos_token_id: null, chunk_size_feed_forward: 0, cross_attention_hidden_size: null, decoder_start_token_id: null,
  diversity_penalty: 0, do_sample: false, early_stopping: false, encoder_no_repeat_ngram_size: 0, eos_token_id: null,
  exponential_decay_length_penalty: null, finetuning_task: null, forced_bos_token_id: null, forced_eos_token_id: null,
  id2label: { 0: 'LABEL_0', 1: 'LABEL_1' }, is_decoder: false, is_encoder_decoder: false, label2id: { LABEL_0: 0, LABEL_1: 1 },
  length_penalty: 1, max_length: 20, min_length: 0, no_repeat_ngram_size: 0, num_beam_groups: 1, num_beams: 1,
  num_return_sequences: 1, output_attentions: false, output_hidden_states: false, output_scores: false, pad_token_id: null,
  prefix: null, problem_type: null, pruned_heads: {}, remove_invalid_values: false, repetition_penalty: 1, return_dict: true,
  return_dict_in_generate: false, sep_token_id: null, suppress_tokens: null, task_specific_params: null, temperature: 1,
  tf_legacy_loss: false, tie_encoder_decoder: false, tie_word_embeddings: true, tokenizer_class: null, top_k: 50, top_p: 1,
  torch_dtype: null, torchscript: false, typical_p: 1, use_bfloat16: false,
};

/** Qwen2-decoder keys shared by the thinker text model and the talker. */
function decoderKeys(d: DecoderSize) {
  return {
    attention_dropout: 0, hidden_act: 'silu', hidden_size: d.hidden, initializer_range: 0.02, intermediate_size: d.intermediate,
    max_position_embeddings: 32768, max_window_layers: 28, num_attention_heads: d.heads, num_hidden_layers: d.layers,
    num_key_value_heads: d.kvHeads, rms_norm_eps: 1e-6, rope_theta: 1000000, sliding_window: 32768, use_cache: true, use_sliding_window: false,
  };
}

/** config.json of a shape as a JSON value; `torchDtype` is what the weights are stored as. */
export function shapeConfig(shape: ShapeSize, torchDtype: 'bfloat16' | 'float32'): Record<string, unknown> {
  const { text, audio, vision, talker, token2wav } = shape;
  const thinker = {
    ...MULTIMODAL_TOKENS,
    audio_config: {
      ...PRETRAINED_DEFAULTS, activation_dropout: 0, activation_function: 'gelu', attention_dropout: 0, d_model: audio.dModel, dropout: 0,
      encoder_attention_heads: audio.heads, encoder_ffn_dim: audio.ffn, encoder_layers: audio.layers, initializer_range: 0.02,
      max_source_positions: 1500, model_type: 'qwen2_5_omni_audio_encoder', n_window: 100, num_hidden_layers: audio.layers,
      num_mel_bins: 128, output_dim: text.hidden, scale_embedding: false,
    },
    bos_token_id: 151644,
    eos_token_id: 151645,
    initializer_range: 0.02,
    model_type: 'qwen2_5_omni_thinker',
    pad_token_id: 151643,
    position_id_per_seconds: 25,
    seconds_per_chunk: 2,
    text_config: {
      ...PRETRAINED_DEFAULTS, ...decoderKeys(text), model_type: 'qwen2_5_omni_text',
      rope_scaling: { mrope_section: text.mropeSection, rope_type: 'default', type: 'default' },
      tie_word_embeddings: text.tieWordEmbeddings, vocab_size: text.vocab,
    },
    user_token_id: 872,
    vision_config: {
      ...PRETRAINED_DEFAULTS, depth: vision.depth, fullatt_block_indexes: vision.fullAttnBlocks, hidden_act: 'silu', hidden_size: vision.hidden,
      in_channels: 3, initializer_range: 0.02, intermediate_size: vision.intermediate, model_type: 'qwen2_5_omni_vision_encoder',
      num_heads: vision.heads, out_hidden_size: text.hidden, patch_size: 14, spatial_merge_size: 2, temporal_patch_size: 2,
      tokens_per_second: 25, window_size: 112,
    },
    vision_token_id: 151654,
  };
  const config: Record<string, unknown> = {
    _omniweb_note: shape.note,
    architectures: ['Qwen2_5OmniForConditionalGeneration'],
    enable_audio_output: talker !== null,
    model_type: 'qwen2_5_omni',
    thinker_config: thinker,
    torch_dtype: torchDtype,
    transformers_version: '4.52.4',
  };
  if (talker) {
    config.talker_config = {
      ...MULTIMODAL_TOKENS, ...decoderKeys(talker), embedding_size: text.hidden, head_dim: talker.headDim, model_type: 'qwen2_5_omni_talker',
      position_id_per_seconds: 25, rope_scaling: { mrope_section: talker.mropeSection, type: 'default' }, seconds_per_chunk: 2,
      spatial_merge_size: 2, tts_codec_end_token_id: 8294, tts_codec_mask_token_id: 8296, tts_codec_pad_token_id: 8292,
      tts_codec_start_token_id: 8293, tts_text_end_token_id: 151861, tts_text_pad_token_id: 151859, tts_text_start_token_id: 151860,
      vocab_size: 8448,
    };
  }
  if (token2wav) {
    const { dit } = token2wav;
    config.token2wav_config = {
      bigvgan_config: {
        ...PRETRAINED_DEFAULTS, mel_dim: 80, model_type: 'qwen2_5_omni_bigvgan', resblock_dilation_sizes: [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        resblock_kernel_sizes: [3, 7, 11], upsample_initial_channel: token2wav.bigvganChannels, upsample_kernel_sizes: [11, 7, 4, 4, 4, 4],
        upsample_rates: [5, 3, 2, 2, 2, 2],
      },
      dit_config: {
        ...PRETRAINED_DEFAULTS, block_size: 24, dropout: 0.1, emb_dim: dit.embDim, enc_attention_channels: dit.encAttentionChannels,
        enc_channels: dit.encChannels, enc_dilations: [1, 2, 3, 4, 1], enc_dim: dit.encDim, enc_emb_dim: dit.encEmbDim,
        enc_kernel_sizes: [5, 3, 3, 3, 1], enc_res2net_scale: 2, enc_se_channels: dit.encSeChannels, ff_mult: 2, head_dim: dit.headDim,
        hidden_size: dit.hidden, look_ahead_layers: dit.lookAheadLayers, look_backward_layers: dit.lookBackwardLayers,
        max_position_embeddings: 32768, mel_dim: 80, model_type: 'qwen2_5_omni_dit', num_attention_heads: dit.heads, num_embeds: 8193,
        num_hidden_layers: dit.layers, repeats: 2, rope_theta: 10000,
      },
      model_type: 'qwen2_5_omni_token2wav',
    };
  }
  return config;
}

/** JSON text as transformers writes it: keys sorted at every level, two-space indent, final newline. */
export function hfJson(value: unknown): string {
  const sorted = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(sorted);
    if (v === null || typeof v !== 'object') return v;
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
  };
  return `${JSON.stringify(sorted(value), null, 2)}\n`;
}

/** generation_config.json: the official one is 74 bytes, so it holds no sampling settings (fact sheet §6). */
export const GENERATION_CONFIG = { _from_model_config: true, transformers_version: '4.52.4' };
