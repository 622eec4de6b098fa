// Live turns with a camera, driven through the orchestrator's TurnDriver with the Thinker stage
// recorded: every prefill's ids and positions. Camera + microphone make the use_audio_in_video
// layout chunk by chunk, equal to the reference's ids and TMRoPE positions of the same inputs;
// frames the vision encoder cannot keep up with are dropped (never audio) and their slots hold.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend, loadOmniConfig, openCheckpoint } from '@omniweb/core';
import { logMel, VideoPatchStream, type RgbImage } from '@omniweb/media';
import {
  InThreadPipeline, loadCheckpointInfo, systemText, TurnDriver,
  type LiveFrame, type LiveProgress, type PrefillChunk, type StageSet, type Stages, type ThinkerConversation,
} from '@omniweb/orchestrator';
import { expandPlaceholders } from '@omniweb/tokenizer';
import { thinkerTmropeConfig, tmropePositions } from '@omniweb/tmrope';
import { withPrefill } from '../../orchestrator/test/pipelines.js';
import { makeTiny } from './helpers.js';

const RATE = 16_000;

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let pipeline: InThreadPipeline;

beforeAll(async () => {
  tiny = await makeTiny();
  const checkpoint = await openCheckpoint(tiny.dir);
  try {
    const config = await loadOmniConfig(checkpoint);
    const backend = await createBackend({ device: 'wasm' });
    const info = await loadCheckpointInfo(checkpoint, config);
    pipeline = await InThreadPipeline.load(backend, checkpoint, info, { thinker: 'f32', audio: 'f32', vision: 'f32', talker: 'f32' }, () => {});
  } finally {
    await checkpoint.close();
  }
});
afterAll(async () => {
  await pipeline?.close();
  tiny?.remove();
});

/** The pipeline with every Thinker prefill recorded (ids, positions and the video rows given). */
function recorded(): { set: StageSet; chunks: PrefillChunk[] } {
  const chunks: PrefillChunk[] = [];
  const inner = pipeline.stages();
  const thinker = {
    async open(options: { cache?: never }): Promise<ThinkerConversation> {
      const c = await inner.thinker.open(options);
      return withPrefill(c, (chunk) => {
        chunks.push({ ...chunk, ids: chunk.ids.slice(), positions: chunk.positions.slice(), media: { video: chunk.media.video && { data: chunk.media.video.data.slice(), rows: chunk.media.video.rows } } });
        return c.prefill(chunk);
      });
    },
  };
  const stages: Stages = { ...inner, thinker };
  return { set: { info: pipeline.info, stages: () => stages, recover: () => pipeline.recover() }, chunks };
}

function tone(seconds: number): Float32Array {
  const out = new Float32Array(Math.round(seconds * RATE));
  for (let i = 0; i < out.length; i++) out[i] = 0.3 * Math.sin(i * 0.07) * (1 - (0.5 * i) / out.length);
  return out;
}

function rgb(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 31 + seed * 17) % 251;
  return { width, height, data };
}

