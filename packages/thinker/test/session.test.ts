// The runtime on the oracle: chunked prefill, multi-turn, cancellation, overflow, NaN localisation,
// input validation, and configs beyond the golden one against an independent f64 forward.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError, type Backend, type Tensor } from '@omniweb/core';
import { TmropeStream, thinkerTmropeConfig } from '@omniweb/tmrope';
import { ThinkerSession, seededRandom, type PromptChunk, type Thinker, type TokenEvent } from '../src/index.js';
import {
  ALL_BACKENDS, TINY_BACKENDS, expectOmniError, loadCase, loadSynthetic, loadTiny, mediaFromGolden, syntheticCheckpoint, textPositions, type ThinkerCase,
} from './helpers.js';
import { referenceLogits } from './reference.js';

async function collect(events: AsyncIterable<TokenEvent>): Promise<TokenEvent[]> {
  const out: TokenEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

describe.each(TINY_BACKENDS)('ThinkerSession on the tiny checkpoint ($label)', ({ make, tol }) => {
  let backend: Backend;
  let thinker: Thinker;
  let p1: ThinkerCase;
  beforeAll(async () => {
    backend = await make();
    thinker = await loadTiny(backend);
    p1 = await loadCase('thinker_p1');
  });
  afterAll(() => {
    thinker.dispose();
    backend.destroy();
  });
  const hidden = 32;

  it('prefill in random chunk splits equals one-shot prefill, and generation from it matches the golden ids', async () => {
    const media = mediaFromGolden(backend, thinker.config, p1);
    const oneShot = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 }, maxChunkRows: 512 });
    const whole = await oneShot.prefill({ ids: p1.ids, media, positions: p1.positions }, { hidden: true, embeddings: true });
    oneShot.dispose();
    const random = seededRandom(2024);
    for (let trial = 0; trial < 3; trial++) {
      const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 }, maxChunkRows: 1 + Math.floor(random() * 40) });
      const hiddenRows = new Float32Array(p1.length * hidden);
      const offsets = { audio: 0, image: 0, video: 0 };
      for (let first = 0; first < p1.length;) {
        const count = Math.min(p1.length - first, 1 + Math.floor(random() * 30));
        const ids = p1.ids.subarray(first, first + count);
        const chunkMedia: Record<string, unknown> = {};
        for (const kind of ['audio', 'image'] as const) {
          const n = ids.filter((id) => id === thinker.config.tokens[kind]).length;
          if (n > 0) chunkMedia[kind] = { rows: media[kind], offset: offsets[kind] };
          offsets[kind] += n;
        }
        const positions = new Int32Array(3 * count);
        for (let s = 0; s < 3; s++) positions.set(p1.positions.subarray(s * p1.length + first, s * p1.length + first + count), s * count);
        const out = await session.prefill({ ids, media: chunkMedia, positions }, { hidden: true });
        hiddenRows.set(out.hidden!, first * hidden);
        first += count;
      }
      expect(relativeError(hiddenRows, whole.hidden!)).toBeLessThanOrEqual(tol);
      expect(session.ropeDeltas).toBe(p1.ropeDeltas);
      const ids = (await collect(session.generate({ maxNewTokens: 8, stopIds: [] }))).map((e) => e.id);
      expect(ids).toEqual(p1.generatedIds);
      session.dispose();
    }
    for (const t of Object.values(media)) backend.dispose(t as never);
  });

  it('streams p1 as it would arrive (text, audio block by block, image, text) with TmropeStream positions', async () => {
    const media = mediaFromGolden(backend, thinker.config, p1);
    const tokens = thinker.config.tokens;
    const stream = new TmropeStream(thinkerTmropeConfig(thinker.config));
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 } });
    const audioStart = p1.ids.indexOf(tokens.audioStart);
    const imageStart = p1.ids.indexOf(tokens.visionStart);
    const audioRows = p1.ids.filter((id) => id === tokens.audio).length;
    let at = 0;
    let audioOffset = 0;
    const feed = async (positions: Int32Array, extra: Partial<PromptChunk> = {}) => {
      const count = positions.length / 3;
      await session.prefill({ ids: p1.ids.subarray(at, at + count), positions, ...extra });
      at += count;
    };
    await feed(stream.text(p1.ids.subarray(0, audioStart)));
    await feed(stream.beginAudio());
    // The audio encoder emits 2-second blocks of 50 tokens while the user speaks.
    for (let done = 0; done < audioRows; done += 50) {
      const n = Math.min(50, audioRows - done);
      await feed(stream.audioBlock(n), { media: { audio: { rows: media.audio as Tensor, offset: audioOffset } } });
      audioOffset += n;
    }
    await feed(stream.endAudio());
    expect(at).toBe(imageStart);
    await feed(stream.image([1, 10, 12]), { media: { image: media.image } });
    await feed(stream.text(p1.ids.subarray(at)));
    expect(at).toBe(p1.length);
    expect(session.ropeDeltas).toBe(stream.ropeDeltas);
    expect(session.ropeDeltas).toBe(p1.ropeDeltas);
    const ids = (await collect(session.generate({ maxNewTokens: 8, stopIds: [] }))).map((e) => e.id);
    expect(ids).toEqual(p1.generatedIds);
    session.dispose();
    for (const t of Object.values(media)) backend.dispose(t as never);
  });

  it('events carry the fed token\'s final hidden state and input embedding for the Talker', async () => {
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, hidden]);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 } });
    await session.prefill({ embeddings, positions: p1.positions });
    const events = await collect(session.generate({ maxNewTokens: 3, hidden: true, embedding: true, stopIds: [], detokenize: (id) => `<${id}>` }));
    const last = p1.hiddenStates.length - 1;
    // First event: the last prompt row (golden); later events: the previously emitted token.
    expect(relativeError(events[0].hidden!, p1.hiddenStates[last].subarray((p1.length - 1) * hidden))).toBeLessThan(1e-6);
    expect(Array.from(events[0].embedding!)).toEqual(Array.from(p1.inputsEmbeds.subarray((p1.length - 1) * hidden)));
    const table = thinker.weights.embedTokens;
    const row = backend.embedding(table, Int32Array.of(events[0].id));
    expect(Array.from(events[1].embedding!)).toEqual(Array.from((await backend.read(row)) as Float32Array));
    expect(events.map((e) => e.text)).toEqual(p1.generatedIds.slice(0, 3).map((id) => `<${id}>`));
    backend.dispose(row);
    backend.dispose(embeddings);
    session.dispose();
  });

  it('a second turn continues from the cache and equals prefilling the whole conversation', async () => {
    const media = mediaFromGolden(backend, thinker.config, p1);
    const turn2 = Int32Array.of(198, 151644, 872, 198, 72, 83, 30, 151645, 198, 151644, 77091, 198);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 256 } });
    await session.prefill({ ids: p1.ids, media, positions: p1.positions });
    const reply = (await collect(session.generate({ maxNewTokens: 8, stopIds: [] }))).map((e) => e.id);
    expect(session.pending).toBe(reply[7]);
    // The reply's last token was emitted but never fed: the next turn starts with it.
    await session.prefill({ ids: Int32Array.of(session.pending!, ...turn2) });
    const continued = await collect(session.generate({ maxNewTokens: 4, stopIds: [], logits: true }));

    const whole = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 256 } });
    await whole.prefill({ ids: p1.ids, media, positions: p1.positions });
    const tail = Int32Array.of(...reply, ...turn2);
    await whole.prefill({ ids: tail, positions: textPositions(p1.length + p1.ropeDeltas, tail.length) });
    const reference = await collect(whole.generate({ maxNewTokens: 4, stopIds: [], logits: true }));
    expect(continued.map((e) => e.id)).toEqual(reference.map((e) => e.id));
    expect(relativeError(continued[0].logits!, reference[0].logits!)).toBeLessThanOrEqual(tol);
    expect(session.length).toBe(whole.length);
    session.dispose();
    whole.dispose();
    for (const t of Object.values(media)) backend.dispose(t as never);
  });

  it('rewinding to a mark forgets a withdrawn turn: the next turn equals one that never saw it', async () => {
    const media = mediaFromGolden(backend, thinker.config, p1);
    const withdrawn = Int32Array.of(198, 151644, 872, 198, 9707, 11, 1879, 13, 2585, 525);
    const turn2 = Int32Array.of(198, 151644, 872, 198, 72, 83, 30, 151645, 198, 151644, 77091, 198);
    const run = async (withdraw: boolean) => {
      const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 256 } });
      await session.prefill({ ids: p1.ids, media, positions: p1.positions });
      await collect(session.generate({ maxNewTokens: 8, stopIds: [] }));
      if (withdraw) {
        const mark = await session.mark();
        const before = { length: session.length, next: session.nextPosition, pending: session.pending };
        // A turn fed in part (one chunk of its text), then a reply begun on it.
        await session.prefill({ ids: Int32Array.of(session.pending!, ...withdrawn) });
        await collect(session.generate({ maxNewTokens: 2, stopIds: [] }));
        expect(await session.rewind(mark)).toBe(true);
        expect({ length: session.length, next: session.nextPosition, pending: session.pending }).toEqual(before);
        expect(session.cache.length).toBe(before.length);
      }
      await session.prefill({ ids: Int32Array.of(session.pending!, ...turn2) });
      const events = await collect(session.generate({ maxNewTokens: 4, stopIds: [], logits: true, hidden: true }));
      session.dispose();
      return events;
    };
    const rewound = await run(true);
    const never = await run(false);
    expect(rewound.map((e) => e.id)).toEqual(never.map((e) => e.id));
    rewound.forEach((e, i) => {
      expect(relativeError(e.logits!, never[i].logits!)).toBe(0);
      expect(relativeError(e.hidden!, never[i].hidden!)).toBe(0);
    });
    for (const t of Object.values(media)) backend.dispose(t as never);
  });

  it('a rewind right after the mark restores the next step exactly; foreign marks are refused', async () => {
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, hidden]);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 } });
    await session.prefill({ embeddings, positions: p1.positions });
    const mark = await session.mark();
    const first = await collect(session.generate({ maxNewTokens: 3, stopIds: [], hidden: true, logits: true }));
    expect(await session.rewind(mark)).toBe(true);
    // generate() continues from the restored logits and last fed rows, not the withdrawn ones.
    const again = await collect(session.generate({ maxNewTokens: 3, stopIds: [], hidden: true, logits: true }));
    expect(again.map((e) => e.id)).toEqual(p1.generatedIds.slice(0, 3));
    again.forEach((e, i) => {
      expect(relativeError(e.logits!, first[i].logits!)).toBe(0);
      expect(relativeError(e.hidden!, first[i].hidden!)).toBe(0);
    });
    const other = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 8 } });
    await expectOmniError(() => other.rewind(mark), 'BAD_INPUT');
    await expectOmniError(() => session.rewind({ ...mark }), 'BAD_INPUT');
    other.dispose();
    session.dispose();
    backend.dispose(embeddings);
  });

  it('cancelling mid-generation leaves the cache consistent: the next request continues exactly', async () => {
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, hidden]);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 } });
    await session.prefill({ embeddings, positions: p1.positions });
    const controller = new AbortController();
    const seen: number[] = [];
    await expectOmniError(async () => {
      for await (const e of session.generate({ maxNewTokens: 8, stopIds: [], signal: controller.signal })) {
        seen.push(e.id);
        if (seen.length === 3) controller.abort();
      }
    }, 'ABORTED');
    expect(seen).toEqual(p1.generatedIds.slice(0, 3));
    expect(session.length).toBe(p1.length + 2);
    expect(session.pending).toBe(seen[2]);
    // Breaking out of the loop also ends the request cleanly.
    for await (const e of session.generate({ maxNewTokens: 8, stopIds: [] })) {
      seen.push(e.id);
      break;
    }
    const rest = (await collect(session.generate({ maxNewTokens: 4, stopIds: [] }))).map((e) => e.id);
    expect([...seen, ...rest]).toEqual(p1.generatedIds);
    // An already-aborted signal stops before any work.
    const before = session.length;
    await expectOmniError(() => collect(session.generate({ maxNewTokens: 2, signal: AbortSignal.abort() })), 'ABORTED');
    expect(session.length).toBe(before);
    session.dispose();
    backend.dispose(embeddings);
  });

  it('stops at a stop id, emitting it without feeding it', async () => {
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, hidden]);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 200 } });
    await session.prefill({ embeddings, positions: p1.positions });
    const ids = (await collect(session.generate({ maxNewTokens: 8, stopIds: [p1.generatedIds[2]] }))).map((e) => e.id);
    expect(ids).toEqual(p1.generatedIds.slice(0, 3));
    expect(session.length).toBe(p1.length + 2);
    session.dispose();
    backend.dispose(embeddings);
  });

  it('a full plain cache refuses with CONTEXT_OVERFLOW and stays usable', async () => {
    const embeddings = backend.tensor(p1.inputsEmbeds, [p1.length, hidden]);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: p1.length + 2 } });
    await session.prefill({ embeddings, positions: p1.positions });
    const seen: number[] = [];
    await expectOmniError(async () => {
      for await (const e of session.generate({ maxNewTokens: 8, stopIds: [] })) seen.push(e.id);
    }, 'CONTEXT_OVERFLOW');
    expect(seen).toEqual(p1.generatedIds.slice(0, 3));
    expect(session.cache.length).toBe(p1.length + 2);
    await expectOmniError(() => session.prefill({ ids: [1] }), 'CONTEXT_OVERFLOW');
    session.dispose();
    const small = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 16 } });
    await expectOmniError(() => small.prefill({ embeddings, positions: p1.positions }), 'CONTEXT_OVERFLOW');
    expect(small.length).toBe(0);
    small.dispose();
    backend.dispose(embeddings);
  });

  it('rejects bad input with OmniError', async () => {
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 64 } });
    const vocab = thinker.config.text.vocab;
    await expectOmniError(() => collect(session.generate({ maxNewTokens: 2 })), 'BAD_INPUT', /prefill a prompt first/);
    await expectOmniError(() => session.prefill({ ids: [vocab] }), 'BAD_INPUT', /outside the vocabulary/);
    await expectOmniError(() => session.prefill({ ids: [1.5] }), 'BAD_INPUT');
    await expectOmniError(() => session.prefill({ ids: [] }), 'BAD_INPUT');
    await expectOmniError(() => session.prefill({ ids: [1, 2], positions: new Int32Array(3) }), 'BAD_INPUT', /3 × 2/);
    await expectOmniError(() => session.prefill({} as never), 'BAD_INPUT');
    const audio = thinker.config.tokens.audio;
    const rows = backend.tensor(new Float32Array(2 * hidden), [2, hidden]);
    await expectOmniError(() => session.prefill({ ids: [audio, audio], media: { audio: rows } }), 'BAD_INPUT', /needs its positions/);
    await expectOmniError(() => session.prefill({ ids: [audio, audio], positions: textPositions(0, 2) }), 'BAD_INPUT', /no media.audio/);
    await expectOmniError(() => session.prefill({ ids: [audio], media: { audio: rows }, positions: textPositions(0, 1) }), 'SHAPE_MISMATCH', /rows/);
    await expectOmniError(() => session.prefill({ ids: [5], media: { image: rows }, positions: textPositions(0, 1) }), 'BAD_INPUT', /no image placeholder/);
    await expectOmniError(() => session.prefill({ ids: [audio, audio, audio], media: { audio: { rows, offset: 0 } }, positions: textPositions(0, 3) }), 'SHAPE_MISMATCH');
    const narrow = backend.tensor(new Float32Array(2 * 16), [2, 16]);
    await expectOmniError(() => session.prefill({ embeddings: narrow }), 'SHAPE_MISMATCH');
    await expectOmniError(() => session.prefill({ ids: [1], embeddings: rows }), 'BAD_INPUT');
    expect(session.length).toBe(0);
    await session.prefill({ ids: [1, 2, 3] });
    await expectOmniError(() => collect(session.generate({ maxNewTokens: 0 })), 'BAD_INPUT');
    await expectOmniError(() => collect(session.generate({ maxNewTokens: 2, stopIds: [-1] })), 'BAD_INPUT');
    await expectOmniError(() => collect(session.generate({ maxNewTokens: 2, sampling: { topP: 2 } })), 'BAD_INPUT');
    // One request at a time.
    const running = session.generate({ maxNewTokens: 3, stopIds: [] });
    await running.next();
    await expectOmniError(() => session.prefill({ ids: [1] }), 'BAD_INPUT', /busy/);
    await running.return(undefined);
    await session.prefill({ ids: [4] });
    expect(() => new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 0 } })).toThrow(/capacity/);
    expect(() => new ThinkerSession(thinker, { cache: { kind: 'ring' } as never })).toThrow(/unknown cache policy/);
    expect(() => new ThinkerSession(thinker, { maxChunkRows: 0 })).toThrow(/maxChunkRows/);
    // Model-level entry points.
    expect(() => thinker.createRunState(0)).toThrow(/rows/);
    expect(() => thinker.createRunState(2, 'some' as never)).toThrow(/logit rows/);
    const state = thinker.createRunState(1);
    await expectOmniError(() => thinker.forward(state, {} as never, { ids: Int32Array.of(1), positions: textPositions(0, 1) }), 'BAD_INPUT', /KVCache/);
    await expectOmniError(() => thinker.forward(state, session.cache, { ids: Int32Array.of(1, 2), positions: textPositions(0, 2) }), 'BAD_INPUT', /1 ids/);
    await expectOmniError(() => thinker.readRows(state.hidden, 0, 2), 'BAD_INPUT', /readRows/);
    await expectOmniError(() => session.cache.write(5, state.k3, state.v3, 0), 'BAD_INPUT', /layer 5/);
    await expectOmniError(() => session.cache.commit(new Int32Array(2)), 'BAD_INPUT');
    state.dispose();
    session.dispose();
    await expectOmniError(() => session.prefill({ ids: [1] }), 'BAD_INPUT', /disposed/);
    for (const t of [rows, narrow]) backend.dispose(t);
  });
});

