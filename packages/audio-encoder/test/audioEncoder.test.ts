// The audio encoder against the golden audio case (HF float32 run of the tiny checkpoint),
// on every backend; streaming equals the whole clip; bad inputs fail with OmniError.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError, type Backend, type Checkpoint, type OmniConfig, type Tensor, type WeightFormat } from '@omniweb/core';
import { MelStream, logMel } from '@omniweb/media';
import { audioTokenCount } from '@omniweb/tmrope';
import { AudioEncoder, type MelInput } from '../src/index.js';
import { BACKENDS, expectGolden, expectOmniError, goldenCase, openTiny, transposed, type GoldenCase } from './golden.js';

/** The f32 bar of the golden README; other formats are measured against bounds their rounding allows. */
const BOUND: Record<WeightFormat, number> = { f32: 1e-4, f16: 2e-3, q8: 3e-2, q4: 0.3 };

let golden: GoldenCase;
let clip: { features: Float32Array; frames: number; melBins: number };
let tiny: { checkpoint: Checkpoint; config: OmniConfig };

beforeAll(async () => {
  golden = await goldenCase('audio');
  tiny = await openTiny();
  // input_features is [1, bins, 3000] bin-major; the valid frames come first (feature_attention_mask).
  const features = golden('input_features');
  const [, bins, padded] = features.shape;
  const frames = (golden('feature_attention_mask').data as Int32Array).reduce((a, b) => a + b, 0);
  const data = new Float32Array(frames * bins);
  for (let t = 0; t < frames; t++) for (let m = 0; m < bins; m++) data[t * bins + m] = features.data[m * padded + t];
  clip = { features: data, frames, melBins: bins };
});

afterAll(async () => {
  await tiny.checkpoint.close();
});

function prefix(mel: typeof clip, frames: number, start = 0): typeof clip {
  return { melBins: mel.melBins, frames, features: mel.features.slice(start * mel.melBins, (start + frames) * mel.melBins) };
}

async function read(backend: Backend, t: Tensor): Promise<Float32Array> {
  return (await backend.read(t)) as Float32Array;
}

/** Encodes `mel` block by block; returns the concatenated tokens and the per-block token counts. */
async function stream(encoder: AudioEncoder, mel: typeof clip): Promise<{ tokens: Float32Array; counts: number[] }> {
  const blocks = encoder.blockEncoder();
  const parts: Float32Array[] = [];
  const counts: number[] = [];
  for (let start = 0; start < mel.frames; start += encoder.blockFrames) {
    const out = await blocks.encodeBlock(prefix(mel, Math.min(encoder.blockFrames, mel.frames - start), start));
    counts.push(out ? out.shape[0] : 0);
    if (out) {
      parts.push(await read(encoder.backend, out));
      encoder.backend.dispose(out);
    }
  }
  expect(blocks.tokens).toBe(counts.reduce((a, b) => a + b, 0));
  const tokens = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((offset, p) => (tokens.set(p, offset), offset + p.length), 0);
  return { tokens, counts };
}

