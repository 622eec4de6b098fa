// Omni.check: bytes per module at each precision from the headers, against the device's limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, type BackendInfo, type Checkpoint } from '@omniweb/core';
import { checkFit, resolveWeights } from '../src/check.js';
import { Omni } from '../src/index.js';
import { makeTiny, rejects, throws } from './helpers.js';

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let checkpoint: Checkpoint;
beforeAll(async () => {
  tiny = await makeTiny();
  checkpoint = await openCheckpoint(tiny.dir);
});
afterAll(async () => {
  await checkpoint?.close();
  tiny?.remove();
});

const wasm = (maxBufferBytes: number): BackendInfo => ({ kind: 'wasm', name: 'test heap', shaderF16: false, maxBufferBytes, threads: 1 });

/** Elements of the tensors under `prefix`, split into matrices (≥ 2 dims) and vectors. */
function elements(prefix: string): { matrix: number; vector: number } {
  const out = { matrix: 0, vector: 0 };
  for (const name of checkpoint.names()) {
    if (!name.startsWith(prefix)) continue;
    const { shape } = checkpoint.info(name);
    out[shape.length >= 2 ? 'matrix' : 'vector'] += shape.reduce((a, b) => a * b, 1);
  }
  return out;
}

describe('Omni.check', () => {
  it('sizes every module of the tiny checkpoint on the wasm backend and finds that it fits', async () => {
    const report = await Omni.check({ model: tiny.dir, device: 'wasm', weights: 'q8' });
    expect(report.device.kind).toBe('wasm');
    expect(report.modules.map((m) => [m.module, m.format])).toEqual([
      ['thinker', 'q8'], ['audio', 'q8'], ['vision', 'q8'], ['talker', 'q8'], ['token2wav', 'f32'],
    ]);
    expect(report.totalBytes).toBe(report.modules.reduce((s, m) => s + m.bytes, 0));
    expect(report.fits).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.memoryLimitBytes).toBeLessThanOrEqual(report.device.maxBufferBytes);
  });

  it('counts f32 and f16 exactly, q8 and q4 smaller in turn; token2wav stays f32', async () => {
    const size = async (format: 'f32' | 'f16' | 'q8' | 'q4') => (await checkFit(checkpoint, wasm(2 ** 31), resolveWeights(format))).modules;
    const [f32, f16, q8, q4] = await Promise.all((['f32', 'f16', 'q8', 'q4'] as const).map(size));
    const talker = elements('talker.');
    expect(f32.find((m) => m.module === 'talker')!.bytes).toBe(4 * (talker.matrix + talker.vector));
    expect(f16.find((m) => m.module === 'talker')!.bytes).toBe(2 * talker.matrix + 4 * talker.vector);
    const t2w = elements('token2wav.');
    for (const modules of [f32, f16, q8, q4]) expect(modules.find((m) => m.module === 'token2wav')!.bytes).toBe(4 * (t2w.matrix + t2w.vector));
    for (const module of ['thinker', 'audio', 'vision', 'talker']) {
      const bytes = [f32, f16, q8, q4].map((ms) => ms.find((m) => m.module === module)!.bytes);
      expect(bytes[1]).toBeLessThan(bytes[0]);
      expect(bytes[2]).toBeLessThan(bytes[1]);
      expect(bytes[3]).toBeLessThan(bytes[2]);
    }
  });

  it('says what does not fit: a heap smaller than the weights, a buffer smaller than one row', async () => {
    const small = await checkFit(checkpoint, wasm(4 * 2 ** 20), resolveWeights('f32'));
    expect(small.fits).toBe(false);
    expect(small.problems.join('\n')).toMatch(/the weights take [\d.]+ MiB, the wasm heap holds at most 4.0 MiB; choose q8 or q4/);
    const narrow = await checkFit(checkpoint, { ...wasm(2 ** 31), kind: 'webgpu', maxBufferBytes: 100 }, resolveWeights('f32'));
    expect(narrow.memoryLimitBytes).toBeNull();
    expect(narrow.problems.join('\n')).toMatch(/thinker: one buffer of \d+ bytes exceeds the device's limit of 100 bytes per buffer/);
  });

  it('refuses bad options', async () => {
    await rejects(Omni.check({ model: tiny.dir, weights: 'int4' as never }), 'BAD_INPUT', /"int4" is not a weight format/);
    await rejects(Omni.check({ model: tiny.dir, onProgress: () => {} } as never), 'BAD_INPUT', /unknown option onProgress/);
    throws(() => resolveWeights({ vision: 'q2' } as never), 'BAD_INPUT', /vision is "q2"/);
    expect(resolveWeights({ thinker: 'q4' })).toEqual({ thinker: 'q4', audio: 'f32', vision: 'f32', talker: 'f32' });
  });
});
