// The KV cache policies on the oracle: sink+window equals the full cache while nothing is evicted,
// evicted caches keep constant memory and re-position keys exactly as fresh keys at the new positions.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError, type Backend, type RopeSpec } from '@omniweb/core';
import { KVCache, ThinkerSession, seededRandom, type Thinker, type TokenEvent } from '../src/index.js';
import { ALL_BACKENDS, TINY_BACKENDS, expectOmniError, loadCase, loadSynthetic, loadTiny, readAll, syntheticCheckpoint, textPositions } from './helpers.js';

async function collect(events: AsyncIterable<TokenEvent>): Promise<TokenEvent[]> {
  const out: TokenEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** The sink + window streams' sinks, window and eviction step. */
const S = 4;
const W = 16;
const evictStep = 4;

/** Prefills chunks of 1–8 random ids (seeded) until at least `count` were fed; returns them all. */
async function prefillRandomChunks(session: ThinkerSession, count: number): Promise<number[]> {
  const random = seededRandom(99);
  const fed: number[] = [];
  while (fed.length < count) {
    const ids = Array.from({ length: 1 + Math.floor(random() * 8) }, () => Math.floor(random() * 190));
    await session.prefill({ ids });
    fed.push(...ids);
  }
  return fed;
}

/** Counts the model's explicit device allocations. */
function counting(backend: Backend): { backend: Backend; allocations: () => number } {
  let count = 0;
  const proxy = new Proxy(backend, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop === 'empty' || prop === 'tensor' || prop === 'weight') {
        return (...args: unknown[]) => {
          count++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { backend: proxy, allocations: () => count };
}

describe.each(TINY_BACKENDS)('sink + window on the golden prompt (tiny checkpoint, $label)', ({ make }) => {
  let backend: Backend;
  let thinker: Thinker;
  beforeAll(async () => {
    backend = await make();
    thinker = await loadTiny(backend);
  });
  afterAll(() => {
    thinker.dispose();
    backend.destroy();
  });

  it('with sink + window ≥ sequence length it equals the full cache exactly; one row less, it does not', async () => {
    const p1 = await loadCase('thinker_p1');
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, 32]);
    const run = async (cache: ConstructorParameters<typeof ThinkerSession>[1]) => {
      const session = new ThinkerSession(thinker, cache);
      await session.prefill({ embeddings, positions: p1.positions });
      const events = await collect(session.generate({ maxNewTokens: 8, stopIds: [], logits: true }));
      const shift = session.cache.positionShift;
      session.dispose();
      return { events, shift };
    };
    const fed = p1.length + 7; // the 8th token is emitted, not fed
    const full = await run({ cache: { kind: 'plain', capacity: fed } });
    const sinkWindow = await run({ cache: { kind: 'sinkWindow', sink: 4, window: fed - 4 }, maxChunkRows: 512 });
    expect(full.events.map((e) => e.id)).toEqual(p1.generatedIds);
    expect(sinkWindow.events.map((e) => e.id)).toEqual(p1.generatedIds);
    sinkWindow.events.forEach((e, i) => expect(relativeError(e.logits!, full.events[i].logits!)).toBe(0));
    expect(sinkWindow.shift).toBe(0);
    // One row short: the last decode step evicts, and its logits move.
    const short = await run({ cache: { kind: 'sinkWindow', sink: 4, window: fed - 5, evictStep: 1 }, maxChunkRows: 512 });
    short.events.slice(0, 7).forEach((e, i) => expect(relativeError(e.logits!, full.events[i].logits!)).toBe(0));
    expect(relativeError(short.events[7].logits!, full.events[7].logits!)).toBeGreaterThan(1e-6);
    expect(short.shift).toBe(1);
    backend.dispose(embeddings);
  });
});

describe.each(ALL_BACKENDS)('sink + window over long streams (synthetic model, $label)', ({ make, tol }) => {
  const shape = { vocab: 200, hidden: 16, layers: 2, heads: 4, kvHeads: 2, headDim: 8, intermediate: 32, tied: false, seed: 7 };
  let base: Backend;

  beforeAll(async () => { base = await make(); });
  afterAll(() => base.destroy());

  it('a stream of 10×W decoded tokens keeps constant cache memory, allocates only on eviction, and stays finite and non-degenerate', async () => {
    const { backend, allocations } = counting(base);
    const thinker = await loadSynthetic(backend, await syntheticCheckpoint(shape));
    const session = new ThinkerSession(thinker, { cache: { kind: 'sinkWindow', sink: S, window: W, evictStep } });
    const { byteSize } = session.cache;
    await session.prefill({ ids: [1, 2, 3, 4, 5, 6] });
    // Until the cache is full nothing is allocated per token.
    const before = allocations();
    await collect(session.generate({ maxNewTokens: S + W - 6, stopIds: [], sampling: { temperature: 1, seed: 1 } }));
    expect(allocations()).toBe(before);
    expect(session.cache.length).toBe(S + W - 1);

    let evictions = 0;
    let previous: Float32Array | null = null;
    let lastLength = session.cache.length;
    for await (const e of session.generate({ maxNewTokens: 10 * W, stopIds: [], logits: true, sampling: { temperature: 1, seed: 2 } })) {
      const length = session.cache.length;
      if (length < lastLength) evictions++;
      lastLength = length;
      expect(length).toBeLessThanOrEqual(S + W);
      const logits = e.logits!;
      let min = Infinity;
      let max = -Infinity;
      for (const v of logits) {
        expect(Number.isFinite(v)).toBe(true);
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(max - min).toBeGreaterThan(0.5);
      if (previous) expect(relativeError(logits, previous)).toBeGreaterThan(1e-3);
      previous = logits;
    }
    expect(session.length).toBe(6 + S + W - 6 + 10 * W - 1);
    expect(evictions).toBeGreaterThanOrEqual(Math.floor((10 * W) / evictStep) - 1);
    // Each eviction uploads its position shift once (see the report: Backend has no write()); nothing else.
    expect(allocations() - before).toBeLessThanOrEqual(evictions);
    expect(session.cache.byteSize).toBe(byteSize);
    session.dispose();
    thinker.dispose();
  }, 600_000); // 10×W decode steps: minutes on SwiftShader when the machine is busy

  it('after evictions the keys equal fresh keys at the re-assigned positions (layer 0), values are untouched', async () => {
    const synthetic = await syntheticCheckpoint(shape);
    const thinker = await loadSynthetic(base, synthetic);
    const session = new ThinkerSession(thinker, { cache: { kind: 'sinkWindow', sink: S, window: W, evictStep } });
    const fed = await prefillRandomChunks(session, 10 * W);
    const cache = session.cache;
    const kept = [...fed.slice(0, S), ...fed.slice(fed.length - (cache.length - S))];
    expect(cache.positionShift).toBeGreaterThan(0);
    // Text positions: after closing the gaps the rows sit at 0, 1, 2, … in all three streams.
    for (let s = 0; s < 3; s++) expect(Array.from(cache.rowPositions.subarray(s * cache.capacity, s * cache.capacity + cache.length))).toEqual(kept.map((_, i) => i));
    expect(session.nextPosition - cache.positionShift).toBe(cache.length);

    const fresh = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: S + W } });
    await fresh.prefill({ ids: kept, positions: textPositions(0, kept.length) });
    const { keys: got, values: gotV } = await cache.readRows(0, 0, cache.length);
    const { keys: want, values: wantV } = await fresh.cache.readRows(0, 0, cache.length);
    // Moved keys carry one extra rotation's rounding; sinks and values are computed as fresh ones.
    expect(relativeError(got, want)).toBeLessThan(1e-6);
    const sinkRows = S * cache.rowSize;
    expect(relativeError(got.subarray(0, sinkRows), want.subarray(0, sinkRows))).toBeLessThanOrEqual(tol);
    expect(relativeError(gotV, wantV)).toBeLessThanOrEqual(tol);
    // And the next step runs on the compacted cache.
    await session.prefill({ ids: [5] });
    session.dispose();
    fresh.dispose();
    thinker.dispose();
  });

  it('closes a gap by the smallest stream of the first kept row, so image blocks keep their layout', async () => {
    const rope: RopeSpec = { invFreq: Float32Array.of(1, 0.1), stream: Int32Array.of(0, 1), style: 'half' };
    const cache = new KVCache(base, { layers: 1, kvHeads: 1, headDim: 4 }, { kind: 'sinkWindow', sink: 2, window: 6, evictStep: 2 }, rope);
    const random = seededRandom(5);
    const keyRows: Float32Array[] = [];
    const append = async (t: number, h: number, w: number) => {
      const start = await cache.reserve(1);
      const k = Float32Array.from({ length: 4 }, () => random() - 0.5);
      keyRows.push(k);
      const kt = base.tensor(k, [1, 1, 4]);
      const vt = base.tensor(k, [1, 1, 4]);
      cache.write(0, kt, vt, start);
      const shift = cache.positionShift; // the cache stores positions after its shift
      cache.commit(Int32Array.of(t - shift, h - shift, w - shift));
      base.dispose(kt);
      base.dispose(vt);
    };
    // Two text sinks, text 2…4, then an image block at bos 5: (6, 6 + i, 6 + j) for a 1×2 grid, then text 8.
    for (const p of [0, 1, 2, 3, 4]) await append(p, p, p);
    await append(5, 5, 5);
    await append(6, 6, 6);
    await append(6, 6, 7);
    expect(cache.length).toBe(8);
    await append(8, 8, 8); // evicts rows 2, 3 (positions 2, 3): the next row (4) moves to 2
    expect(cache.positionShift).toBe(2);
    const row = (r: number) => [0, 1, 2].map((s) => cache.rowPositions[s * cache.capacity + r]);
    expect([0, 1, 2, 3, 4, 5, 6].map(row)).toEqual([[0, 0, 0], [1, 1, 1], [2, 2, 2], [3, 3, 3], [4, 4, 4], [4, 4, 5], [6, 6, 6]]);
    // The moved keys are the originals turned back by 2 at every frequency.
    const moved = base.tensor(Float32Array.of(...keyRows[4], ...keyRows[7]), [2, 1, 4]);
    const back = base.rotary(moved, base.tensor(Int32Array.of(-2, -2, -2, -2), [2, 2]), rope);
    const want = (await readAll(base, back)) as Float32Array;
    const got = (await cache.readRows(0, 0, 7)).keys;
    expect(relativeError(Float32Array.of(...got.subarray(8, 12), ...got.subarray(20, 24)), want)).toBeLessThan(1e-6);
    expect(Array.from(got.subarray(0, 8))).toEqual([...keyRows[0], ...keyRows[1]]);
    cache.dispose();
  });

  it('rewinds a suffix of committed rows, through evictions of older rows, and refuses once the suffix was evicted', async () => {
    const rope: RopeSpec = { invFreq: Float32Array.of(1), stream: Int32Array.of(0), style: 'half' };
    const cache = new KVCache(base, { layers: 1, kvHeads: 1, headDim: 2 }, { kind: 'sinkWindow', sink: 2, window: 6, evictStep: 2 }, rope);
    let next = 0;
    const append = async (rows: number) => {
      await cache.reserve(rows);
      const positions = new Int32Array(3 * rows);
      for (let s = 0; s < 3; s++) for (let r = 0; r < rows; r++) positions[s * rows + r] = next + r - cache.positionShift;
      cache.commit(positions);
      next += rows;
    };
    await append(5);
    const mark = cache.appended;
    await append(2);
    expect(cache.rewind(mark)).toBe(true);
    expect([cache.length, cache.appended]).toEqual([5, 5]);
    next = 5;
    // Three more fill the cache past 8 rows: two pre-mark rows after the sinks are evicted, the new ones stay.
    await append(3);
    await append(1);
    expect(cache.length).toBe(7);
    expect(cache.rewind(mark)).toBe(true);
    expect([cache.length, cache.appended]).toEqual([3, 5]);
    // Past the window: the rows after the mark are partly evicted, so there is no going back.
    await append(4);
    await append(4);
    const length = cache.length;
    expect(cache.rewind(mark)).toBe(false);
    expect(cache.length).toBe(length);
    expect(() => cache.rewind(cache.appended + 1)).toThrow(/rewind/);
    expect(cache.rewind(cache.appended)).toBe(true);
    cache.dispose();
  });

  it('refuses bad policies and chunks larger than the window', async () => {
    const thinker = await loadSynthetic(base, await syntheticCheckpoint(shape));
    expect(() => new ThinkerSession(thinker, { cache: { kind: 'sinkWindow', sink: -1, window: 4 } })).toThrow(/sink/);
    expect(() => new ThinkerSession(thinker, { cache: { kind: 'sinkWindow', sink: 1, window: 4, evictStep: 5 } })).toThrow(/evictStep/);
    expect(() => new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 8, storage: 'int4' as 'int8' } })).toThrow(/storage "int4"/);
    const session = new ThinkerSession(thinker, { cache: { kind: 'sinkWindow', sink: 2, window: 8 } });
    expect(session.maxChunkRows).toBe(8);
    // The session splits long chunks to the window, so a long prompt streams through.
    await session.prefill({ ids: Array.from({ length: 30 }, (_, i) => i + 1) });
    expect(session.cache.length).toBeLessThanOrEqual(10);
    await expectOmniError(() => session.cache.reserve(9), 'CONTEXT_OVERFLOW', /larger than the attention window/);
    session.dispose();
    thinker.dispose();
  });
});