describe.each(BACKENDS)('audio encoder on $name', ({ name, create }) => {
  let backend: Backend;
  let encoder: AudioEncoder;

  beforeAll(async () => {
    backend = await create();
    encoder = await AudioEncoder.load(backend, tiny.checkpoint, tiny.config.thinker.audio);
  });

  afterAll(() => {
    encoder?.dispose();
    backend?.destroy();
  });

  it('matches every golden intermediate of the 250-frame clip (two blocks: 200 + 50)', async () => {
    const taps = new Map<string, Float32Array>();
    const out = await encoder.encode(clip, { inspect: async (tap, t) => { taps.set(tap, await read(backend, t)); } });
    const d = tiny.config.thinker.audio.dModel;
    // conv outputs are [chunk, channels, padded length]; only each block's valid frames exist here.
    for (const [conv, padded] of [['conv1', 200], ['conv2', 100]] as const) {
      const ref = golden(`${conv}_out`).data as Float32Array;
      for (const [block, frames] of [[0, 200], [1, 50]]) {
        const got = taps.get(`${conv}.${block}`)!;
        const valid = conv === 'conv1' ? frames : Math.floor((frames - 1) / 2) + 1;
        expect(got.length).toBe(valid * d);
        const want = new Float32Array(valid * d);
        for (let t = 0; t < valid; t++) for (let c = 0; c < d; c++) want[t * d + c] = ref[(block * d + c) * padded + t];
        expectGolden(`${name} f32 ${conv}_out[${block}]`, got, want, BOUND.f32);
      }
    }
    expectGolden(`${name} f32 layer0_in`, taps.get('input')!, golden('layer0_in').data as Float32Array, BOUND.f32);
    expectGolden(`${name} f32 layer0_out`, taps.get('layer.0')!, golden('layer0_out').data as Float32Array, BOUND.f32);
    expectGolden(`${name} f32 layer1_out`, taps.get('layer.1')!, golden('layer1_out').data as Float32Array, BOUND.f32);
    const pool = golden('avg_pool_out'); // [dModel, tokens]
    expectGolden(`${name} f32 avg_pool_out`, taps.get('avgPool')!, transposed(pool.data, pool.shape[0], pool.shape[1]), BOUND.f32);
    expectGolden(`${name} f32 ln_post_out`, taps.get('lnPost')!, golden('ln_post_out').data as Float32Array, BOUND.f32);
    expect(out.shape).toEqual(golden('audio_embeds').shape);
    expect(out.shape[0]).toBe((golden('audio_output_lengths').data as Int32Array)[0]);
    expectGolden(`${name} f32 audio_embeds`, await read(backend, out), golden('audio_embeds').data as Float32Array, BOUND.f32);
    backend.dispose(out);
  });

  it('encodes the clip block by block into the golden tokens; the odd 25-row tail drops its last row', async () => {
    const { tokens, counts } = await stream(encoder, clip);
    // 200 frames → 100 rows → 50 tokens; 50 frames → 25 rows → 12 tokens (the 25th row has no partner).
    expect(counts).toEqual([audioTokenCount(200), audioTokenCount(50)]);
    expect(counts).toEqual([50, 12]);
    expectGolden(`${name} f32 audio_embeds (streamed)`, tokens, golden('audio_embeds').data as Float32Array, BOUND.f32);
  });

  it.each([201, 202, 203, 204, 399, 400, 401])('a %i-frame clip streamed equals the clip encoded whole', async (frames) => {
    // The golden clip's frames, repeated to reach `frames`.
    const bins = clip.melBins;
    const mel = { melBins: bins, frames, features: new Float32Array(frames * bins) };
    for (let t = 0; t < frames; t++) mel.features.set(clip.features.subarray((t % clip.frames) * bins, (t % clip.frames + 1) * bins), t * bins);
    const whole = await encoder.encode(mel);
    expect(whole.shape[0]).toBe(audioTokenCount(frames));
    const { tokens, counts } = await stream(encoder, mel);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(audioTokenCount(frames));
    expect(relativeError(tokens, await read(backend, whole))).toBeLessThanOrEqual(1e-6);
    backend.dispose(whole);
  });

  it('takes @omniweb/media features as they are: a padded logMel whole, MelStream blocks one by one', async () => {
    const waveform = golden('waveform').data as Float32Array;
    const want = golden('audio_embeds').data as Float32Array;
    // Padded to the golden's 3000 frames: only the valid ones are encoded.
    const padded = logMel(waveform, { config: { nSamples: 3000 * 160 }, pad: true });
    expect(padded.frames).toBe(3000);
    const whole = await encoder.encode(padded);
    expectGolden(`${name} f32 audio_embeds (media logMel)`, await read(backend, whole), want, BOUND.f32);
    backend.dispose(whole);
    const mels = new MelStream({ blockFrames: encoder.blockFrames, initialMax: padded.clampMax });
    const blocks = [...mels.push(waveform.subarray(0, 17_000)), ...mels.push(waveform.subarray(17_000)), ...mels.finish()];
    expect(blocks.map((b) => b.frames)).toEqual([200, 50]);
    const streamed = encoder.blockEncoder();
    const parts: Float32Array[] = [];
    for (const block of blocks) {
      const out = await streamed.encodeBlock(block);
      parts.push(await read(backend, out!));
      backend.dispose(out!);
    }
    expectGolden(`${name} f32 audio_embeds (MelStream blocks)`, Float32Array.from(parts.flatMap((p) => [...p])), want, BOUND.f32);
  });

  it.each(['f16', 'q8', 'q4'] as const)('%s weights stay near the golden embeddings', async (format) => {
    const quantized = await AudioEncoder.load(backend, tiny.checkpoint, tiny.config.thinker.audio, { format });
    try {
      expect(quantized.weights.layers[0].fc1.format).toBe(format);
      const out = await quantized.encode(clip);
      expectGolden(`${name} ${format} audio_embeds`, await read(backend, out), golden('audio_embeds').data as Float32Array, BOUND[format]);
      backend.dispose(out);
    } finally {
      quantized.dispose();
    }
  });
});

