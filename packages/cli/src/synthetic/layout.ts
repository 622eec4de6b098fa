/**
 * Every tensor of a Qwen2.5-Omni checkpoint, named and shaped as
 * `save_pretrained` writes them (fact sheet §2; fixtures/golden/tiny-omni),
 * derived from a parsed config, with how to initialise it. Order: module
 * registration order (thinker: audio tower, vision, text model, lm_head;
 * talker; token2wav), which is the order the shards are filled in.
 */
import type { BigVganConfig, DecoderConfig, DitConfig, OmniConfig, TalkerConfig, ThinkerConfig } from '@omniweb/core';

/**
 * How a tensor's values are drawn. Scales keep a forward pass finite and
 * roughly unit-sized: matrices N(0, 1/fan_in) preserve activation variance,
 * norm gains ≈ 1, biases small.
 */
export type Init =
  | { kind: 'normal'; mean: number; std: number }
  /** Fixed values (buffers computed from the config). */
  | { kind: 'values'; values: Float32Array };

export interface TensorPlan {
  name: string;
  shape: number[];
  init: Init;
}

const BIAS_STD = 0.02;
const NORM_GAIN_STD = 0.02;
/** SnakeBeta α and β are stored as logarithms: values near 0 mean a scale near 1. */
const SNAKE_LOG_STD = 0.1;
/** Sinusoidal time-embedding width of the DiT's timestep MLP input (fact sheet §8.2 step 1). */
const DIT_TIME_FREQ_DIM = 256;

/** Collects tensors under a name prefix. */
class Builder {
  readonly tensors: TensorPlan[] = [];

  add(name: string, shape: number[], init: Init): void {
    this.tensors.push({ name, shape, init });
  }

  /** A weight whose outputs each sum `fanIn` products: std 1/√fanIn. */
  weight(name: string, shape: number[], fanIn = shape.slice(1).reduce((a, b) => a * b, 1)): void {
    this.add(name, shape, { kind: 'normal', mean: 0, std: 1 / Math.sqrt(fanIn) });
  }

  bias(name: string, size: number): void {
    this.add(name, [size], { kind: 'normal', mean: 0, std: BIAS_STD });
  }

  /** Linear / Conv1d: `prefix.weight` [out, in, …kernel] and optionally `prefix.bias` [out]. */
  linear(prefix: string, shape: number[], bias: boolean): void {
    this.weight(`${prefix}.weight`, shape);
    if (bias) this.bias(`${prefix}.bias`, shape[0]);
  }

  /** RMSNorm (gain only) or LayerNorm (gain and bias). */
  norm(prefix: string, size: number, bias: boolean): void {
    this.add(`${prefix}.weight`, [size], { kind: 'normal', mean: 1, std: NORM_GAIN_STD });
    if (bias) this.bias(`${prefix}.bias`, size);
  }

  /** An embedding table read row by row; rows of norm ≈ 1 keep a tied output head's logits unit-sized. */
  embedding(name: string, rows: number, width: number): void {
    this.add(name, [rows, width], { kind: 'normal', mean: 0, std: 1 / Math.sqrt(width) });
  }
}

/** A Qwen2 decoder stack (thinker text model, talker): q/k/v with bias, o_proj and SwiGLU without. */
function decoderLayers(b: Builder, prefix: string, d: DecoderConfig): void {
  for (let i = 0; i < d.layers; i++) {
    const p = `${prefix}.layers.${i}`;
    b.linear(`${p}.self_attn.q_proj`, [d.heads * d.headDim, d.hidden], true);
    b.linear(`${p}.self_attn.k_proj`, [d.kvHeads * d.headDim, d.hidden], true);
    b.linear(`${p}.self_attn.v_proj`, [d.kvHeads * d.headDim, d.hidden], true);
    b.linear(`${p}.self_attn.o_proj`, [d.hidden, d.heads * d.headDim], false);
    b.linear(`${p}.mlp.gate_proj`, [d.intermediate, d.hidden], false);
    b.linear(`${p}.mlp.up_proj`, [d.intermediate, d.hidden], false);
    b.linear(`${p}.mlp.down_proj`, [d.hidden, d.intermediate], false);
    b.norm(`${p}.input_layernorm`, d.hidden, false);
    b.norm(`${p}.post_attention_layernorm`, d.hidden, false);
  }
  b.norm(`${prefix}.norm`, d.hidden, false);
}