/** A clock the audio advances and the camera waits on, so frames come with the audio of their time. */
class Clock {
  seconds = 0;
  #waiters: (() => void)[] = [];
  advance(seconds: number) {
    this.seconds = seconds;
    for (const w of this.#waiters.splice(0)) w();
  }
  async until(seconds: number) {
    while (this.seconds < seconds) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }
}

async function* audioOf(pcm: Float32Array, clock: Clock, pauseMs: number): AsyncGenerator<Float32Array> {
  const step = RATE / 4;
  for (let at = 0; at < pcm.length; at += step) {
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    const chunk = pcm.slice(at, Math.min(at + step, pcm.length));
    yield chunk;
    clock.advance((at + chunk.length) / RATE);
  }
  clock.advance(Infinity);
}

const concat = (parts: Int32Array[]) => Int32Array.from(parts.flatMap((p) => Array.from(p)));
/** Stream-major [3 · n] pieces → one stream-major array. */
function joinPositions(parts: Int32Array[]): Int32Array {
  const streams = [0, 1, 2].map((s) => parts.flatMap((p) => Array.from(p.subarray((s * p.length) / 3, ((s + 1) * p.length) / 3))));
  return Int32Array.from(streams.flat());
}

/** The reference prompt of a first turn with one video whose audio is interleaved. */
function reference(frames: readonly RgbImage[], patches: number, audio: Float32Array) {
  const { tokenizer, config, preprocessor } = pipeline.info;
  const stream = new VideoPatchStream(preprocessor.video);
  stream.push(frames[0]);
  const [, h, w] = stream.push(frames[0])!.gridThw;
  const rendered = tokenizer!.applyChatTemplate([{ role: 'system', content: systemText(false, undefined) }, { role: 'user', content: [{ type: 'video' }] }], { speech: false });
  const tmrope = thinkerTmropeConfig(config.thinker);
  const layout = { videoGrids: [[patches, h, w] as const], secondPerGrids: [1], audioFeatureLengths: [logMel(audio).validFrames], useAudioInVideo: true };
  const ids = expandPlaceholders({ inputIds: Array.from(tokenizer!.encode(rendered)), ...layout }, tmrope);
  return { ids, positions: tmropePositions({ inputIds: ids, ...layout }, tmrope).positionIds, perPatch: (h * w) / 4 };
}

async function runTurn(set: StageSet, audio: AsyncIterable<Float32Array>, video: AsyncIterable<LiveFrame>, onProgress: (p: LiveProgress) => void = () => {}) {
  const driver = new TurnDriver(set, { systemText: systemText(false, undefined), speaker: null, sampling: {}, maxNewTokens: 2, talker: {} });
  const progress: LiveProgress[] = [];
  const texts: number[] = [];
  const outcome = await driver.runLiveTurn({ audio, video }, { text: (id) => texts.push(id), audio: () => {} }, new AbortController().signal, (p) => {
    progress.push(p);
    onProgress(p);
  });
  driver.dispose();
  return { outcome, progress, texts };
}

describe('live turns with a camera', () => {
  it('interleave each 2-second chunk (its video patches, then its audio) as it arrives: ids and positions equal the reference layout', async () => {
    const { set, chunks } = recorded();
    const audio = tone(5.3);
    // 30 fps camera frames; the turn samples 2 per second on its own grid.
    const frames = Array.from({ length: Math.floor(5.3 * 30) }, (_, k) => ({ image: rgb(56, 56, k), seconds: k / 30 }));
    const clock = new Clock();
    async function* camera(): AsyncGenerator<LiveFrame> {
      for (const frame of frames) {
        await clock.until(frame.seconds);
        yield frame;
      }
    }
    const { outcome, progress } = await runTurn(set, audioOf(audio, clock, 15), camera());
    const last = progress.at(-1)!;
    expect(last.droppedVideoFrames).toBe(0);
    expect(last.videoPatches).toBe(6);
    expect(last.audioBlocks).toBe(3);
    // Prefilled as it came: the head with chunk 0, chunks 1 and 2 on their own, and the last partial chunk with the tail.
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    const sampled = [0, 15, 30, 45, 60, 75, 90, 105, 120, 135, 150].map((k) => frames[k].image);
    const want = reference(sampled, 6, audio);
    const ids = concat(chunks.map((c) => c.ids));
    expect(ids).toEqual(want.ids);
    expect(joinPositions(chunks.map((c) => c.positions))).toEqual(want.positions);
    expect(outcome.promptTokens).toBe(want.ids.length);
    expect(outcome.ids.length).toBe(2);
    // Chunk 1 alone is its two patches' video tokens, then 50 audio tokens.
    const { tokens } = pipeline.info.config.thinker;
    const middle = chunks[1].ids;
    expect(Array.from(middle.subarray(0, 2 * want.perPatch)).every((id) => id === tokens.video)).toBe(true);
    expect(Array.from(middle.subarray(2 * want.perPatch)).every((id) => id === tokens.audio)).toBe(true);
    expect(middle.length - 2 * want.perPatch).toBe(50);
  });

  it('drops frames the vision encoder cannot keep up with, never audio: their patches hold the previous picture and the layout stays the reference\'s', async () => {
    const { set, chunks } = recorded();
    const audio = tone(6.2);
    let patchesAtLeast2!: () => void;
    const twoPatches = new Promise<void>((resolve) => { patchesAtLeast2 = resolve; });
    async function* camera(): AsyncGenerator<LiveFrame> {
      // A burst of 8 sampled frames at once (slots 0–7), more than the queue holds, then slots 8–11 later.
      for (let k = 0; k < 8; k++) yield { image: rgb(56, 56, k), seconds: k / 2 };
      await twoPatches;
      for (let k = 8; k < 12; k++) yield { image: rgb(56, 56, k), seconds: k / 2 };
    }
    const clock = new Clock();
    const { progress } = await runTurn(set, audioOf(audio, clock, 5), camera(), (p) => { if (p.videoPatches >= 2) patchesAtLeast2(); });
    const last = progress.at(-1)!;
    expect(last.droppedVideoFrames).toBeGreaterThan(0);
    expect(last.audioBlocks).toBe(4);
    expect(last.audioMs).toBeCloseTo(6200, 6);
    // Slots 0–11 make 6 patches: dropped slots hold a kept patch's rows.
    expect(last.videoPatches).toBe(6);
    const want = reference([rgb(56, 56, 0)], 6, audio);
    expect(concat(chunks.map((c) => c.ids))).toEqual(want.ids);
    expect(joinPositions(chunks.map((c) => c.positions))).toEqual(want.positions);
    const rows = chunks.flatMap((c) => (c.media.video ? [c.media.video] : []));
    const width = rows[0].data.length / rows[0].rows;
    const patchRows = rows.flatMap((r) => Array.from({ length: r.rows / want.perPatch }, (_, i) => r.data.slice(i * want.perPatch * width, (i + 1) * want.perPatch * width)));
    expect(patchRows).toHaveLength(6);
    // A patch whose two frames were both dropped repeats the one before it.
    const held = patchRows.filter((p, i) => i > 0 && p.every((v, j) => v === patchRows[i - 1][j])).length;
    expect(held).toBeGreaterThanOrEqual(Math.floor(last.droppedVideoFrames / 2) - 1);
    console.log(`${last.droppedVideoFrames} of 12 sampled frames dropped, ${held} patch(es) held, ${last.audioBlocks} audio blocks all encoded`);
  });
});
