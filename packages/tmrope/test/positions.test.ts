import { beforeAll, describe, expect, it } from 'vitest';
import { isOmniError, type OmniConfig } from '@omniweb/core';
import {
  audioInVideoChunks, audioTokenCount, decodePositions, talkerTmropeConfig, thinkerTmropeConfig, tmropePositions, TmropeStream,
  type TmropeConfig,
} from '../src/index.js';
import { feedStream, joinPositions, seeded, segmentsOf } from './feed.js';
import { goldenCase, goldenMedia, ints, tinyConfig } from './golden.js';
import { expandPrompt, referencePositions, type Prompt, type Segment } from './reference.js';

let omni: OmniConfig;
let thinker: TmropeConfig;
let talker: TmropeConfig;
let media: Awaited<ReturnType<typeof goldenMedia>>;

interface GoldenPrompt { prompt: Prompt; positions: number[]; ropeDeltas: number; config: () => TmropeConfig }
const golden: Record<string, GoldenPrompt> = {};

beforeAll(async () => {
  omni = await tinyConfig();
  thinker = thinkerTmropeConfig(omni.thinker);
  talker = talkerTmropeConfig(omni.talker!);
  media = await goldenMedia();
  const [p1, p2, t1] = await Promise.all([goldenCase('thinker_p1'), goldenCase('thinker_p2'), goldenCase('talker_p1')]);
  const base = { videoGrids: [], secondPerGrids: [], imageGrids: [], useAudioInVideo: false };
  // p1: audio + image; p2: the video with its soundtrack (the same waveform) interleaved (golden README).
  const p1Media = { ...base, imageGrids: [media.imageGrid], audioFeatureLengths: [media.featureLength] };
  golden.thinker_p1 = { prompt: { ...p1Media, ids: ints(p1, 'input_ids') }, positions: ints(p1, 'position_ids'), ropeDeltas: ints(p1, 'rope_deltas')[0], config: () => thinker };
  golden.thinker_p2 = {
    prompt: { ...base, ids: ints(p2, 'input_ids'), videoGrids: [media.videoGrid], secondPerGrids: [media.secondPerGrid], audioFeatureLengths: [media.featureLength], useAudioInVideo: true },
    positions: ints(p2, 'position_ids'), ropeDeltas: ints(p2, 'rope_deltas')[0], config: () => thinker,
  };
  // The talker indexes prompt + speaker bos + first reply token with the prompt's media (fact sheet §7.2 step 5).
  golden.talker_p1 = { prompt: { ...p1Media, ids: ints(t1, 'talker_input_text_ids') }, positions: ints(t1, 'talker_position_ids'), ropeDeltas: ints(t1, 'talker_rope_deltas')[0], config: () => talker };
});

const run = (p: Prompt, config: TmropeConfig) => tmropePositions({
  inputIds: p.ids, imageGrids: p.imageGrids, videoGrids: p.videoGrids, secondPerGrids: p.secondPerGrids,
  audioFeatureLengths: p.audioFeatureLengths, useAudioInVideo: p.useAudioInVideo,
}, config);

