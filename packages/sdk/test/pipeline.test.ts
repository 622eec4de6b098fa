// Omni.load's pipeline choice on the tiny synthetic checkpoint (wasm): 'workers' runs a worker
// thread per stage and answers like 'in-thread', from a path or from picked files; bad pipeline
// options are refused up front.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { directoryFiles } from '@omniweb/core';
import { Omni, type LoadProgress } from '../src/index.js';
import { collect, makeTiny, rejects } from './helpers.js';

let tiny: Awaited<ReturnType<typeof makeTiny>>;
beforeAll(async () => { tiny = await makeTiny(); });
afterAll(() => { tiny?.remove(); });

async function spokenTurn(pipeline: 'in-thread' | 'workers', onProgress?: (p: LoadProgress) => void) {
  const omni = await Omni.load({ model: tiny.dir, device: 'wasm', pipeline, onProgress });
  try {
    const session = omni.session({ maxNewTokens: 5, talker: { sampling: { temperature: 0 }, maxNewTokens: 30 } });
    const reader = collect(session);
    const result = await session.send({ text: 'Hello there!' });
    await session.close();
    await reader.done;
    const audio = reader.events.filter((e) => e.type === 'audio').reduce((n, e) => n + (e as { pcm: Float32Array }).pcm.length, 0);
    return { omni, result, audio, device: omni.device.kind, voices: omni.voices, canSpeak: omni.canSpeak };
  } finally {
    await omni.close();
  }
}

describe("Omni.load({ pipeline: 'workers' })", () => {
  it('speaks through one worker per stage with the in-thread reply', async () => {
    const local = await spokenTurn('in-thread');
    const progress: LoadProgress[] = [];
    const workers = await spokenTurn('workers', (p) => progress.push(p));
    // Every worker reports the bytes it reads; together they read at least the checkpoint's tensors.
    expect(new Set(progress.map((p) => p.module))).toEqual(new Set(['audio', 'thinker', 'talker', 'token2wav']));
    const last = progress.at(-1)!;
    expect(last.bytesDone).toBe(last.bytesTotal);
    expect(progress.every((p, i) => i === 0 || p.bytesDone >= progress[i - 1].bytesDone)).toBe(true);
    expect(workers.device).toBe('wasm');
    expect(workers.canSpeak).toBe(true);
    expect(workers.voices).toEqual(local.voices);
    expect(workers.result.ids).toEqual(local.result.ids);
    expect(workers.result.text).toBe(local.result.text);
    expect(workers.result.stats.codes).toBe(local.result.stats.codes);
    expect(workers.audio).toBe(local.audio);
    expect(workers.audio).toBeGreaterThan(0);
  });

  it('refuses bad pipeline options', async () => {
    await rejects(Omni.load({ model: tiny.dir, pipeline: 'gpu' as never }), 'BAD_INPUT', /pipeline must be 'in-thread' or 'workers', got "gpu"/);
    await rejects(Omni.load({ model: tiny.dir, workerUrl: 'worker.js' }), 'BAD_INPUT', /workerUrl goes with pipeline: 'workers'/);
    await rejects(Omni.load({ model: tiny.dir, pipeline: 'workers', workerUrl: 42 as never }), 'BAD_INPUT', /workerUrl must be a string or URL/);
    await rejects(Omni.load({ model: directoryFiles(tiny.dir), pipeline: 'workers' }), 'BAD_INPUT', /needs model as a path, a URL or the picked files/);
  });

  it('an abort while the workers load ends them: ABORTED', async () => {
    const abort = new AbortController();
    let reports = 0;
    const loading = Omni.load({
      model: tiny.dir, device: 'wasm', pipeline: 'workers', signal: abort.signal,
      onProgress: () => { if (++reports === 1) abort.abort(); },
    });
    await rejects(loading, 'ABORTED', /loading was aborted while the \w+ worker loaded/);
    expect(reports).toBeGreaterThan(0);
  });

  it('takes the picked files themselves (File[]): each worker opens them', async () => {
    const files = readdirSync(tiny.dir).map((name) => new File([readFileSync(join(tiny.dir, name))], name));
    const omni = await Omni.load({ model: files, device: 'wasm', pipeline: 'workers' });
    try {
      expect(omni.canSpeak).toBe(true);
      const session = omni.session({ speech: false, maxNewTokens: 3 });
      const result = await session.send({ text: 'Hi' });
      expect(result.ids).toHaveLength(3);
      await session.close();
    } finally {
      await omni.close();
    }
  });
});