/** fact sheet §2.1–§2.3 */
function thinkerTensors(b: Builder, t: ThinkerConfig): void {
  const { audio, vision, text } = t;
  const a = 'thinker.audio_tower';
  b.linear(`${a}.conv1`, [audio.dModel, audio.melBins, 3], true);
  b.linear(`${a}.conv2`, [audio.dModel, audio.dModel, 3], true);
  b.embedding(`${a}.audio_bos_eos_token.weight`, 2, audio.outputDim);
  for (let i = 0; i < audio.layers; i++) {
    const p = `${a}.layers.${i}`;
    b.linear(`${p}.self_attn.k_proj`, [audio.dModel, audio.dModel], false);
    b.linear(`${p}.self_attn.v_proj`, [audio.dModel, audio.dModel], true);
    b.linear(`${p}.self_attn.q_proj`, [audio.dModel, audio.dModel], true);
    b.linear(`${p}.self_attn.out_proj`, [audio.dModel, audio.dModel], true);
    b.norm(`${p}.self_attn_layer_norm`, audio.dModel, true);
    b.linear(`${p}.fc1`, [audio.ffn, audio.dModel], true);
    b.linear(`${p}.fc2`, [audio.dModel, audio.ffn], true);
    b.norm(`${p}.final_layer_norm`, audio.dModel, true);
  }
  b.norm(`${a}.ln_post`, audio.dModel, true);
  b.linear(`${a}.proj`, [audio.outputDim, audio.dModel], true);

  const v = 'thinker.visual';
  b.linear(`${v}.patch_embed.proj`, [vision.hidden, vision.inChannels, vision.temporalPatchSize, vision.patchSize, vision.patchSize], false);
  for (let i = 0; i < vision.depth; i++) {
    const p = `${v}.blocks.${i}`;
    b.norm(`${p}.norm1`, vision.hidden, false);
    b.norm(`${p}.norm2`, vision.hidden, false);
    for (const proj of ['q', 'k', 'v', 'proj']) b.linear(`${p}.attn.${proj}`, [vision.hidden, vision.hidden], true);
    b.linear(`${p}.mlp.gate_proj`, [vision.intermediate, vision.hidden], true);
    b.linear(`${p}.mlp.up_proj`, [vision.intermediate, vision.hidden], true);
    b.linear(`${p}.mlp.down_proj`, [vision.hidden, vision.intermediate], true);
  }
  const merged = vision.hidden * vision.spatialMergeSize ** 2;
  b.norm(`${v}.merger.ln_q`, vision.hidden, false);
  b.linear(`${v}.merger.mlp.0`, [merged, merged], true);
  b.linear(`${v}.merger.mlp.2`, [vision.outHidden, merged], true);

  b.embedding('thinker.model.embed_tokens.weight', text.vocab, text.hidden);
  decoderLayers(b, 'thinker.model', text);
  if (!text.tieWordEmbeddings) b.embedding('thinker.lm_head.weight', text.vocab, text.hidden);
}

/** fact sheet §2.4 */
function talkerTensors(b: Builder, t: TalkerConfig): void {
  b.linear('talker.thinker_to_talker_proj', [t.hidden, t.embeddingSize], true);
  b.embedding('talker.model.embed_tokens.weight', t.vocab, t.embeddingSize);
  decoderLayers(b, 'talker.model', t);
  b.weight('talker.codec_head.weight', [t.vocab, t.hidden]);
}

