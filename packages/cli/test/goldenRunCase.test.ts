// `omniweb run-case` against the golden files: each case's inputs in, our outputs compared with the
// reference's arrays of the same names (f32: relative error; integers: identical). Cases that the
// golden files only hold in pieces (raw media + prompt; prompt + voice) are assembled from them.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { readCase, relativeError, writeSafetensors, type HostArray } from '@omniweb/core';
import { runCase, type RunCaseOptions } from '../src/runCase.js';

const GOLDEN = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
const MODEL = `${GOLDEN}tiny-omni`;
const work = mkdtempSync(`${tmpdir()}/omniweb-runcase-`);
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Case = Map<string, HostArray>;
const load = (name: string): Promise<Case> => readCase(`${GOLDEN}${name}.safetensors`);

/** Runs run-case on `inputs` and checks every output named in `expected` against the reference. */
async function check(
  label: string, inputs: Case, expected: Record<string, number | 'exact'>, reference: Case,
  options: Partial<RunCaseOptions> = {},
) {
  const casePath = `${work}/${label.replace(/\W+/g, '_')}.safetensors`;
  writeFileSync(casePath, writeSafetensors(inputs));
  const result = await runCase({
    model: MODEL, casePath, outPath: `${casePath}.out`, device: 'wasm', weights: 'f32', kvCache: 'f32',
    maxNewTokens: null, talkerMaxNewTokens: null, useAudioInVideo: false, fps: null, wasm: {}, ...options,
  }, undefined, () => {});
  for (const [name, bound] of Object.entries(expected)) {
    const ours = result.outputs.get(name);
    const want = reference.get(name)!;
    expect(ours, `${label}: run-case emitted no ${name}`).toBeDefined();
    expect(ours!.shape, `${label}: ${name} shape`).toEqual(want.shape);
    if (bound === 'exact') {
      expect(Array.from(ours!.data as ArrayLike<number>), `${label}: ${name}`).toEqual(Array.from(want.data as ArrayLike<number>));
    } else {
      const err = relativeError(ours!.data as ArrayLike<number>, want.data as ArrayLike<number>);
      console.log(`run-case ${label} ${name}: relative error ${err.toExponential(2)}`);
      expect(err, `${label}: ${name}`).toBeLessThanOrEqual(bound);
    }
  }
}

function pick(c: Case, names: string[]): Case {
  return new Map(names.map((n) => {
    const a = c.get(n);
    if (!a) throw new Error(`golden case lacks ${n}`);
    return [n, a];
  }));
}

describe('omniweb run-case on the golden cases (wasm, f32)', () => {
  it('audio: waveform → input_features, mask → audio_embeds', async () => {
    const g = await load('audio');
    await check('audio', pick(g, ['waveform']), {
      input_features: 1e-5, feature_attention_mask: 'exact', audio_embeds: 1e-4,
    }, g);
  });

  it('image: image_rgb → pixel_values, grid → image_embeds; the smart_resize case', async () => {
    const g = await load('image');
    await check('image', pick(g, ['image_rgb', 'resize_case_image_rgb']), {
      pixel_values: 1e-6, image_grid_thw: 'exact', image_embeds: 1e-4,
      resize_case_pixel_values: 1e-6, resize_case_image_grid_thw: 'exact',
    }, g);
  });

  it('video: frames_rgb (2 fps) → pixel_values_videos, grid, second_per_grid_ts → video_embeds', async () => {
    const g = await load('video');
    await check('video', pick(g, ['frames_rgb']), {
      pixel_values_videos: 1e-6, video_grid_thw: 'exact', second_per_grid_ts: 1e-7, video_embeds: 1e-4,
    }, g);
  });

  it('thinker_p1 full path: waveform + image_rgb + input_ids → positions, encoders, logits, 8 greedy ids', async () => {
    const p1 = await load('thinker_p1');
    const audio = await load('audio');
    const image = await load('image');
    const inputs = new Map([...pick(audio, ['waveform']), ...pick(image, ['image_rgb']), ...pick(p1, ['input_ids'])]);
    await check('p1 full path', inputs, {
      position_ids: 'exact', rope_deltas: 'exact', logits_last: 1e-4, logits_argmax: 'exact', generated_ids: 'exact',
    }, p1, { maxNewTokens: 8 });
  });

  it('thinker_p2 (audio in video): input_ids + inputs_embeds + position_ids → logits, argmax, greedy ids', async () => {
    const p2 = await load('thinker_p2');
    await check('p2', pick(p2, ['input_ids', 'inputs_embeds', 'position_ids', 'generated_ids']), {
      logits_last: 1e-4, logits_argmax: 'exact', generated_ids: 'exact',
    }, p2, { useAudioInVideo: true });
  });

  it('speech: prompt p1 + voice + ODE noise → thinker ids, talker codes, DiT mel, waveform', async () => {
    const p1 = await load('thinker_p1');
    const t = await load('talker_p1');
    const inputs = new Map([
      ...pick(p1, ['input_ids', 'inputs_embeds', 'generated_ids']),
      ...pick(await load('image'), ['image_grid_thw']),
      ...pick(await load('audio'), ['feature_attention_mask']),
      ...pick(t, ['speaker_bos_token', 'speaker_cond', 'speaker_ref_mel', 'ode_initial_noise']),
    ]);
    const reference = new Map([...t, ['generated_ids', t.get('thinker_generated_ids')!]]);
    await check('speech p1', inputs, {
      generated_ids: 'exact', codec_codes: 'exact', dit_mel: 1e-4, waveform: 1e-4,
    }, reference, { talkerMaxNewTokens: 25 });
  });

  it('token2wav: bigvgan_mel_in → bigvgan_wav', async () => {
    const g = await load('token2wav');
    await check('bigvgan', pick(g, ['bigvgan_mel_in']), { bigvgan_wav: 1e-4 }, g);
  });
});

// 8-bit keys and values, queries and value weights (Backend.kv8): ~5e-3 and ~9e-3 on the logits here.
describe('omniweb run-case with --kv-cache int8 (wasm, f32 weights)', () => {
  it('thinker_p1: logits within 2e-2 of the reference, the 8 greedy ids identical', async () => {
    const p1 = await load('thinker_p1');
    await check('p1 int8 cache', pick(p1, ['input_ids', 'inputs_embeds', 'position_ids', 'generated_ids']), {
      logits_last: 2e-2, generated_ids: 'exact',
    }, p1, { kvCache: 'int8' });
  });

  it('thinker_p2 (audio in video): logits within 2e-2 of the reference, the 8 greedy ids identical', async () => {
    const p2 = await load('thinker_p2');
    await check('p2 int8 cache', pick(p2, ['input_ids', 'inputs_embeds', 'position_ids', 'generated_ids']), {
      logits_last: 2e-2, generated_ids: 'exact',
    }, p2, { useAudioInVideo: true, kvCache: 'int8' });
  });
});

describe('omniweb run-case on WebGPU', () => {
  it('audio: waveform → audio_embeds', async () => {
    const g = await load('audio');
    await check('audio webgpu', pick(g, ['waveform']), { audio_embeds: 1e-4 }, g, { device: 'webgpu' });
  });
});
