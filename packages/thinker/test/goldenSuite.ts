// The Thinker against the golden vectors of the official HF implementation (fixtures/golden/README.md):
// every hidden state, the logits, per-position argmax and 8 greedy tokens, on both input paths.
// One suite per backend and weight format; the *.test.ts files pick them.
import { afterAll, describe, expect, it } from 'vitest';
import { relativeError, type Backend, type WeightFormat } from '@omniweb/core';
import { ThinkerSession, type Thinker } from '../src/index.js';
import { columns, loadCase, loadTiny, mediaFromGolden, readAll, type ThinkerCase } from './helpers.js';

const CASES = ['thinker_p1', 'thinker_p2'] as const;
/** f32 bar of the golden README; the other formats are measured and reported. */
export const F32_TOL = 1e-4;

export interface GoldenRow {
  backend: string;
  format: WeightFormat;
  name: string;
  tensor: string;
  err: number;
}
const table: GoldenRow[] = [];
afterAll(() => {
  for (const r of table) console.log(`golden ${r.backend} ${r.format} ${r.name} ${r.tensor}: ${r.err.toExponential(2)}`);
});

/** Full-sequence pass from inputs_embeds with logits for every row. */
async function embedsPass(backend: Backend, thinker: Thinker, c: ThinkerCase) {
  const { hidden } = thinker.config.text;
  const state = thinker.createRunState(c.length, 'all');
  const cache = thinker.createCache({ kind: 'plain', capacity: c.length });
  const embeddings = backend.tensor(c.inputsEmbeds, [c.length, hidden]);
  const layers: Float32Array[] = [];
  try {
    const lastLogits = await thinker.forward(state, cache, { embeddings, positions: c.positions }, {
      inspect: async (_, residual) => { layers.push(await readAll(backend, residual)); },
    });
    const argmax = backend.argmax(state.logits);
    const out = {
      inputs: await readAll(backend, state.inputs),
      layers,
      final: await readAll(backend, state.hidden),
      lastLogits,
      argmax: (await backend.read(argmax)) as Int32Array,
      logits: await readAll(backend, state.logits),
    };
    backend.dispose(argmax);
    return out;
  } finally {
    state.dispose();
    cache.dispose();
    backend.dispose(embeddings);
  }
}

/** Prefill from ids with media rows, then greedy decoding through the session. */
async function idsGeneration(backend: Backend, thinker: Thinker, c: ThinkerCase) {
  const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: c.length + 8 } });
  const media = mediaFromGolden(backend, thinker.config, c);
  try {
    const prefill = await session.prefill({ ids: c.ids, media, positions: c.positions }, { embeddings: true, hidden: true });
    const ids: number[] = [];
    const stepLogits: Float32Array[] = [];
    for await (const event of session.generate({ maxNewTokens: 8, logits: true, stopIds: [] })) {
      ids.push(event.id);
      stepLogits.push(event.logits!);
    }
    return { prefill, ids, stepLogits, ropeDeltas: session.ropeDeltas };
  } finally {
    session.dispose();
    for (const t of Object.values(media)) backend.dispose(t as never);
  }
}

/**
 * `generation` names the cases that also run the ids path and 8 decode steps; fewer where each
 * step is slow (WebGPU on SwiftShader: seconds per 151936-row lm_head), with `stepTimeout` ms each.
 */
export function goldenSuite(
  label: string, makeBackend: () => Promise<Backend> | Backend, format: WeightFormat, tol: number,
  generation: readonly string[] = CASES, stepTimeout = 10_000,
) {
  describe(`golden Thinker on ${label}, ${format} weights`, () => {
    let backend: Backend;
    let thinker: Thinker;
    const record = (name: string, tensor: string, err: number) => {
      table.push({ backend: label, format, name, tensor, err });
      expect(err, `${name} ${tensor}`).toBeLessThanOrEqual(tol);
    };

    it('loads the tiny checkpoint', async () => {
      backend = await makeBackend();
      thinker = await loadTiny(backend, format);
      expect(thinker.weights.tied).toBe(false);
      expect(thinker.weights.layers).toHaveLength(2);
    });

    for (const name of CASES) {
      it(`${name}: inputs_embeds path — every hidden state, logits, per-position argmax`, async () => {
        const c = await loadCase(name);
        const out = await embedsPass(backend, thinker, c);
        const vocab = thinker.config.text.vocab;
        expect(relativeError(out.inputs, c.hiddenStates[0])).toBe(0);
        out.layers.slice(0, -1).forEach((h, l) => record(name, `hidden_states[${l + 1}]`, relativeError(h, c.hiddenStates[l + 1])));
        record(name, `hidden_states[${c.hiddenStates.length - 1}] (final norm)`, relativeError(out.final, c.hiddenStates[c.hiddenStates.length - 1]));
        record(name, 'logits_last', relativeError(out.lastLogits, c.logitsLast));
        record(name, 'logits[:, :256]', relativeError(columns(out.logits, c.length, vocab, 0, 256), c.logitsHead));
        record(name, 'logits[:, 151600:]', relativeError(columns(out.logits, c.length, vocab, 151600, vocab - 151600), c.logitsTail));
        const mismatched = Array.from(out.argmax).filter((id, t) => id !== c.logitsArgmax[t]).length;
        table.push({ backend: label, format, name, tensor: 'argmax mismatches', err: mismatched });
        if (format === 'f32') expect(Array.from(out.argmax)).toEqual(Array.from(c.logitsArgmax));
      }, 10 * stepTimeout);

      if (generation.includes(name)) it(`${name}: ids + media path — merged embeddings, rope_deltas, 8 greedy tokens`, async () => {
        const c = await loadCase(name);
        const out = await idsGeneration(backend, thinker, c);
        const last = c.hiddenStates.length - 1;
        // Media rows pass through untouched; token rows are the table's rows in its format.
        if (format === 'f32') expect(relativeError(out.prefill.embeddings!, c.inputsEmbeds)).toBe(0);
        else record(name, 'merged inputs_embeds', relativeError(out.prefill.embeddings!, c.inputsEmbeds));
        record(name, 'prefill hidden (final norm)', relativeError(out.prefill.hidden!, c.hiddenStates[last]));
        expect(out.ropeDeltas).toBe(c.ropeDeltas);
        // Step i's logits follow from ids 0…i−1: compare the steps whose inputs still match the reference.
        const vocab = thinker.config.text.vocab;
        const width = vocab - 151600;
        let steps = 1;
        while (steps < 8 && out.ids[steps - 1] === c.generatedIds[steps - 1]) steps++;
        const stepTails = new Float32Array(steps * width);
        out.stepLogits.slice(0, steps).forEach((l, i) => stepTails.set(l.subarray(151600), i * width));
        record(name, `decode logits[151600:] ×${steps}`, relativeError(stepTails, c.stepLogitsTail.subarray(0, steps * width)));
        const same = out.ids.every((id, i) => id === c.generatedIds[i]);
        table.push({ backend: label, format, name, tensor: `greedy ids ${same ? 'identical' : `differ: ${out.ids.join(',')}`}`, err: same ? 0 : 1 });
        if (format === 'f32') expect(out.ids).toEqual(c.generatedIds);
      }, 10 * stepTimeout);
    }

    it('frees everything', () => {
      thinker.dispose();
      backend.destroy();
    });
  });
}

