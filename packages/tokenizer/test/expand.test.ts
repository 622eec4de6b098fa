import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseOmniConfigText, type HostArray } from '@omniweb/core';
import { thinkerTmropeConfig, tmropePositions, type GridThw, type TmropeConfig } from '@omniweb/tmrope';
import { expandPlaceholders } from '../src/index.js';
import { expandPrompt, type Segment } from '../../tmrope/test/reference.js';
import { expectError, GOLDEN, goldenCase, ints, omniTokenizer } from './files.js';

let config: TmropeConfig;
let media: { featureLength: number; imageGrid: GridThw; videoGrid: GridThw; secondPerGrid: number };

beforeAll(async () => {
  config = thinkerTmropeConfig(parseOmniConfigText(await readFile(`${GOLDEN}tiny-omni/config.json`, 'utf8')).thinker);
  const [audio, image, video] = await Promise.all([goldenCase('audio'), goldenCase('image'), goldenCase('video')]);
  const grid = (c: Map<string, HostArray>, name: string): GridThw => {
    const [t, h, w] = ints(c, name);
    return [t, h, w];
  };
  media = {
    featureLength: ints(audio, 'feature_attention_mask').reduce((s, v) => s + v, 0),
    imageGrid: grid(image, 'image_grid_thw'),
    videoGrid: grid(video, 'video_grid_thw'),
    secondPerGrid: video.get('second_per_grid_ts')!.data[0],
  };
});

/** The golden ids with every media block cut back to the chat template's one placeholder. */
function collapse(ids: number[]): number[] {
  const t = config.tokens;
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const [id, inner] = [ids[i], ids[i + 1]];
    if (id === t.audioStart && inner === t.audio) {
      out.push(id, t.audio, t.audioEnd);
      i = ids.indexOf(t.audioEnd, i);
    } else if (id === t.visionStart && (inner === t.image || inner === t.video || inner === t.audioStart)) {
      out.push(id, inner === t.image ? t.image : t.video, t.visionEnd);
      i = ids.indexOf(t.visionEnd, i);
    } else {
      out.push(id);
    }
  }
  return out;
}

describe('expandPlaceholders reproduces the processor', () => {
  it('thinker_p1 (audio + image): the golden input_ids from the one-placeholder prompt', async () => {
    const golden = ints(await goldenCase('thinker_p1'), 'input_ids');
    const prompt = collapse(golden);
    expect(prompt.length).toBeLessThan(golden.length);
    const ids = expandPlaceholders({ inputIds: prompt, imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength] }, config);
    expect(Array.from(ids)).toEqual(golden);
  });

  it('thinker_p2 (video with its audio, 2-second chunks): the golden input_ids', async () => {
    const golden = ints(await goldenCase('thinker_p2'), 'input_ids');
    const ids = expandPlaceholders({
      inputIds: collapse(golden), videoGrids: [media.videoGrid], secondPerGrids: [media.secondPerGrid], audioFeatureLengths: [media.featureLength], useAudioInVideo: true,
    }, config);
    expect(Array.from(ids)).toEqual(golden);
  });

  it('chat template → real BPE → expansion gives the golden prompt text, and positions follow', async () => {
    const tok = omniTokenizer();
    for (const [name, messages, inputs] of [
      ['thinker_p1', [{ type: 'audio' }, { type: 'image' }], { imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength] }],
      ['thinker_p2', [{ type: 'video' }], { videoGrids: [media.videoGrid], secondPerGrids: [media.secondPerGrid], audioFeatureLengths: [media.featureLength], useAudioInVideo: true }],
    ] as const) {
      const golden = ints(await goldenCase(name), 'input_ids');
      const text = tok.decode(golden);
      const system = text.slice('<|im_start|>system\n'.length, text.indexOf('<|im_end|>'));
      const question = text.slice(text.lastIndexOf('<|vision_eos|>') + '<|vision_eos|>'.length, text.lastIndexOf('<|im_end|>'));
      const prompt = tok.encodeChat([{ role: 'system', content: system }, { role: 'user', content: [...messages, { type: 'text', text: question }] }]);
      const ids = expandPlaceholders({ inputIds: prompt, ...inputs }, config);
      expect(tok.decode(ids)).toBe(text);
      const isMedia = (id: number) => id >= 151646 && id <= 151656;
      expect(Array.from(ids).filter(isMedia)).toEqual(golden.filter(isMedia));
      const positions = tmropePositions({ inputIds: ids, ...inputs }, config);
      expect(positions.positionIds.length).toBe(3 * ids.length);
    }
  });

  it('agrees with the reference model of the processor on synthetic prompts', () => {
    const text = (n: number) => ({ kind: 'text' as const, ids: Array.from({ length: n }, (_, i) => 500 + i) });
    const cases: Array<{ flag: boolean; segments: Segment[] }> = [
      { flag: false, segments: [text(3), { kind: 'audio', featureLength: 1 + 2 }, { kind: 'image', grid: [2, 4, 6] }, { kind: 'video', grid: [4, 2, 2], secondPerGrid: 0.5 }, text(1)] },
      { flag: true, segments: [{ kind: 'audio', featureLength: 3000 }, { kind: 'video', grid: [6, 4, 4], secondPerGrid: 1, featureLength: 999 }, text(2)] },
      { flag: true, segments: [text(1), { kind: 'video', grid: [4, 4, 2], secondPerGrid: 4, featureLength: 700 }, { kind: 'image', grid: [1, 2, 2] }, { kind: 'video', grid: [9, 2, 2], secondPerGrid: 0.5, featureLength: 40 }] },
    ];
    for (const c of cases) {
      const expanded = expandPrompt(c.segments, config, c.flag);
      const t = config.tokens;
      const collapsed = collapse(expanded.ids);
      expect(collapsed.filter((id) => id === t.audio || id === t.image || id === t.video).length).toBe(c.segments.filter((s) => s.kind !== 'text').length);
      const ids = expandPlaceholders({ ...expanded, inputIds: collapsed }, config);
      expect(Array.from(ids)).toEqual(expanded.ids);
    }
  });
});

