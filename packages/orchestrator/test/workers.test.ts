// The worker pipeline against the in-thread one on the embedded tiny checkpoint (wasm, f32,
// greedy Thinker and Talker): the same reply ids, codec codes and PCM, turn after turn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckpointInfo, InThreadPipeline, WorkerPipeline } from '../src/index.js';
import { abortingAtPrefill, inThread, inWorkers, recordingCodes, speakingDriver, tinyModel, turn, type TurnOutput } from './pipelines.js';

let model: string;
let info: CheckpointInfo;
let local: InThreadPipeline;
let workers: WorkerPipeline;
beforeAll(async () => {
  ({ model, info } = await tinyModel());
  [local, workers] = await Promise.all([inThread(model, info), inWorkers(model, info)]);
});
afterAll(async () => {
  await local?.close();
  await workers?.close();
});

async function twoTurns(pipeline: InThreadPipeline | WorkerPipeline): Promise<{ turns: TurnOutput[]; codes: number[] }> {
  const codes: number[] = [];
  const driver = speakingDriver(recordingCodes(pipeline, codes));
  const turns = [await turn(driver, { text: 'Hello!' }), await turn(driver, { text: 'And then?' })];
  driver.dispose();
  return { turns, codes };
}

describe('worker pipeline', () => {
  it('loads each stage on its own wasm backend', () => {
    expect(workers.device.kind).toBe('wasm');
    for (const kind of ['perception', 'thinker', 'talker', 'speech'] as const) expect(workers.worker(kind)!.info.kind).toBe('wasm');
  });

  it('gives the in-thread ids, codes and PCM, bit for bit, over two turns', async () => {
    const want = await twoTurns(local);
    const got = await twoTurns(workers);
    expect(want.codes.length).toBeGreaterThan(0);
    for (const [i, t] of want.turns.entries()) {
      expect(t.ids.length).toBe(6);
      expect(t.pcm.length).toBe(t.codes * 480);
      expect(got.turns[i].ids).toEqual(t.ids);
      expect(got.turns[i].codes).toBe(t.codes);
      expect(got.turns[i].text).toBe(t.text);
      expect(Buffer.from(got.turns[i].pcm.buffer).equals(Buffer.from(t.pcm.buffer))).toBe(true);
    }
    expect(got.codes).toEqual(want.codes);
  });

  it('encodes media in the perception worker like in-thread (audio + image prompt)', async () => {
    const samples = new Float32Array(16_000).map((_, i) => 0.3 * Math.sin(i / 9));
    const image = { width: 56, height: 56, data: new Uint8Array(56 * 56 * 3).map((_, i) => (i * 37) % 251) };
    const input = { text: 'What do you hear and see?', audio: { samples, sampleRate: 16_000 }, image };
    const run = async (pipeline: InThreadPipeline | WorkerPipeline) => {
      const driver = speakingDriver(pipeline, 4, 12);
      try {
        return await turn(driver, input);
      } finally {
        driver.dispose();
      }
    };
    const want = await run(local);
    const got = await run(workers);
    expect(got.ids).toEqual(want.ids);
    expect(Buffer.from(got.pcm.buffer).equals(Buffer.from(want.pcm.buffer))).toBe(true);
  });

  it('an interruption mid-reply stops every worker at once, breaks none, and the next turn continues the conversation', async () => {
    const driver = speakingDriver(workers, 12, 400);
    const abort = new AbortController();
    const cut = await turn(driver, { text: 'Hello!' }, abort.signal, (n) => { if (n === 3) abort.abort(); });
    expect(cut).toMatchObject({ interrupted: true, withdrawn: false });
    expect(cut.ids.length).toBeLessThan(12);
    for (const kind of ['perception', 'thinker', 'talker', 'speech'] as const) expect(workers.worker(kind)!.broken).toBeNull();
    const next = await turn(driver, { text: 'Go on.' });
    expect(next.interrupted).toBe(false);
    expect(next.codes).toBeGreaterThan(0);
    driver.dispose();
  });

  it('a barge-in while the reply is being spoken (at its first audio) breaks no worker either', async () => {
    const driver = speakingDriver(workers, 40, 400);
    const abort = new AbortController();
    let audio = 0;
    const outcome = await driver.runTurn({ text: 'Hello!' }, { text: () => {}, audio: () => { if (++audio === 1) abort.abort(); } }, abort.signal);
    expect(outcome.interrupted).toBe(true);
    expect(audio).toBe(1);
    for (const kind of ['perception', 'thinker', 'talker', 'speech'] as const) expect(workers.worker(kind)!.broken).toBeNull();
    const next = await turn(driver, { text: 'Go on.' });
    expect(next.codes).toBeGreaterThan(0);
    driver.dispose();
  });

  for (const which of ['in-thread', 'workers'] as const) {
    it(`${which}: an interruption while the prompt is prefilled withdraws the turn; the next turn answers as if it had never been sent`, async () => {
      const pipeline = which === 'workers' ? workers : local;
      const abort = new AbortController();
      const driver = speakingDriver(abortingAtPrefill(pipeline, abort, 2), 6, 30);
      const first = await turn(driver, { text: 'Hello!' });
      const cut = await turn(driver, { text: 'Tell me everything you know about the sea, please.' }, abort.signal);
      expect(cut).toMatchObject({ interrupted: true, withdrawn: true, ids: [], codes: 0 });
      const next = await turn(driver, { text: 'Go on.' });
      driver.dispose();
      const reference = speakingDriver(pipeline, 6, 30);
      const want = [await turn(reference, { text: 'Hello!' }), await turn(reference, { text: 'Go on.' })];
      reference.dispose();
      expect(first.ids).toEqual(want[0].ids);
      expect(next.ids).toEqual(want[1].ids);
      expect(next.codes).toBeGreaterThan(0);
      expect(Buffer.from(next.pcm.buffer).equals(Buffer.from(want[1].pcm.buffer))).toBe(true);
    });
  }

  it('workers: an interruption sent while a long prompt is prefilled lands between its passes, not after the prompt', async () => {
    const abort = new AbortController();
    const stages = abortingAtPrefill(workers, abort, 1);
    const driver = speakingDriver(stages, 6, 30);
    // About 600 tokens: three passes of at most 256 rows.
    const cut = await turn(driver, { text: Array.from({ length: 600 }, (_, i) => `w${i % 7}`).join(' ') }, abort.signal);
    expect(cut).toMatchObject({ interrupted: true, withdrawn: true, ids: [] });
    // The worker read the abort message between two passes: the prefill call itself was cut.
    expect(stages.prefills).toEqual(['ABORTED']);
    const next = await turn(driver, { text: 'Hello!' });
    driver.dispose();
    const reference = speakingDriver(workers, 6, 30);
    const want = await turn(reference, { text: 'Hello!' });
    reference.dispose();
    expect(next.ids).toEqual(want.ids);
  });
});