describe.each(TINY_BACKENDS)('int8 storage (synthetic model, $label)', ({ make, tol }) => {
  const shape = { vocab: 200, hidden: 32, layers: 2, heads: 4, kvHeads: 2, headDim: 16, intermediate: 32, tied: false, seed: 7 };
  let base: Backend;
  let thinker: Thinker;
  beforeAll(async () => {
    base = await make();
    thinker = await loadSynthetic(base, await syntheticCheckpoint(shape));
  });
  afterAll(() => {
    thinker.dispose();
    base.destroy();
  });

  it('holds codes and a scale per row and head: 136 bytes per row and head of 64, against f32\'s 512', () => {
    const rope: RopeSpec = { invFreq: Float32Array.of(1), stream: Int32Array.of(0), style: 'half' };
    const cache = new KVCache(base, { layers: 3, kvHeads: 2, headDim: 64 }, { kind: 'plain', capacity: 4096, storage: 'int8' }, rope);
    expect(cache.storage).toBe('int8');
    expect(cache.byteSize).toBe(3 * 4096 * 2 * (2 * 64 + 8));
    cache.dispose();
  });

  it('greedy decoding follows the f32 cache; with sink + window ≥ sequence length it equals the plain int8 cache exactly', async () => {
    const prompt = Array.from({ length: 20 }, (_, i) => (i * 37) % 190 + 1);
    const run = async (cache: ConstructorParameters<typeof ThinkerSession>[1]) => {
      const session = new ThinkerSession(thinker, cache);
      await session.prefill({ ids: prompt });
      const events = await collect(session.generate({ maxNewTokens: 8, stopIds: [], logits: true }));
      session.dispose();
      return events;
    };
    const fed = prompt.length + 7;
    const f32 = await run({ cache: { kind: 'plain', capacity: fed } });
    const plain = await run({ cache: { kind: 'plain', capacity: fed, storage: 'int8' } });
    const sinkWindow = await run({ cache: { kind: 'sinkWindow', sink: 4, window: fed - 4, storage: 'int8' } });
    expect(plain.map((e) => e.id)).toEqual(f32.map((e) => e.id));
    plain.forEach((e, i) => {
      const err = relativeError(e.logits!, f32[i].logits!);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(2e-2);
      expect(relativeError(sinkWindow[i].logits!, e.logits!)).toBe(0);
    });
  });

  it('evictions re-quantize moved keys turned back by the gap: within a few codes of fresh keys at the new positions; values unchanged', async () => {
    const policy = { kind: 'sinkWindow', sink: S, window: W, evictStep, storage: 'int8' } as const;
    const session = new ThinkerSession(thinker, { cache: policy });
    const fed = await prefillRandomChunks(session, 10 * W);
    const cache = session.cache;
    expect(cache.positionShift).toBeGreaterThan(0);
    const kept = [...fed.slice(0, S), ...fed.slice(fed.length - (cache.length - S))];
    const fresh = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: S + W, storage: 'int8' } });
    await fresh.prefill({ ids: kept, positions: textPositions(0, kept.length) });
    // Layer 0's keys and values come from the embeddings alone, so a fresh prefill of the kept tokens makes them again.
    const got = await cache.readRows(0, 0, cache.length);
    const want = await fresh.cache.readRows(0, 0, cache.length);
    const sinkRows = S * cache.rowSize;
    expect(relativeError(got.keys.subarray(0, sinkRows), want.keys.subarray(0, sinkRows))).toBeLessThanOrEqual(tol);
    const moved = relativeError(got.keys, want.keys);
    expect(moved).toBeGreaterThan(tol);
    expect(moved).toBeLessThan(2e-2);
    // Dequantized and quantized again, the values' codes come back.
    expect(relativeError(got.values, want.values)).toBeLessThanOrEqual(Math.max(tol, 1e-7));
    session.dispose();
    fresh.dispose();
  });

  it('streams 10×W decoded tokens in constant memory, allocating only per eviction, with finite and non-degenerate logits', async () => {
    const { backend, allocations } = counting(base);
    const model = await loadSynthetic(backend, await syntheticCheckpoint(shape));
    const session = new ThinkerSession(model, { cache: { kind: 'sinkWindow', sink: S, window: W, evictStep, storage: 'int8' } });
    const { byteSize } = session.cache;
    await session.prefill({ ids: [1, 2, 3, 4, 5, 6] });
    const before = allocations();
    let evictions = 0;
    let lastLength = session.cache.length;
    for await (const e of session.generate({ maxNewTokens: 10 * W, stopIds: [], logits: true, sampling: { temperature: 1, seed: 2 } })) {
      if (session.cache.length < lastLength) evictions++;
      lastLength = session.cache.length;
      expect(session.cache.length).toBeLessThanOrEqual(S + W);
      let min = Infinity;
      let max = -Infinity;
      for (const v of e.logits!) {
        expect(Number.isFinite(v)).toBe(true);
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(max - min).toBeGreaterThan(0.5);
    }
    // The first S + W − 6 tokens fill the cache.
    expect(evictions).toBeGreaterThanOrEqual(Math.floor((10 * W - (S + W - 6)) / evictStep));
    // Each eviction: the shift's positions and the moved keys' and values' f32 rows, shared by the layers.
    expect(allocations() - before).toBeLessThanOrEqual(3 * evictions);
    expect(session.cache.byteSize).toBe(byteSize);
    session.dispose();
    model.dispose();
  });
});

it('an int8 cache on WebGPU is refused with UNSUPPORTED_CONFIG', async () => {
  const { createWebGPUBackend } = await import('@omniweb/core');
  const gpu = await createWebGPUBackend();
  const rope: RopeSpec = { invFreq: Float32Array.of(1), stream: Int32Array.of(0), style: 'half' };
  try {
    await expectOmniError(() => new KVCache(gpu, { layers: 1, kvHeads: 1, headDim: 4 }, { kind: 'plain', capacity: 8, storage: 'int8' }, rope),
      'UNSUPPORTED_CONFIG', /int8 KV cache runs on the wasm backend/);
  } finally {
    gpu.destroy();
  }
});