describe('bad input is refused with OmniError', () => {
  it('media that do not match the placeholders', async () => {
    const golden = ints(await goldenCase('thinker_p1'), 'input_ids');
    const prompt = collapse(golden);
    const inputs = { inputIds: prompt, imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength] };
    expectError(() => expandPlaceholders({ ...inputs, audioFeatureLengths: [] }, config), 'BAD_INPUT', /audio placeholder at index 39 is audio 1, but only 0 audio inputs/);
    expectError(() => expandPlaceholders({ ...inputs, imageGrids: [media.imageGrid, media.imageGrid] }, config), 'BAD_INPUT', /1 image grids left over/);
    expectError(() => expandPlaceholders({ ...inputs, imageGrids: [[1, 5, 12]] }, config), 'BAD_INPUT', /not a multiple of spatialMergeSize 2/);
    expectError(() => expandPlaceholders({ ...inputs, imageGrids: [[1, 0, 12]] }, config), 'BAD_INPUT', /integers ≥ 1/);
    expectError(() => expandPlaceholders({ ...inputs, audioFeatureLengths: [0] }, config), 'BAD_INPUT', /featureLength is 0/);
    expectError(() => expandPlaceholders({ ...inputs, videoGrids: [media.videoGrid] }, config), 'BAD_INPUT', /1 video grids but 0 secondPerGrids/);
    expectError(() => expandPlaceholders({ inputIds: prompt, imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength, 99], videoGrids: [], secondPerGrids: [] }, config), 'BAD_INPUT', /1 audio feature lengths left over/);
  });

  it('ids already expanded, placeholders outside their wrappers, malformed arguments', async () => {
    const golden = ints(await goldenCase('thinker_p1'), 'input_ids');
    expectError(() => expandPlaceholders({ inputIds: golden, imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength] }, config), 'BAD_INPUT', /are the ids already expanded/);
    expectError(() => expandPlaceholders({ inputIds: [1, config.tokens.image, 2], imageGrids: [media.imageGrid] }, config), 'BAD_INPUT', /<\|IMAGE\|> at index 1 must stand alone between <\|vision_bos\|> and <\|vision_eos\|>/);
    expectError(() => expandPlaceholders({ inputIds: [1, -4] }, config), 'BAD_INPUT', /ids\[1\] is -4/);
    expectError(() => expandPlaceholders({ inputIds: 'x' as never }, config), 'BAD_INPUT', /Int32Array or an array/);
    expectError(() => expandPlaceholders(null as never, config), 'BAD_INPUT', /expected \{ inputIds/);
    expectError(() => expandPlaceholders({ inputIds: [1] }, null as never), 'BAD_INPUT', /TMRoPE config/);
    expectError(() => expandPlaceholders({ inputIds: [1], videoGrids: 5 as never }, config), 'BAD_INPUT', /videoGrids must be an array/);
  });
});
