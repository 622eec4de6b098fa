// Waiting for the Thinker (fact sheet §7.2 step 6), the stop and suppress rules (§7.3), what happens to codes
// the DiT cannot embed, and input validation. On the oracle, against the golden codes of talker_p1.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isOmniError, openCheckpoint, type Backend, type OmniErrorCode } from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
import type { WeightSource } from '@omniweb/thinker';
import { Talker, TalkerStream, type TalkerStartOptions } from '../src/index.js';
import { TINY, collect, loadModels, talkerCase, thinkerReply, type Models, type TalkerCase, type ThinkerReply } from './helpers.js';

async function rejects(work: () => unknown, code: OmniErrorCode, message?: RegExp): Promise<void> {
  let error: unknown = null;
  try {
    await work();
  } catch (e) {
    error = e;
  }
  expect(isOmniError(error, code), `expected OmniError ${code}, got ${String(error)}`).toBe(true);
  if (message) expect((error as Error).message).toMatch(message);
}

/** Has the promise settled after the event loop has run for `ms`? */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  void promise.then(() => { settled = true; }, () => { settled = true; });
  await new Promise((resolve) => setTimeout(resolve, ms));
  return settled;
}

/** codec_head row `target` := factor × row `like`: with no bias, its logit becomes factor × like's. */
function boostCodecRow(target: number, like: number, factor = 1000) {
  return (source: WeightSource): WeightSource => ({
    has: (name) => source.has(name),
    info: (name) => source.info(name),
    readF32: (name) => source.readF32(name),
    readMatrix: async (name, format) => {
      const m = await source.readMatrix(name, format);
      if (name === 'talker.codec_head.weight' && m.format === 'f32') {
        for (let i = 0; i < m.cols; i++) m.data[target * m.cols + i] = factor * m.data[like * m.cols + i];
      }
      return m;
    },
  });
}

