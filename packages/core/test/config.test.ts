import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { OmniError, type OmniErrorCode } from '../src/errors.js';
import { checkConfigAgainstWeights, loadOmniConfig, parseOmniConfig, parseOmniConfigText } from '../src/config.js';
import { openCheckpoint, openSafetensors, writeSafetensors, type Checkpoint, type HostArray } from '../src/weights/index.js';

const tinyOmni = fileURLToPath(new URL('../../../fixtures/golden/tiny-omni/', import.meta.url));
const configText = readFileSync(join(tinyOmni, 'config.json'), 'utf8');

/** A fresh copy of the fixture config to edit. */
function tinyConfig(): any {
  return JSON.parse(configText);
}

function failure(run: () => unknown): { code: OmniErrorCode; message: string } {
  try {
    run();
  } catch (e) {
    if (e instanceof OmniError) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected an OmniError');
}

describe('parseOmniConfig on tiny-omni', () => {
  const config = parseOmniConfig(tinyConfig());

  it('reads the thinker text decoder, deriving head_dim from hidden / heads', () => {
    expect(config.thinker.text).toEqual({
      hidden: 32, layers: 2, heads: 2, kvHeads: 1, headDim: 16, intermediate: 64, rmsEps: 1e-6, ropeTheta: 1e6,
      mropeSection: [2, 3, 3], vocab: 151936, maxPositions: 32768, tieWordEmbeddings: false,
    });
    expect(config.thinker.tokens).toEqual({
      audio: 151646, audioStart: 151647, audioEnd: 151648, image: 151655, video: 151656, visionStart: 151652, visionEnd: 151653,
      user: 872, bos: 151644, eos: 151645, pad: 151643,
    });
    expect(config.thinker.positionIdPerSeconds).toBe(25);
    expect(config.thinker.secondsPerChunk).toBe(2);
  });

  it('reads the audio and vision encoders', () => {
    expect(config.thinker.audio).toEqual({
      melBins: 128, dModel: 32, layers: 2, heads: 2, headDim: 16, ffn: 64, maxSourcePositions: 1500, nWindow: 100, outputDim: 32,
    });
    expect(config.thinker.vision).toEqual({
      depth: 4, hidden: 32, heads: 2, headDim: 16, intermediate: 64, inChannels: 3, patchSize: 14, temporalPatchSize: 2,
      spatialMergeSize: 2, windowSize: 112, fullAttnBlocks: [1, 3], outHidden: 32, tokensPerSecond: 25,
    });
  });

  it('reads the talker with its explicit head_dim (heads × head_dim ≠ hidden) and codec ids', () => {
    const talker = config.talker!;
    expect([talker.hidden, talker.heads, talker.headDim, talker.kvHeads, talker.embeddingSize, talker.vocab]).toEqual([24, 2, 16, 1, 32, 8448]);
    expect(talker.codec).toEqual({ pad: 8292, start: 8293, end: 8294, mask: 8296 });
    expect(talker.ttsText).toEqual({ pad: 151859, start: 151860, end: 151861 });
  });

  it('reads the DiT with its ECAPA encoder and BigVGAN', () => {
    const { dit, bigvgan } = config.token2wav!;
    expect([dit.hidden, dit.layers, dit.heads, dit.headDim, dit.ffMult, dit.embDim, dit.numEmbeds, dit.repeats, dit.blockSize]).toEqual([32, 3, 2, 16, 2, 16, 8193, 2, 24]);
    expect(dit.lookAheadLayers).toEqual([1]);
    expect(dit.lookBackwardLayers).toEqual([0, 2]);
    expect(dit.ecapa).toEqual({
      condDim: 24, outDim: 16, channels: [32, 32, 32, 32, 96], kernelSizes: [5, 3, 3, 3, 1], dilations: [1, 2, 3, 4, 1],
      attentionChannels: 16, res2netScale: 2, seChannels: 16,
    });
    expect(bigvgan.upsampleRates.reduce((a, b) => a * b)).toBe(240);
    expect(bigvgan.upsampleInitialChannel).toBe(64);
    expect(bigvgan.resblockDilationSizes).toEqual([[1, 3, 5], [1, 3, 5], [1, 3, 5]]);
  });

  it('accepts the newer rope_parameters spelling', () => {
    const json = tinyConfig();
    const text = json.thinker_config.text_config;
    text.rope_parameters = { rope_type: 'default', mrope_section: [2, 3, 3], rope_theta: 5e5 };
    delete text.rope_scaling;
    delete text.rope_theta;
    expect(parseOmniConfig(json).thinker.text.ropeTheta).toBe(5e5);
  });

  it('treats a config without talker and token2wav as text-only', () => {
    const json = tinyConfig();
    delete json.talker_config;
    delete json.token2wav_config;
    const config = parseOmniConfig(json);
    expect(config.talker).toBeNull();
    expect(config.token2wav).toBeNull();
  });
});

describe('parseOmniConfig rejects invalid or unrunnable configs', () => {
  const cases: { what: string; edit: (c: any) => void; code: OmniErrorCode; message: RegExp }[] = [
    {
      what: 'hidden not divisible by heads',
      edit: (c) => { c.thinker_config.text_config.num_attention_heads = 3; c.thinker_config.text_config.num_key_value_heads = 1; },
      code: 'BAD_CONFIG', message: /thinker_config\.text_config\.hidden_size is 32; expected a multiple of num_attention_heads 3/,
    },
    {
      what: 'mrope_section not summing to head_dim / 2',
      edit: (c) => { c.thinker_config.text_config.rope_scaling.mrope_section = [2, 3, 4]; },
      code: 'BAD_CONFIG', message: /rope_scaling\.mrope_section is \[2,3,4\]; expected three counts summing to head_dim \/ 2 = 8/,
    },
    {
      what: 'heads not a multiple of kv heads',
      edit: (c) => { c.talker_config.num_key_value_heads = 3; },
      code: 'BAD_CONFIG', message: /talker_config\.num_key_value_heads is 3; expected a divisor of num_attention_heads 2/,
    },
    {
      what: 'a missing size',
      edit: (c) => { delete c.thinker_config.audio_config.d_model; },
      code: 'BAD_CONFIG', message: /audio_config\.d_model is missing; expected an integer ≥ 1/,
    },
    {
      what: 'a non-integer size',
      edit: (c) => { c.thinker_config.vision_config.depth = 2.5; },
      code: 'BAD_CONFIG', message: /vision_config\.depth is 2\.5/,
    },
    {
      what: 'a negative epsilon',
      edit: (c) => { c.thinker_config.text_config.rms_norm_eps = -1; },
      code: 'BAD_CONFIG', message: /rms_norm_eps is -1; expected a positive number/,
    },
    {
      what: 'a special token past the vocabulary',
      edit: (c) => { c.thinker_config.image_token_index = 151936; },
      code: 'BAD_CONFIG', message: /image_token_index is 151936; expected a token id below the thinker vocabulary size 151936/,
    },
    {
      what: 'an audio encoder whose output width is not the thinker hidden size',
      edit: (c) => { c.thinker_config.audio_config.output_dim = 48; },
      code: 'BAD_CONFIG', message: /output_dim is 48; expected the thinker hidden size 32/,
    },
    {
      what: 'a talker embedding width other than the thinker hidden size',
      edit: (c) => { c.talker_config.embedding_size = 64; },
      code: 'BAD_CONFIG', message: /embedding_size is 64; expected the thinker hidden size 32/,
    },
    {
      what: 'a full-attention block past the depth',
      edit: (c) => { c.thinker_config.vision_config.fullatt_block_indexes = [1, 4]; },
      code: 'BAD_CONFIG', message: /fullatt_block_indexes is \[1,4\]; expected block indexes below depth 4/,
    },
    {
      what: 'a DiT look-ahead layer past the depth',
      edit: (c) => { c.token2wav_config.dit_config.look_ahead_layers = [3]; },
      code: 'BAD_CONFIG', message: /look_ahead_layers is \[3\]; expected layer indexes below num_hidden_layers 3/,
    },
    {
      what: 'BigVGAN kernels and rates of different lengths',
      edit: (c) => { c.token2wav_config.bigvgan_config.upsample_kernel_sizes = [11, 7]; },
      code: 'BAD_CONFIG', message: /upsample_kernel_sizes is \[11,7\]; expected a list of 6 integers/,
    },
    {
      what: 'a BigVGAN kernel that cannot upsample exactly',
      edit: (c) => { c.token2wav_config.bigvgan_config.upsample_kernel_sizes = [10, 7, 4, 4, 4, 4]; },
      code: 'UNSUPPORTED_CONFIG', message: /upsample_kernel_sizes .* must be even and ≥ 0/,
    },
    {
      what: 'sliding-window attention',
      edit: (c) => { c.thinker_config.text_config.use_sliding_window = true; },
      code: 'UNSUPPORTED_CONFIG', message: /use_sliding_window is true; sliding-window attention is not implemented/,
    },
    {
      what: 'a scaled rotary',
      edit: (c) => { c.thinker_config.text_config.rope_scaling.rope_type = 'yarn'; },
      code: 'UNSUPPORTED_CONFIG', message: /rope_scaling\.rope_type is "yarn"; only plain M-RoPE/,
    },
    {
      what: 'another activation',
      edit: (c) => { c.thinker_config.audio_config.activation_function = 'relu'; },
      code: 'UNSUPPORTED_CONFIG', message: /activation_function is "relu"/,
    },
    {
      what: 'another model type',
      edit: (c) => { c.model_type = 'qwen2_vl'; },
      code: 'UNSUPPORTED_CONFIG', message: /model_type is "qwen2_vl"; this runtime runs Qwen2.5-Omni/,
    },
    {
      what: 'a missing thinker section',
      edit: (c) => { delete c.thinker_config; },
      code: 'BAD_CONFIG', message: /thinker_config is missing; expected an object/,
    },
  ];
  for (const { what, edit, code, message } of cases) {
    it(what, () => {
      const json = tinyConfig();
      edit(json);
      const err = failure(() => parseOmniConfig(json));
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    });
  }

  it('rejects text that is not JSON, and JSON that is not an object', () => {
    expect(failure(() => parseOmniConfigText('{"model_type": ')).code).toBe('BAD_CONFIG');
    expect(failure(() => parseOmniConfig([1, 2])).message).toMatch(/config\.json is not a JSON object/);
  });
});

describe('config against tensor headers', () => {
  let ckpt: Checkpoint;
  beforeAll(async () => { ckpt = await openCheckpoint(tinyOmni); });
  afterAll(async () => { await ckpt.close(); });

  it('loadOmniConfig reads config.json beside the weights and agrees with all 708 tensors', async () => {
    const config = await loadOmniConfig(ckpt);
    expect(config.thinker.text.vocab).toBe(ckpt.info('thinker.model.embed_tokens.weight').shape[0]);
  });

  it('names both numbers when the vocabulary disagrees with the embedding', () => {
    const json = tinyConfig();
    json.thinker_config.text_config.vocab_size = 152064;
    const err = failure(() => checkConfigAgainstWeights(parseOmniConfig(json), ckpt));
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.message).toMatch(/thinker\.model\.embed_tokens\.weight is \[151936, 32\], but config\.json implies \[152064, 32\]/);
  });

  it('reports a layer count that disagrees with the checkpoint', () => {
    const json = tinyConfig();
    json.talker_config.num_hidden_layers = 3;
    const err = failure(() => checkConfigAgainstWeights(parseOmniConfig(json), ckpt));
    expect(err.code).toBe('SHAPE_MISMATCH');
    expect(err.message).toMatch(/checkpoint has 2 talker\.model\.layers\.N blocks, but talker_config\.num_hidden_layers is 3/);
  });

  it('reports a missing middle layer and a missing part as MISSING_TENSOR', async () => {
    const config = parseOmniConfig(tinyConfig());
    const f32 = (shape: number[]): HostArray => ({ dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
    // Thinker-only tensors (no talker/token2wav), with vision block 1 of 4 dropped.
    const entries: [string, HostArray][] = [];
    for (const name of ckpt.names()) {
      if (!name.startsWith('thinker.') || name.startsWith('thinker.visual.blocks.1.')) continue;
      entries.push([name, f32([...ckpt.info(name).shape])]);
    }
    const store = await openSafetensors(writeSafetensors(entries));
    expect(failure(() => checkConfigAgainstWeights(config, store, ['talker'])).message).toMatch(/talker\.thinker_to_talker_proj\.weight is not in/);
    const err = failure(() => checkConfigAgainstWeights(config, store, ['thinker']));
    expect(err.code).toBe('MISSING_TENSOR');
    expect(err.message).toMatch(/thinker\.visual\.blocks\.1\.\* is missing, though the checkpoint has 3 thinker\.visual\.blocks\.N blocks \(vision_config\.depth is 4\)/);
  });

  it('requires config.json next to the weights', async () => {
    const lone = await openSafetensors(join(tinyOmni, 'model.safetensors'));
    await expect(loadOmniConfig(lone)).rejects.toThrow(/no config\.json beside the weights/);
    await lone.close();
  });
});
