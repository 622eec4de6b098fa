// Omni.check: bytes per module and per heap at each precision from the headers, against the device's limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openCheckpoint, parseOmniConfig, type BackendInfo, type Checkpoint } from '@omniweb/core';
// The synthetic checkpoints' tensor tables: the real 3B and 7B shapes without writing a byte.
import { checkpointLayout } from '../../cli/src/synthetic/layout.js';
import { SHAPES, shapeConfig } from '../../cli/src/synthetic/shapes.js';
import { WASM_HEAP_BYTES } from '@omniweb/core';
import { checkFit, fitWeights, resolveWeights, type TensorHeaders } from '../src/check.js';
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
/** The wasm backend's single-allocation limit (packages/core/src/wasm/backend.ts). */
const WASM_ALLOCATION = 2 ** 31 - 2 ** 20;
const GiB = 2 ** 30;

/** The headers of a synthetic checkpoint of `shape`, from its layout (no file). */
function headers(shape: '3b' | '7b'): TensorHeaders {
  const plan = checkpointLayout(parseOmniConfig(shapeConfig(SHAPES[shape], 'bfloat16')));
  const byName = new Map(plan.map((t) => [t.name, t]));
  return { names: () => plan.map((t) => t.name), info: (name) => byName.get(name)! };
}

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
    expect(report.pipeline).toBe('in-thread');
    expect(report.heaps).toEqual([{
      heap: 'all', modules: ['thinker', 'audio', 'vision', 'talker', 'token2wav'], sharedTokenTableBytes: 0, bytes: report.totalBytes, limitBytes: WASM_HEAP_BYTES,
    }]);
    expect(report.fits).toBe(true);
    expect(report.problems).toEqual([]);
    expect(report.memoryLimitBytes).toBeGreaterThan(0);
  });

  it('with workers and without speech: a heap per stage, no talker or token2wav', async () => {
    const report = await Omni.check({ model: tiny.dir, device: 'wasm', weights: 'q4', pipeline: 'workers', speech: false });
    expect(report.pipeline).toBe('workers');
    expect(report.modules.map((m) => m.module)).toEqual(['thinker', 'audio', 'vision']);
    expect(report.heaps.map((h) => [h.heap, h.modules])).toEqual([['perception', ['audio', 'vision']], ['thinker', ['thinker']]]);
    expect(report.fits).toBe(true);
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

  it('says what does not fit: a heap smaller than the weights, the host smaller than all heaps, a buffer smaller than one row', async () => {
    const small = await checkFit(checkpoint, wasm(2 ** 31), resolveWeights('f32'), { heapBytes: 4 * 2 ** 20 });
    expect(small.fits).toBe(false);
    expect(small.problems).toEqual([expect.stringMatching(
      /^the in-thread heap \(thinker \+ audio \+ vision \+ talker \+ token2wav\) needs [\d.]+ MiB, one wasm heap holds at most 4.00 MiB; choose q8 or q4 weights, use pipeline 'workers' \(a heap per stage\), load with speech: false, or use a smaller model$/,
    )]);
    const host = await checkFit(checkpoint, wasm(2 ** 31), resolveWeights('f32'), { hostBytes: 2 ** 20 });
    expect(host.memoryLimitBytes).toBe(2 ** 20);
    expect(host.problems).toEqual([expect.stringMatching(/^the weights take [\d.]+ MiB in all, the host has 1.00 MiB of memory/)]);
    const narrow = await checkFit(checkpoint, { ...wasm(2 ** 31), kind: 'webgpu', maxBufferBytes: 100 }, resolveWeights('f32'));
    expect(narrow.memoryLimitBytes).toBeNull();
    expect(narrow.heaps[0].limitBytes).toBeNull();
    expect(narrow.problems.join('\n')).toMatch(/thinker: one buffer of \d+ bytes exceeds the device's limit of 100 bytes per buffer/);
  });

  it('the 3B at q4: 5.0 GiB in one in-thread heap does not fit; with a worker per stage every heap does', async () => {
    const store = headers('3b');
    const q4 = resolveWeights('q4');
    const inThread = await checkFit(store, wasm(WASM_ALLOCATION), q4, { hostBytes: 16 * GiB });
    expect(inThread.totalBytes / GiB).toBeCloseTo(5.01, 2);
    expect(inThread.fits).toBe(false);
    expect(inThread.problems).toEqual([
      "the in-thread heap (thinker + audio + vision + talker + token2wav) needs 5.01 GiB, one wasm heap holds at most 4.00 GiB; use pipeline 'workers' (a heap per stage), load with speech: false, or use a smaller model",
    ]);

    const workers = await checkFit(store, wasm(WASM_ALLOCATION), q4, { pipeline: 'workers', hostBytes: 16 * GiB });
    expect(workers.problems).toEqual([]);
    expect(workers.fits).toBe(true);
    const heap = Object.fromEntries(workers.heaps.map((h) => [h.heap, h]));
    expect(Object.keys(heap)).toEqual(['perception', 'thinker', 'talker', 'speech']);
    const module = Object.fromEntries(workers.modules.map((m) => [m.module, m.bytes]));
    expect(heap.perception.bytes).toBe(module.audio + module.vision);
    expect(heap.thinker.bytes).toBe(module.thinker);
    expect(heap.speech.bytes).toBe(module.token2wav);
    // The Talker's worker also holds the Thinker's 151936 × 2048 token table at q4 (and its final norm).
    const table = 151936 * (2048 / 2 + (2048 / 32) * 4) + 2048 * 4;
    expect(heap.talker.sharedTokenTableBytes).toBe(table);
    expect(heap.talker.bytes).toBe(module.talker + table);
    expect(workers.totalBytes).toBe(inThread.totalBytes + table);
    for (const h of workers.heaps) expect(h.bytes).toBeLessThan(WASM_HEAP_BYTES);
    expect(heap.thinker.bytes / GiB).toBeGreaterThan(1.6);

    // Without speech the in-thread heap holds the Thinker and the encoders: 2.6 GiB.
    const textOnly = await checkFit(store, wasm(WASM_ALLOCATION), q4, { speech: false, hostBytes: 16 * GiB });
    expect(textOnly.modules.map((m) => m.module)).toEqual(['thinker', 'audio', 'vision']);
    expect(textOnly.fits).toBe(true);
    expect(textOnly.totalBytes).toBe(heap.perception.bytes + heap.thinker.bytes);
  });

  it('the 3B at f32 overflows the stage heaps; the 7B\'s f32 token table is one allocation over 2 GiB on wasm, split by rows on WebGPU', async () => {
    const f32 = await checkFit(headers('3b'), wasm(WASM_ALLOCATION), resolveWeights('f32'), { pipeline: 'workers', hostBytes: 64 * GiB });
    expect(f32.problems).toEqual([
      "the perception worker's heap (audio + vision) needs 4.87 GiB, one wasm heap holds at most 4.00 GiB; choose q8 or q4 weights, or use a smaller model",
      "the thinker worker's heap (thinker) needs 11.50 GiB, one wasm heap holds at most 4.00 GiB; choose q8 or q4 weights, or use a smaller model",
      "the talker worker's heap (talker + the Thinker's token table) needs 6.14 GiB, one wasm heap holds at most 4.00 GiB; choose q8 or q4 weights, load with speech: false, or use a smaller model",
    ]);
    // At q4 the 7B Thinker alone is 4.4 GiB: no precision left to choose.
    const q4 = await checkFit(headers('7b'), wasm(WASM_ALLOCATION), resolveWeights('q4'), { pipeline: 'workers', hostBytes: 64 * GiB });
    expect(q4.problems).toEqual(["the thinker worker's heap (thinker) needs 4.43 GiB, one wasm heap holds at most 4.00 GiB; or use a smaller model"]);

    const table = 152064 * 3584 * 4;
    const onWasm = await checkFit(headers('7b'), wasm(WASM_ALLOCATION), resolveWeights({ thinker: 'f32' }), { pipeline: 'workers', hostBytes: 64 * GiB });
    expect(onWasm.modules.find((m) => m.module === 'thinker')!.largestUnitBytes).toBe(table);
    expect(onWasm.problems[0]).toBe("thinker: one buffer of 2.03 GiB exceeds the device's limit of 2.00 GiB per allocation");
    const gpu = await checkFit(headers('7b'), { ...wasm(WASM_ALLOCATION), kind: 'webgpu' }, resolveWeights({ thinker: 'f32' }), { pipeline: 'workers' });
    // There the widest row is the MLP's down projection: 18944 f32 values.
    expect(gpu.modules.find((m) => m.module === 'thinker')!.largestUnitBytes).toBe(18944 * 4);
    expect(gpu.problems).toEqual([]);
    expect(gpu.heaps.every((h) => h.limitBytes === null)).toBe(true);
  });

  it('without weights the tiny checkpoint keeps f32 everywhere, chosen automatically', async () => {
    const report = await Omni.check({ model: tiny.dir, device: 'wasm' });
    expect(report.weights).toEqual({ thinker: 'f32', audio: 'f32', vision: 'f32', talker: 'f32' });
    expect(report.weightsChosen).toBe(true);
    expect(report.modules.every((m) => m.format === 'f32')).toBe(true);
    expect(report.fits).toBe(true);
    const given = await Omni.check({ model: tiny.dir, device: 'wasm', weights: 'q8' });
    expect(given.weightsChosen).toBe(false);
    const omni = await Omni.load({ model: tiny.dir, device: 'wasm', weights: 'auto', speech: false });
    expect(omni.weights).toEqual(report.weights);
    await omni.close();
  });

  it('auto on the 3B: in-thread the Thinker and Talker step to q4 and the encoders to f16, still too big; with workers each heap gets what fits it', async () => {
    const store = headers('3b');
    const inThread = await fitWeights(store, wasm(WASM_ALLOCATION), 'auto', { hostBytes: 16 * GiB });
    expect(inThread.weights).toEqual({ thinker: 'q4', audio: 'f16', vision: 'f16', talker: 'q4' });
    expect(inThread.weightsChosen).toBe(true);
    expect(inThread.fits).toBe(false);
    expect(inThread.problems).toEqual([expect.stringMatching(/^the in-thread heap \(thinker \+ audio \+ vision \+ talker \+ token2wav\) needs 6.68 GiB/)]);

    // With workers the Thinker frees the most in its heap at each step until q8 fits; the
    // perception heap needs only vision at f16, the Talker's heap only the Talker at f16.
    const workers = await fitWeights(store, wasm(WASM_ALLOCATION), 'auto', { pipeline: 'workers', hostBytes: 16 * GiB });
    expect(workers.weights).toEqual({ thinker: 'q8', audio: 'f32', vision: 'f16', talker: 'f16' });
    expect(workers.fits).toBe(true);
    for (const h of workers.heaps) expect(h.bytes).toBeLessThanOrEqual(WASM_HEAP_BYTES);
    // One step more precise in any module would overflow its heap.
    for (const [module, format] of [['thinker', 'f16'], ['vision', 'f32'], ['talker', 'f32']] as const) {
      const richer = await checkFit(store, wasm(WASM_ALLOCATION), { ...workers.weights, [module]: format }, { pipeline: 'workers', hostBytes: 16 * GiB });
      expect(richer.fits).toBe(false);
    }
    // A host smaller than all heaps together pushes further down.
    const host = await fitWeights(store, wasm(WASM_ALLOCATION), 'auto', { pipeline: 'workers', hostBytes: 8 * GiB });
    expect(host.fits).toBe(true);
    expect(host.totalBytes).toBeLessThanOrEqual(8 * GiB);
    expect(host.totalBytes).toBeLessThan(workers.totalBytes);
  });

  it('auto on the 7B with workers: the Thinker reaches q4 and still overflows, the Talker\'s heap is relieved anyway', async () => {
    const report = await fitWeights(headers('7b'), wasm(WASM_ALLOCATION), 'auto', { pipeline: 'workers', hostBytes: 64 * GiB });
    expect(report.weights).toEqual({ thinker: 'q4', audio: 'f32', vision: 'f16', talker: 'f16' });
    expect(report.problems).toEqual(["the thinker worker's heap (thinker) needs 4.43 GiB, one wasm heap holds at most 4.00 GiB; or use a smaller model"]);
  });

  it('auto on a WebGPU-like device whose buffers are narrower than an f32 row: only the modules with such rows step down', async () => {
    const gpu: BackendInfo = { ...wasm(40000), kind: 'webgpu' };
    const report = await fitWeights(headers('7b'), gpu, 'auto', { speech: false });
    expect(report.fits).toBe(true);
    expect(report.weights.thinker).toBe('f16');
    for (const m of report.modules) expect(m.largestUnitBytes).toBeLessThanOrEqual(40000);
    expect(report.memoryLimitBytes).toBeNull();
  });

  it('explicit weights are checked as given, never changed', async () => {
    const given = resolveWeights({ thinker: 'f32' });
    const report = await fitWeights(headers('3b'), wasm(WASM_ALLOCATION), given, { pipeline: 'workers', hostBytes: 64 * GiB });
    expect(report.weights).toEqual(given);
    expect(report.weightsChosen).toBe(false);
    expect(report.fits).toBe(false);
    const omni = await Omni.load({ model: tiny.dir, device: 'wasm', weights: { thinker: 'q8' }, speech: false });
    expect(omni.weights).toEqual({ thinker: 'q8', audio: 'f32', vision: 'f32', talker: 'f32' });
    await omni.close();
  });

  it('refuses bad options', async () => {
    await rejects(Omni.check({ model: tiny.dir, weights: 'int4' as never }), 'BAD_INPUT', /"int4" is not a weight format/);
    await rejects(Omni.check({ model: tiny.dir, onProgress: () => {} } as never), 'BAD_INPUT', /unknown option onProgress/);
    await rejects(Omni.check({ model: tiny.dir, pipeline: 'threads' as never }), 'BAD_INPUT', /pipeline must be 'in-thread' or 'workers', got "threads"/);
    await rejects(Omni.check({ model: tiny.dir, speech: 'no' as never }), 'BAD_INPUT', /speech must be true or false, got "no"/);
    await rejects(Omni.check({ model: tiny.dir, cache: 'opfs' as never }), 'BAD_INPUT', /cache must be 'auto', a ModelCache \(get, put, delete\) or null, got "opfs"/);
    await rejects(Omni.check({ model: tiny.dir, onWarning: 'log' as never }), 'BAD_INPUT', /onWarning must be a function/);
    throws(() => resolveWeights({ vision: 'q2' } as never), 'BAD_INPUT', /vision is "q2"/);
    await rejects(Omni.load({ model: tiny.dir, weights: 'Auto' as never }), 'BAD_INPUT', /"Auto" is not a weight format; use 'auto'/);
    expect(resolveWeights({ thinker: 'q4' })).toEqual({ thinker: 'q4', audio: 'f32', vision: 'f32', talker: 'f32' });
  });
});