describe('talker stream (oracle)', () => {
  let backend: Backend;
  let models: Models;
  let golden: TalkerCase;
  let reply: ThinkerReply;
  const streams: TalkerStream[] = [];

  beforeAll(async () => {
    [golden, reply] = await Promise.all([talkerCase(), thinkerReply()]);
    backend = createOracleBackend();
    models = await loadModels(backend);
  });
  afterAll(() => {
    for (const s of streams) s.dispose();
    models?.talker.dispose();
    models?.thinker.dispose();
    backend?.destroy();
  });

  const greedy = (extra: Partial<TalkerStartOptions> = {}): TalkerStartOptions => ({
    speaker: golden.speaker, sampling: { temperature: 0 }, maxNewTokens: golden.calls, ...extra,
  });
  const start = (talker: Talker, options: TalkerStartOptions = greedy()) => {
    const stream = talker.start(reply.prompt, options);
    streams.push(stream);
    return stream;
  };
  const feedAll = (stream: TalkerStream) => {
    for (const token of reply.tokens) stream.push(token);
    stream.endOfText();
  };

  it('waits for reply token k before decode step k', async () => {
    const stream = start(models.talker);
    const codes = stream.codes()[Symbol.asyncIterator]();
    const firstCode = codes.next();
    expect(await settledWithin(firstCode, 20)).toBe(false); // the prefill needs r₀
    stream.push(reply.tokens[0]);
    expect((await firstCode).value).toBe(golden.codes[0]);
    const second = codes.next();
    expect(await settledWithin(second, 50)).toBe(false); // step 1 needs r₁
    stream.push(reply.tokens[1]);
    expect((await second).value).toBe(golden.codes[1]);
    for (const token of reply.tokens.slice(2)) stream.push(token);
    stream.endOfText();
    const rest: number[] = [];
    for (let r = await codes.next(); !r.done; r = await codes.next()) rest.push(r.value);
    expect(rest).toEqual(golden.codes.slice(2));
  });

  it('drops the last generated token at maxNewTokens, as the reference does', async () => {
    const stream = start(models.talker, greedy({ maxNewTokens: 5 }));
    feedAll(stream);
    expect(await collect(stream.codes())).toEqual(golden.codes.slice(0, 4));
  });

  it('stops at codec end and at codec pad, yielding neither', async () => {
    for (const stop of ['end', 'pad'] as const) {
      const b = createOracleBackend();
      const { thinker, talker } = await loadModels(b, 'f32', boostCodecRow(models.talker.config.codec[stop], golden.codes[0]));
      const stream = talker.start(reply.prompt, greedy());
      stream.push(reply.tokens[0]);
      expect(await collect(stream.codes()), stop).toEqual([]);
      // The Thinker may go on talking after the speech ended: accepted and ignored.
      stream.push(reply.tokens[1]);
      stream.endOfText();
      talker.dispose();
      thinker.dispose();
      b.destroy();
    }
  });

  it('never samples codec bos, though its raw logit is the largest', async () => {
    const b = createOracleBackend();
    const bos = models.talker.config.codec.start;
    const { thinker, talker } = await loadModels(b, 'f32', boostCodecRow(bos, golden.codes[0]));
    let rawArgmax = -1;
    const stream = talker.start(reply.prompt, greedy({
      maxNewTokens: 2,
      inspect: ({ step, logits }) => { if (step === 0) rawArgmax = logits.indexOf(Math.max(...logits)); },
    }));
    feedAll(stream);
    expect(await collect(stream.codes())).toEqual([golden.codes[0]]);
    expect(rawArgmax).toBe(bos);
    talker.dispose();
    thinker.dispose();
    b.destroy();
  });

  it('passes a code the DiT cannot embed on unchanged, like the reference', async () => {
    const b = createOracleBackend();
    const ditRows = models.config.token2wav!.dit.numEmbeds + 1;
    const { codec } = models.talker.config;
    const beyond = [ditRows, ditRows + 1].find((id) => id !== codec.pad && id !== codec.end && id !== codec.start)!;
    const { thinker, talker } = await loadModels(b, 'f32', boostCodecRow(beyond, golden.codes[0]));
    const stream = talker.start(reply.prompt, greedy({ maxNewTokens: 2 }));
    feedAll(stream);
    expect(await collect(stream.codes())).toEqual([beyond]);
    talker.dispose();
    thinker.dispose();
    b.destroy();
  });

  it('samples with the reference defaults, reproducibly for a seed', async () => {
    const run = async (seed: number) => {
      const stream = start(models.talker, { speaker: golden.speaker, sampling: { seed }, maxNewTokens: golden.calls });
      feedAll(stream);
      return collect(stream.codes());
    };
    const a = await run(7);
    expect(await run(7)).toEqual(a);
    expect(a.length).toBeGreaterThan(0);
    expect(a).not.toContain(models.talker.config.codec.start);
    expect(a).not.toEqual(golden.codes);
  });

  it('ends with ABORTED when the signal fires or the stream is disposed while waiting', async () => {
    const controller = new AbortController();
    const waiting = start(models.talker);
    const aborted = collect(waiting.codes({ signal: controller.signal }));
    controller.abort();
    await rejects(() => aborted, 'ABORTED');

    const disposed = start(models.talker);
    disposed.push(reply.tokens[0]);
    const codes = disposed.codes()[Symbol.asyncIterator]();
    expect((await codes.next()).value).toBe(golden.codes[0]);
    const next = codes.next();
    disposed.dispose();
    await rejects(() => next, 'ABORTED');
    await rejects(() => disposed.push(reply.tokens[1]), 'BAD_INPUT', /disposed/);
  });

  it('rejects bad input with OmniError', async () => {
    const { talker, thinker, config } = models;
    const { prompt, tokens } = reply;
    await rejects(() => talker.start(prompt, { speaker: { bosToken: -1 } }), 'BAD_INPUT', /bosToken/);
    await rejects(() => talker.start(prompt, { speaker: { bosToken: config.thinker.text.vocab } }), 'BAD_INPUT', /bosToken/);
    await rejects(() => talker.start(prompt, undefined as unknown as TalkerStartOptions), 'BAD_INPUT');
    await rejects(() => talker.start({ ...prompt, thinkerHidden: prompt.thinkerHidden.subarray(1) }, greedy()), 'BAD_INPUT', /thinkerHidden/);
    await rejects(() => talker.start({ ...prompt, imageGrids: [] }, greedy()), 'BAD_INPUT', /image/);
    await rejects(() => talker.start(prompt, greedy({ maxNewTokens: 0 })), 'BAD_INPUT', /maxNewTokens/);
    await rejects(() => talker.start(prompt, greedy({ maxChunkRows: 1.5 })), 'BAD_INPUT', /maxChunkRows/);
    await rejects(() => talker.start(prompt, greedy({ cache: { kind: 'plain', capacity: 0 } })), 'BAD_INPUT', /capacity/);
    await rejects(() => talker.start(prompt, greedy({ sampling: { topP: 2 } })), 'BAD_INPUT', /topP/);

    const stream = start(talker);
    await rejects(() => stream.push({ hidden: tokens[0].hidden.subarray(1), embedding: tokens[0].embedding }), 'BAD_INPUT', /Float32Array/);
    await rejects(() => stream.push(null as never), 'BAD_INPUT');
    stream.endOfText();
    await rejects(() => stream.endOfText(), 'BAD_INPUT', /already/);
    await rejects(() => stream.push(tokens[0]), 'BAD_INPUT', /endOfText/);
    await rejects(() => collect(stream.codes()), 'BAD_INPUT', /before any token/);

    const once = start(talker);
    feedAll(once);
    const iterating = collect(once.codes());
    await rejects(() => collect(once.codes()), 'BAD_INPUT', /once/);
    expect(await iterating).toEqual(golden.codes);

    await rejects(() => new TalkerStream({} as never, prompt, greedy()), 'BAD_INPUT', /Talker/);
    await rejects(() => Talker.load({} as never, {} as never, talker.config), 'BAD_INPUT', /Thinker/);
    await rejects(() => Talker.load(thinker, {} as never, talker.config), 'BAD_INPUT', /weight source/);
    await rejects(() => Talker.load(thinker, {} as never, config.thinker as never), 'BAD_INPUT', /talker config/);
    const source = { readMatrix: () => { throw new Error('not read'); } } as unknown as WeightSource;
    await rejects(() => Talker.load(thinker, source, { ...talker.config, embeddingSize: 16 }), 'BAD_CONFIG', /embedding_size/);
  });

  it('names the checkpoint\'s talker tensors in load errors', async () => {
    const { thinker, talker } = models;
    const lacking = (missing: string) => (source: WeightSource): WeightSource => ({
      has: (name) => name !== missing && source.has(name),
      info: (name) => (name === missing ? { shape: [3] } : source.info(name)),
      readF32: (name) => source.readF32(name),
      readMatrix: (name, format) => source.readMatrix(name, format),
    });
    const checkpoint = await openCheckpoint(TINY);
    try {
      for (const name of ['talker.model.layers.1.mlp.up_proj.weight', 'talker.codec_head.weight', 'talker.thinker_to_talker_proj.bias', 'talker.model.embed_tokens.weight']) {
        await rejects(() => Talker.load(thinker, lacking(name)(checkpoint), talker.config), 'SHAPE_MISMATCH', new RegExp(`^${name.replaceAll('.', '\\.')} is \\[3\\]`));
      }
      await rejects(() => Talker.load(thinker, checkpoint, { ...talker.config, intermediate: 40 }), 'SHAPE_MISMATCH', /talker\.model\.layers\.0\.mlp\.gate_proj\.weight/);
    } finally {
      await checkpoint.close();
    }
  });
});
