// Faults in the worker pipeline (embedded tiny checkpoint, wasm): a Thinker worker that dies
// mid-turn, a Talker stage that throws, a speech stage whose device is lost. Each time the turn
// rejects with an OmniError and an `error` event, the broken worker is restarted with its
// weights reloaded, and the session answers the next turn.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Remote } from 'comlink';
import { OmniSession, type OmniEvent } from '@omniweb/sdk';
import type { CheckpointInfo, StageKind, WorkerPipeline } from '../src/index.js';
import { inWorkers, speakingDriver, tinyModel } from './pipelines.js';

type Faults = Remote<{ fault(method: string, nth: number, kind: 'throw' | 'device-lost' | 'exit'): void }>;

let info: CheckpointInfo;
let pipeline: WorkerPipeline;
beforeAll(async () => {
  const tiny = await tinyModel();
  info = tiny.info;
  pipeline = await inWorkers(tiny.model, info, new URL('./faultyWorker.ts', import.meta.url));
});
afterAll(async () => { await pipeline?.close(); });

function openSession() {
  const session = new OmniSession(speakingDriver(pipeline), (task) => task(), 24_000, () => {});
  const events: OmniEvent[] = [];
  const reading = (async () => { for await (const e of session.events()) events.push(e); })();
  return { session, events, reading };
}

function fault(kind: StageKind, method: string, nth: number, how: 'throw' | 'device-lost' | 'exit') {
  return (pipeline.worker(kind)!.host as unknown as Faults).fault(method, nth, how);
}

describe('worker faults', () => {
  it('a Thinker worker that dies mid-turn: the turn fails, the worker comes back, the conversation starts afresh', async () => {
    const { session, events, reading } = openSession();
    const first = await session.send({ text: 'Hello!' });
    const thinkerBefore = pipeline.stages().thinker;
    await fault('thinker', 'next', 3, 'exit');
    const failed = session.send({ text: 'Tell me more.' });
    await expect(failed).rejects.toMatchObject({ name: 'OmniError', code: 'INTERNAL' });
    await expect(failed).rejects.toThrow(/thinker worker stopped: it exited \(code 3\).*restarted the thinker stage with weights reloaded; the conversation starts afresh/);
    expect(pipeline.stages().thinker).not.toBe(thinkerBefore);
    const errors = events.filter((e) => e.type === 'error');
    expect(errors).toHaveLength(1);
    // A fresh conversation: the same first prompt gives the same reply as the session's first turn.
    const again = await session.send({ text: 'Hello!' });
    expect(again.stats.promptTokens).toBe(first.stats.promptTokens);
    expect(again.ids).toEqual(first.ids);
    expect(again.stats.codes).toBeGreaterThan(0);
    await session.close();
    await reading;
  });

  it('a Talker stage that throws: the turn fails with the cause, the Talker worker is reloaded, the conversation is as before the turn', async () => {
    const { session, events, reading } = openSession();
    const first = await session.send({ text: 'Hello!' });
    await fault('talker', 'next', 2, 'throw');
    const failed = session.send({ text: 'Tell me more.' });
    await expect(failed).rejects.toThrow(/unexpected failure: injected failure in next — restarted the talker stage with weights reloaded$/);
    expect(events.filter((e) => e.type === 'error')).toHaveLength(1);
    const next = await session.send({ text: 'Go on.' });
    // The conversation continues: no system turn is rendered again.
    expect(next.stats.promptTokens).toBeLessThan(first.stats.promptTokens);
    expect(next.stats.codes).toBeGreaterThan(0);
    expect(events.filter((e) => e.type === 'audio').length).toBeGreaterThan(0);
    await session.close();
    await reading;
    // The failed turn left nothing behind: the same as a conversation that never had it.
    const reference = openSession();
    await reference.session.send({ text: 'Hello!' });
    const want = await reference.session.send({ text: 'Go on.' });
    expect(next.ids).toEqual(want.ids);
    expect(next.stats.promptTokens).toBe(want.stats.promptTokens);
    await reference.session.close();
    await reference.reading;
  });

  it('a lost device in the speech stage: DEVICE_LOST, the speech worker gets a new backend, speech goes on', async () => {
    const { session, events, reading } = openSession();
    const speechBefore = pipeline.stages().speech;
    await fault('speech', 'next', 1, 'device-lost');
    const failed = session.send({ text: 'Hello!' });
    await expect(failed).rejects.toMatchObject({ code: 'DEVICE_LOST' });
    await expect(failed).rejects.toThrow(/GPU device was lost \(simulated\) — restarted the speech stage/);
    expect(pipeline.stages().speech).not.toBe(speechBefore);
    const start = events.length;
    const next = await session.send({ text: 'Hello again!' });
    expect(next.stats.codes).toBeGreaterThan(0);
    expect(events.slice(start).some((e) => e.type === 'audio')).toBe(true);
    await session.close();
    await reading;
  });
});