describe('audio encoder input checks', () => {
  let backend: Backend;
  let encoder: AudioEncoder;

  beforeAll(async () => {
    backend = await BACKENDS[0].create();
    encoder = await AudioEncoder.load(backend, tiny.checkpoint, tiny.config.thinker.audio);
  });

  afterAll(() => {
    encoder.dispose();
    backend.destroy();
  });

  it('rejects a mel with the wrong bin count, length or values', async () => {
    await expectOmniError(() => encoder.encode({ melBins: 80, frames: 10, features: new Float32Array(800) }), 'BAD_INPUT', /80 bins per frame; this encoder takes 128/);
    await expectOmniError(() => encoder.encode({ frames: 10, features: new Float32Array(800) }), 'BAD_INPUT', /80 bins per frame/);
    await expectOmniError(() => encoder.encode({ melBins: 128, frames: 10, features: new Float32Array(1270) }), 'BAD_INPUT', /1270 values for 10 frames/);
    await expectOmniError(() => encoder.encode({ melBins: 128, frames: 0, features: new Float32Array(0) }), 'BAD_INPUT', /frames is 0/);
    await expectOmniError(() => encoder.encode({ frames: 10, features: new Float32Array(1280), validFrames: 11 }), 'BAD_INPUT', /validFrames is 11/);
    await expectOmniError(() => encoder.encode({ frames: 2, features: new Float32Array(256) }), 'BAD_INPUT', /gives no audio token/);
    await expectOmniError(() => encoder.encode({ frames: 10, features: new Float32Array(1280), validFrames: 2 }), 'BAD_INPUT', /clip of 2 mel frames gives no audio token/);
    await expectOmniError(() => encoder.encode(clip.features as unknown as MelInput), 'BAD_INPUT', /log-mel/);
    const bad = prefix(clip, 10);
    bad.features[300] = NaN;
    await expectOmniError(() => encoder.encode(bad), 'NUMERIC', /frame 2, bin 44/);
  });

  it('rejects an oversized block and any block after the tail', async () => {
    const blocks = encoder.blockEncoder();
    await expectOmniError(() => blocks.encodeBlock(prefix(clip, 201)), 'BAD_INPUT', /at most 200/);
    await expectOmniError(() => blocks.encodeBlock({ frames: 200, features: new Float32Array(64 * 200) }), 'BAD_INPUT', /64 bins/);
    expect(blocks.blocks).toBe(0);
    const tail = await blocks.encodeBlock(prefix(clip, 2));
    expect(tail).toBeNull();
    expect(blocks.ended).toBe(true);
    await expectOmniError(() => blocks.encodeBlock(prefix(clip, 200)), 'BAD_INPUT', /ended the clip/);
  });

  it('refuses to stream when n_window is odd (pool pairs would straddle blocks)', async () => {
    const odd = await AudioEncoder.load(backend, tiny.checkpoint, { ...tiny.config.thinker.audio, nWindow: 99 });
    try {
      await expectOmniError(() => odd.blockEncoder(), 'UNSUPPORTED_CONFIG', /n_window 99 is odd/);
    } finally {
      odd.dispose();
    }
  });

  it('rejects a config the weights do not fit, and unknown formats', async () => {
    await expectOmniError(() => AudioEncoder.load(backend, tiny.checkpoint, { ...tiny.config.thinker.audio, ffn: 48 }), 'SHAPE_MISMATCH', /fc1\.weight is \[64, 32\]/);
    await expectOmniError(() => AudioEncoder.load(backend, tiny.checkpoint, tiny.config.thinker.audio, { format: 'q2' as WeightFormat }), 'BAD_INPUT', /q2/);
    await expectOmniError(() => AudioEncoder.load(backend, tiny.checkpoint, { ...tiny.config.thinker.audio, nWindow: 2000 }), 'UNSUPPORTED_CONFIG', /max_source_positions/);
  });

  it('rejects use after dispose', async () => {
    const spare = await AudioEncoder.load(backend, tiny.checkpoint, tiny.config.thinker.audio);
    spare.dispose();
    await expectOmniError(() => spare.encode(clip), 'BAD_INPUT', /disposed/);
  });
});