describe('tmropePositions equals the golden get_rope_index', () => {
  for (const name of ['thinker_p1', 'thinker_p2', 'talker_p1']) {
    it(`${name}: position_ids and rope_deltas`, () => {
      const g = golden[name];
      const result = run(g.prompt, g.config());
      expect(Array.from(result.positionIds)).toEqual(g.positions);
      expect(result.ropeDeltas).toBe(g.ropeDeltas);
    });
  }

  it('thinker_p2 interleaves 2-second chunks: video patches 0–1, 50 audio tokens, patch 2, the rest of the audio', () => {
    const chunks = audioInVideoChunks(media.videoGrid, media.secondPerGrid, audioTokenCount(media.featureLength), thinker);
    const { ids } = golden.thinker_p2.prompt;
    const runs: Array<{ id: number; n: number }> = [];
    for (const id of ids) {
      if (id !== thinker.tokens.video && id !== thinker.tokens.audio) continue;
      if (runs.length && runs[runs.length - 1].id === id) runs[runs.length - 1].n++;
      else runs.push({ id, n: 1 });
    }
    expect(runs).toEqual(chunks.flatMap((c) => [{ id: thinker.tokens.video, n: c.video }, { id: thinker.tokens.audio, n: c.audio }]));
  });

  it('audioTokenCount gives the golden audio token count', async () => {
    const audio = await goldenCase('audio');
    expect(audioTokenCount(media.featureLength)).toBe(ints(audio, 'audio_output_lengths')[0]);
    expect(golden.thinker_p1.prompt.ids.filter((id) => id === thinker.tokens.audio).length).toBe(audioTokenCount(media.featureLength));
  });

  it('decode positions: the talker\'s two tokens after the prompt sit where the thinker decodes its first two', () => {
    const L = golden.thinker_p1.prompt.ids.length;
    const g = golden.talker_p1;
    const n = g.prompt.ids.length;
    const decoded = decodePositions(L, 2, golden.thinker_p1.ropeDeltas);
    for (let s = 0; s < 3; s++) expect(Array.from(decoded.subarray(2 * s, 2 * s + 2))).toEqual(g.positions.slice(s * n + L, s * n + L + 2));
  });

  it('the reference model of the test (tests/reference.ts) reproduces the golden ids and positions', () => {
    for (const g of Object.values(golden)) {
      const config = g.config();
      expect(expandPrompt(segmentsOf(g.prompt, config), config, g.prompt.useAudioInVideo).ids).toEqual(g.prompt.ids);
      const ref = referencePositions(g.prompt, config);
      expect(ref.rows.flat()).toEqual(g.positions);
      expect(ref.ropeDeltas).toBe(g.ropeDeltas);
    }
  });
});

describe('TmropeStream', () => {
  it('fed chunk by chunk in random pieces equals the golden positions', () => {
    for (const [name, g] of Object.entries(golden)) {
      for (let seed = 1; seed <= 20; seed++) {
        const stream = new TmropeStream(g.config());
        const positions = joinPositions(feedStream(stream, g.prompt, g.config(), seeded(seed)));
        expect(Array.from(positions), `${name} seed ${seed}`).toEqual(g.positions);
        expect(stream.length).toBe(g.prompt.ids.length);
        expect(stream.ropeDeltas).toBe(g.ropeDeltas);
      }
    }
  });

  it('whole media calls equal the golden positions', () => {
    const s = new TmropeStream(thinker);
    const ids = golden.thinker_p2.prompt.ids;
    const bos = ids.indexOf(thinker.tokens.visionStart);
    const eos = ids.lastIndexOf(thinker.tokens.visionEnd);
    const positions = joinPositions([
      s.text(ids.slice(0, bos)),
      s.audioInVideo(media.videoGrid, media.secondPerGrid, media.featureLength),
      s.text(ids.slice(eos + 1)),
    ]);
    expect(Array.from(positions)).toEqual(golden.thinker_p2.positions);
  });

  it('keeps its state readable between chunks', () => {
    const s = new TmropeStream(thinker);
    s.text([1, 2, 3]);
    expect([s.length, s.nextPosition, s.ropeDeltas, s.openBlock]).toEqual([3, 3, 0, 'text']);
    s.beginVideo({ gridHeight: 4, gridWidth: 6, secondPerGrid: 2 });
    s.videoPatch();
    s.videoPatch();
    expect(s.openBlock).toBe('video');
    s.endVideo();
    // Two patches 2 s apart: T reaches s + 50 past the bos at 3, so the eos is at 4 + 50 + 1.
    expect([s.length, s.nextPosition, s.openBlock]).toEqual([1 + 3 + 12 + 1, 4 + 50 + 1 + 1, 'text']);
    expect(s.ropeDeltas).toBe(s.nextPosition - s.length);
  });
});