describe.each(ALL_BACKENDS)('other configs ($label) against an independent f64 forward', ({ make }) => {
  let backend: Backend;
  beforeAll(async () => { backend = await make(); });
  afterAll(() => backend.destroy());

  it('GQA 4:2 heads, head_dim ≠ hidden / heads, tied lm_head, 3 layers: logits and greedy decoding', async () => {
    const synthetic = await syntheticCheckpoint({ vocab: 300, hidden: 24, layers: 3, heads: 4, kvHeads: 2, headDim: 12, intermediate: 40, tied: true });
    const thinker = await loadSynthetic(backend, synthetic);
    expect(thinker.weights.tied).toBe(true);
    expect(thinker.weights.lmHead).toBe(thinker.weights.embedTokens);
    // Multimodal-like positions: the three streams differ.
    const L = 9;
    const ids = [5, 17, 250, 3, 3, 99, 120, 7, 42];
    const positions = Int32Array.of(0, 1, 2, 2, 2, 2, 4, 5, 6, /* H */ 0, 1, 2, 2, 3, 3, 4, 5, 6, /* W */ 0, 1, 2, 3, 2, 3, 4, 5, 6);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 32 }, maxChunkRows: 4 });
    await session.prefill({ ids: Int32Array.from(ids), positions });
    const events = await collect(session.generate({ maxNewTokens: 4, stopIds: [], logits: true }));
    // Reference: re-run the whole sequence for each step, feeding the emitted ids at text positions.
    const all = [...ids];
    const allPositions = Array.from({ length: 3 }, (_, s) => Array.from(positions.subarray(s * L, (s + 1) * L)));
    for (let step = 0; step < 4; step++) {
      const n = all.length;
      const flat = Int32Array.from(allPositions.flat());
      const logits = referenceLogits(synthetic, all, flat)[n - 1];
      expect(relativeError(events[step].logits!, logits)).toBeLessThan(1e-5);
      let best = 0;
      logits.forEach((v, i) => { if (v > logits[best]) best = i; });
      expect(events[step].id).toBe(best);
      all.push(best);
      allPositions.forEach((stream) => stream.push(7 + step));
    }
    session.dispose();
    thinker.dispose();
  });

  it('NaN in a layer is reported as NUMERIC naming that layer, and nothing is committed', async () => {
    const synthetic = await syntheticCheckpoint({ vocab: 64, hidden: 16, layers: 3, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, tied: false, nanLayer: 1 });
    const thinker = await loadSynthetic(backend, synthetic);
    const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 16 } });
    await expectOmniError(() => session.prefill({ ids: [1, 2, 3] }), 'NUMERIC', /decoder layer 1 /);
    expect(session.length).toBe(0);
    expect(session.cache.length).toBe(0);
    session.dispose();
    thinker.dispose();
  });

  it('loading refuses weights that disagree with the config', async () => {
    const synthetic = await syntheticCheckpoint({ vocab: 64, hidden: 16, layers: 1, heads: 2, kvHeads: 1, headDim: 8, intermediate: 32, tied: false });
    const wrong = { ...synthetic, config: { ...synthetic.config, text: { ...synthetic.config.text, intermediate: 48 } } };
    await expectOmniError(() => loadSynthetic(backend, wrong), 'SHAPE_MISMATCH', /mlp.gate_proj.weight is \[32, 16\]/);
    const deeper = { ...synthetic, config: { ...synthetic.config, text: { ...synthetic.config.text, layers: 2 } } };
    await expectOmniError(() => loadSynthetic(backend, deeper), 'MISSING_TENSOR', /layers.1/);
    await expectOmniError(() => loadSynthetic(backend, synthetic, 'int3' as never), 'BAD_INPUT');
  });
});