/** fact sheet §2.5 */
function ditTensors(b: Builder, dit: DitConfig): void {
  const d = 'token2wav.code2wav_dit_model';
  b.linear(`${d}.time_embed.time_mlp.0`, [dit.hidden, DIT_TIME_FREQ_DIM], true);
  b.linear(`${d}.time_embed.time_mlp.2`, [dit.hidden, dit.hidden], true);
  b.embedding(`${d}.text_embed.codec_embed.weight`, dit.numEmbeds + 1, dit.embDim);
  const { ecapa } = dit;
  b.linear(`${d}.input_embed.proj`, [dit.hidden, dit.melDim + ecapa.outDim + dit.embDim + ecapa.condDim], true);
  const s = `${d}.input_embed.spk_encoder`;
  const ch = ecapa.channels;
  b.linear(`${s}.blocks.0.conv`, [ch[0], dit.melDim, ecapa.kernelSizes[0]], true);
  for (let i = 1; i < ch.length - 1; i++) {
    const p = `${s}.blocks.${i}`;
    const part = ch[i] / ecapa.res2netScale;
    b.linear(`${p}.tdnn1.conv`, [ch[i], ch[i - 1], 1], true);
    for (let j = 0; j < ecapa.res2netScale - 1; j++) b.linear(`${p}.res2net_block.blocks.${j}.conv`, [part, part, ecapa.kernelSizes[i]], true);
    b.linear(`${p}.tdnn2.conv`, [ch[i], ch[i], 1], true);
    b.linear(`${p}.se_block.conv1`, [ecapa.seChannels, ch[i], 1], true);
    b.linear(`${p}.se_block.conv2`, [ch[i], ecapa.seChannels, 1], true);
  }
  const last = ch[ch.length - 1];
  const concatenated = ch.slice(1, -1).reduce((x, y) => x + y, 0);
  b.linear(`${s}.mfa.conv`, [last, concatenated, ecapa.kernelSizes[ch.length - 1]], true);
  // Attentive statistics pooling sees [features, mean, std]: three times the MFA width.
  b.linear(`${s}.asp.tdnn.conv`, [ecapa.attentionChannels, last * 3, 1], true);
  b.linear(`${s}.asp.conv`, [last, ecapa.attentionChannels, 1], true);
  b.linear(`${s}.fc`, [ecapa.outDim, last * 2, 1], true);
  // A persistent buffer in the transformers code that wrote tiny-omni: the rotary's inverse frequencies.
  const invFreq = Float32Array.from({ length: dit.headDim / 2 }, (_, i) => 1 / dit.ropeTheta ** ((2 * i) / dit.headDim));
  b.add(`${d}.rotary_embed.inv_freq`, [invFreq.length], { kind: 'values', values: invFreq });
  for (let i = 0; i < dit.layers; i++) {
    const p = `${d}.transformer_blocks.${i}`;
    const width = dit.heads * dit.headDim;
    // Six modulation vectors per block: shift, scale, gate for attention and for the MLP.
    b.linear(`${p}.attn_norm.linear`, [6 * dit.hidden, dit.hidden], true);
    for (const proj of ['to_q', 'to_k', 'to_v']) b.linear(`${p}.attn.${proj}`, [width, dit.hidden], true);
    b.linear(`${p}.attn.to_out.0`, [dit.hidden, width], true);
    b.linear(`${p}.ff.ff.0`, [dit.hidden * dit.ffMult, dit.hidden], true);
    b.linear(`${p}.ff.ff.3`, [dit.hidden, dit.hidden * dit.ffMult], true);
  }
  b.linear(`${d}.norm_out.linear`, [2 * dit.hidden, dit.hidden], true);
  b.linear(`${d}.proj_out`, [dit.melDim, dit.hidden], true);
}

/** fact sheet §2.6 */
function bigVganTensors(b: Builder, v: BigVganConfig): void {
  const g = 'token2wav.code2wav_bigvgan_model';
  const channels = (stage: number) => v.upsampleInitialChannel / 2 ** stage;
  const snake = (prefix: string, size: number) => {
    for (const p of ['alpha', 'beta']) b.add(`${prefix}.act.${p}`, [size], { kind: 'normal', mean: 0, std: SNAKE_LOG_STD });
  };
  b.linear(`${g}.conv_pre`, [channels(0), v.melDim, 7], true);
  v.upsampleRates.forEach((rate, i) => {
    // ConvTranspose1d weight is [in, out, kernel]; each output sample gathers about in·kernel/rate products.
    b.weight(`${g}.ups.${i}.0.weight`, [channels(i), channels(i + 1), v.upsampleKernelSizes[i]], (channels(i) * v.upsampleKernelSizes[i]) / rate);
    b.bias(`${g}.ups.${i}.0.bias`, channels(i + 1));
  });
  v.upsampleRates.forEach((_, i) => {
    const c = channels(i + 1);
    v.resblockKernelSizes.forEach((kernel, j) => {
      const p = `${g}.resblocks.${i * v.resblockKernelSizes.length + j}`;
      const dilations = v.resblockDilationSizes[j];
      dilations.forEach((_d, m) => b.linear(`${p}.convs1.${m}`, [c, c, kernel], true));
      dilations.forEach((_d, m) => b.linear(`${p}.convs2.${m}`, [c, c, kernel], true));
      for (let a = 0; a < 2 * dilations.length; a++) snake(`${p}.activations.${a}`, c);
    });
  });
  const last = channels(v.upsampleRates.length);
  snake(`${g}.activation_post`, last);
  b.weight(`${g}.conv_post.weight`, [1, last, 7]);
}

/** Every tensor the config implies, in module order. */
export function checkpointLayout(config: OmniConfig): TensorPlan[] {
  const b = new Builder();
  thinkerTensors(b, config.thinker);
  if (config.talker) talkerTensors(b, config.talker);
  if (config.token2wav) {
    ditTensors(b, config.token2wav.dit);
    bigVganTensors(b, config.token2wav.bigvgan);
  }
  return b.tensors;
}