describe('synthetic prompts agree with the reference model', () => {
  const text = (n: number, from = 1000) => ({ kind: 'text' as const, ids: Array.from({ length: n }, (_, i) => from + i) });
  const cases: Array<{ name: string; flag: boolean; segments: Segment[] }> = [
    { name: 'text only', flag: false, segments: [text(9)] },
    { name: 'audio only, long clip', flag: false, segments: [text(3), { kind: 'audio', featureLength: 1000 }, text(2)] },
    { name: 'media first, no text between', flag: false, segments: [{ kind: 'image', grid: [1, 4, 2] }, { kind: 'audio', featureLength: 3 }, { kind: 'audio', featureLength: 17 }] },
    { name: 'image of 2 temporal patches, wide grid', flag: false, segments: [text(2), { kind: 'image', grid: [2, 2, 14] }, text(4)] },
    { name: 'videos at 0.5, 1.5 and 2/3 s per grid', flag: false, segments: [
      text(2), { kind: 'video', grid: [5, 4, 4], secondPerGrid: 0.5 }, text(1), { kind: 'video', grid: [3, 2, 6], secondPerGrid: 1.5 },
      { kind: 'video', grid: [7, 2, 2], secondPerGrid: 2 / 3 }, text(3),
    ] },
    { name: 'everything, audio in video', flag: true, segments: [
      text(5), { kind: 'audio', featureLength: 250 }, { kind: 'image', grid: [1, 6, 4] }, text(2),
      { kind: 'video', grid: [3, 4, 6], secondPerGrid: 1, featureLength: 250 }, text(1),
      { kind: 'video', grid: [2, 2, 2], secondPerGrid: 1, featureLength: 1001 }, text(4),
    ] },
    { name: 'audio in video: audio longer than the video', flag: true, segments: [text(2), { kind: 'video', grid: [2, 4, 4], secondPerGrid: 1, featureLength: 2000 }, text(2)] },
    { name: 'audio in video: video longer than the audio', flag: true, segments: [text(2), { kind: 'video', grid: [9, 2, 4], secondPerGrid: 1, featureLength: 40 }, text(2)] },
    { name: 'audio in video: last chunk ends on audio below the video\'s time', flag: true, segments: [text(1), { kind: 'video', grid: [4, 2, 2], secondPerGrid: 1, featureLength: 220 }, text(3)] },
    { name: 'audio in video: 4 s per grid splits a patch across chunks', flag: true, segments: [text(1), { kind: 'video', grid: [4, 4, 2], secondPerGrid: 4, featureLength: 700 }, text(2)] },
    { name: 'audio in video: 0.5 s and 0.7 s per grid', flag: true, segments: [
      { kind: 'video', grid: [9, 2, 2], secondPerGrid: 0.5, featureLength: 900 }, { kind: 'video', grid: [6, 2, 4], secondPerGrid: 0.7, featureLength: 333 },
    ] },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const p = expandPrompt(c.segments, thinker, c.flag);
      const ref = referencePositions(p, thinker);
      const whole = run(p, thinker);
      expect(Array.from(whole.positionIds)).toEqual(ref.rows.flat());
      expect(whole.ropeDeltas).toBe(ref.ropeDeltas);
      for (let seed = 1; seed <= 5; seed++) {
        const stream = new TmropeStream(thinker);
        expect(Array.from(joinPositions(feedStream(stream, p, thinker, seeded(seed))))).toEqual(ref.rows.flat());
        expect(stream.ropeDeltas).toBe(ref.ropeDeltas);
      }
    });
  }

  it('config values are read, not assumed: other ids, merge size, rate and chunk length', () => {
    const config: TmropeConfig = {
      tokens: { audio: 7, audioStart: 8, audioEnd: 9, image: 10, video: 11, visionStart: 12, visionEnd: 13 },
      spatialMergeSize: 3, positionIdPerSeconds: 10, secondsPerChunk: 3,
    };
    const p = expandPrompt([
      text(2, 100), { kind: 'image', grid: [1, 6, 9] }, { kind: 'video', grid: [5, 3, 6], secondPerGrid: 1.2, featureLength: 400 }, text(2, 100),
    ], config, true);
    const ref = referencePositions(p, config);
    const result = run(p, config);
    expect(Array.from(result.positionIds)).toEqual(ref.rows.flat());
    expect(result.ropeDeltas).toBe(ref.ropeDeltas);
  });
});

function expectBadInput(f: () => unknown, pattern: RegExp): void {
  let error: unknown;
  try {
    f();
  } catch (e) {
    error = e;
  }
  expect(isOmniError(error, 'BAD_INPUT'), `expected OmniError BAD_INPUT, got ${String(error)}`).toBe(true);
  expect((error as Error).message).toMatch(pattern);
}

describe('bad input is refused with OmniError', () => {
  const p1 = () => golden.thinker_p1.prompt;
  const with1 = (patch: Partial<Prompt>) => run({ ...p1(), ...patch }, thinker);

  it('tmropePositions: media that disagree with the ids', () => {
    expectBadInput(() => with1({ audioFeatureLengths: [300] }), /audio 0 \(300 mel frames\) needs 75/);
    expectBadInput(() => with1({ audioFeatureLengths: [200] }), /must end with <\|audio_eos\|>/);
    expectBadInput(() => with1({ imageGrids: [[1, 10, 14]] }), /image 0 \(grid \[1, 10, 14\]\) needs 35/);
    expectBadInput(() => with1({ imageGrids: [[1, 9, 12]] }), /not a multiple of spatialMergeSize 2/);
    expectBadInput(() => with1({ imageGrids: [] }), /image 1, but only 0 image inputs/);
    expectBadInput(() => with1({ imageGrids: [media.imageGrid, media.imageGrid] }), /1 image grids left over/);
    expectBadInput(() => with1({ audioFeatureLengths: [] }), /audio 1, but only 0 audio inputs/);
    expectBadInput(() => with1({ useAudioInVideo: true, videoGrids: [media.videoGrid] }), /1 video grids but 0 secondPerGrids/);
    const p2 = golden.thinker_p2.prompt;
    expectBadInput(() => run({ ...p2, useAudioInVideo: false }, thinker), /useAudioInVideo is false/);
    expectBadInput(() => run({ ...p2, secondPerGrids: [2] }, thinker), /chunk 0 of video 0/);
  });

  it('tmropePositions: malformed ids, config and arguments', () => {
    const ids = p1().ids;
    const stray = [...ids.slice(0, 5), thinker.tokens.image, ...ids.slice(5)];
    expectBadInput(() => with1({ ids: stray }), /<\|IMAGE\|> at index 5 is outside a media block/);
    expectBadInput(() => with1({ ids: [...ids, thinker.tokens.visionStart, 5] }), /followed by 5/);
    expectBadInput(() => with1({ ids: [...ids, thinker.tokens.visionEnd] }), /<\|vision_eos\|> at index 152/);
    expectBadInput(() => with1({ ids: [] }), /inputIds is empty/);
    expectBadInput(() => with1({ ids: [1, -2] }), /ids\[1\] is -2/);
    expectBadInput(() => with1({ ids: [1, 2.5] }), /ids\[1\] is 2.5/);
    expectBadInput(() => tmropePositions(null as never, thinker), /expected \{ inputIds/);
    expectBadInput(() => tmropePositions({ inputIds: 'abc' as never }, thinker), /Int32Array or an array/);
    expectBadInput(() => tmropePositions({ inputIds: [1], imageGrids: 3 as never }, thinker), /imageGrids must be an array/);
    expectBadInput(() => tmropePositions({ inputIds: [1] }, { ...thinker, spatialMergeSize: 0 }), /spatialMergeSize is 0/);
    expectBadInput(() => tmropePositions({ inputIds: [1] }, { ...thinker, positionIdPerSeconds: Number.NaN }), /positionIdPerSeconds is NaN/);
    expectBadInput(() => tmropePositions({ inputIds: [1] }, { ...thinker, secondsPerChunk: 0.01 }), /no position id per chunk/);
    expectBadInput(() => tmropePositions({ inputIds: [1] }, { ...thinker, tokens: { ...thinker.tokens, image: thinker.tokens.video } }), /both 151656/);
    expectBadInput(() => tmropePositions({ inputIds: [1] }, null as never), /config must be/);
    expectBadInput(() => thinkerTmropeConfig({} as never), /thinker` section/);
    expectBadInput(() => talkerTmropeConfig(null as never), /talker` section/);
  });

  it('helpers: audio lengths, chunk layout, decode positions', () => {
    expectBadInput(() => audioTokenCount(0), /featureLength is 0/);
    expectBadInput(() => audioTokenCount(2.5), /featureLength is 2.5/);
    expectBadInput(() => audioInVideoChunks([3, 4, 6], 1, 0, thinker), /audioTokens is 0/);
    expectBadInput(() => audioInVideoChunks([3, 4, 6], -1, 5, thinker), /secondPerGrid is -1/);
    expectBadInput(() => audioInVideoChunks([0, 4, 6], 1, 5, thinker), /integers ≥ 1/);
    expectBadInput(() => decodePositions(-1, 1, 0), /cacheLength is -1/);
    expectBadInput(() => decodePositions(3, 0, 0), /count is 0/);
    expectBadInput(() => decodePositions(3, 1, 0.5), /ropeDeltas is 0.5/);
    expectBadInput(() => decodePositions(3, 1, -10), /is negative/);
  });

  it('TmropeStream: calls out of order or with wrong sizes', () => {
    const s = new TmropeStream(thinker);
    expectBadInput(() => s.text([thinker.tokens.audioStart]), /media tokens get their positions/);
    expectBadInput(() => s.text('ab' as never), /array of token ids/);
    expectBadInput(() => s.audioBlock(3), /no audio is open/);
    expectBadInput(() => s.videoPatch(), /no video is open/);
    expectBadInput(() => s.videoTokens(2), /no video is open/);
    expectBadInput(() => s.endAudio(), /endAudio: no media block is open/);
    expectBadInput(() => s.endVideo(), /no video is open/);
    expectBadInput(() => s.endAudioInVideo(), /no audio-in-video block is open/);
    expectBadInput(() => s.audioInVideoChunk({ video: 1, audio: 1 }), /no media block is open/);
    expectBadInput(() => s.image([1, 3, 4]), /not a multiple/);
    s.beginAudio();
    expectBadInput(() => s.endAudio(), /has no tokens/);
    expectBadInput(() => s.text([1]), /the audio block is still open/);
    expectBadInput(() => s.audioBlock(0), /tokens is 0/);
    s.audioBlock(4);
    s.endAudio();
    expectBadInput(() => s.beginVideo({ gridHeight: 4, gridWidth: 6, secondPerGrid: Number.POSITIVE_INFINITY }), /secondPerGrid is Infinity/);
    s.beginVideo({ gridHeight: 4, gridWidth: 6, secondPerGrid: 1 });
    s.videoTokens(5);
    expectBadInput(() => s.endVideo(), /5 tokens, not a whole number/);
    expectBadInput(() => s.videoTokens(1.5), /tokens is 1.5/);
    s.videoTokens(1);
    s.endVideo();
    s.beginAudioInVideo({ gridHeight: 2, gridWidth: 2, secondPerGrid: 1 });
    expectBadInput(() => s.endAudioInVideo(), /0 video tokens/);
    s.videoPatch();
    s.videoPatch();
    s.audioBlock(50);
    s.videoPatch();
    expectBadInput(() => s.audioInVideoChunk({ video: 0, audio: 0 }), /not both 0/);
    const t = new TmropeStream(thinker);
    t.beginAudioInVideo({ gridHeight: 2, gridWidth: 2, secondPerGrid: 1 });
    t.videoPatch();
    t.audioBlock(3);
    expectBadInput(() => t.videoPatch(), /video of chunk 0 but the audio of chunk 0 was already fed/);
    expect(() => new TmropeStream({ ...thinker, spatialMergeSize: -1 })).toThrow(/spatialMergeSize is -1/);
  });
});
