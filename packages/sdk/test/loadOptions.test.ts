// Omni.load's speech, wasm, cache and onWarning options, in-thread and with a worker per stage.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { memoryCache, parseManifest, MANIFEST_FILE, type LoadWarning } from '@omniweb/core';
import { convertCheckpoint } from '../../cli/src/convert.js';
import { Omni, type PipelineKind } from '../src/index.js';
import { collect, makeTiny, rejects, throws } from './helpers.js';

let tiny: Awaited<ReturnType<typeof makeTiny>>;
let converted: string;
beforeAll(async () => {
  tiny = await makeTiny();
  converted = join(tiny.dir, '..', 'tiny-q4');
  // Small shards, so that a cache can hold some of them and not the rest.
  await convertCheckpoint({ source: tiny.dir, out: converted, weights: 'q4', shardBytes: 2 * 2 ** 20 });
}, 300_000);
afterAll(() => tiny?.remove());

/** One text turn; its reply ids. */
async function textTurn(omni: Omni): Promise<number[]> {
  const session = omni.session({ maxNewTokens: 3 });
  const reader = collect(session);
  const result = await session.send({ text: 'Hi' });
  await session.close();
  await reader.done;
  return result.ids;
}

describe('Omni.load options', () => {
  for (const pipeline of ['in-thread', 'workers'] as PipelineKind[]) {
    it(`speech: false (${pipeline}): no voices, a spoken session is BAD_INPUT, text turns answer the same as with speech loaded`, async () => {
      const textOnly = await Omni.load({ model: tiny.dir, device: 'wasm', weights: 'q8', pipeline, speech: false });
      const full = await Omni.load({ model: tiny.dir, device: 'wasm', weights: 'q8', pipeline });
      try {
        expect(textOnly.canSpeak).toBe(false);
        expect(textOnly.voices).toEqual([]);
        expect(full.canSpeak).toBe(true);
        throws(() => textOnly.session({ speech: true }), 'BAD_INPUT', /loaded with speech: false/);
        throws(() => textOnly.session({ voice: full.voices[0] }), 'BAD_INPUT', /speech is off/);
        // The failed sessions left the model usable; the Thinker is the same with or without speech.
        const ids = await textTurn(textOnly);
        expect(ids).toHaveLength(3);
        const fullSession = full.session({ speech: false, maxNewTokens: 3 });
        const reader = collect(fullSession);
        expect((await fullSession.send({ text: 'Hi' })).ids).toEqual(ids);
        await fullSession.close();
        await reader.done;
      } finally {
        await textOnly.close();
        await full.close();
      }
    }, 300_000);
  }

  for (const pipeline of ['in-thread', 'workers'] as PipelineKind[]) {
    it(`wasm options (${pipeline}) reach the wasm backend: its threads and GEMV activations`, async () => {
      const omni = await Omni.load({ model: tiny.dir, device: 'wasm', wasm: { threads: 1, quantizedActivations: 'exact' }, weights: 'q8', pipeline, speech: false });
      try {
        expect(omni.device.threads).toBe(1);
        expect(omni.device.name).toContain('exact q8/q4 GEMV activations');
        expect(await textTurn(omni)).toHaveLength(3);
      } finally {
        await omni.close();
      }
    }, 300_000);
  }

  it('refuses wasm options that are not an object, or that the wasm backend refuses, with BAD_INPUT', async () => {
    await rejects(Omni.load({ model: tiny.dir, device: 'wasm', wasm: 'fast' as never }), 'BAD_INPUT', /wasm must be an object/);
    await rejects(Omni.check({ model: tiny.dir, device: 'wasm', wasm: null as never }), 'BAD_INPUT', /wasm must be an object/);
    await rejects(Omni.load({ model: tiny.dir, device: 'wasm', wasm: { quantizedActivations: 'int4' as never } }), 'BAD_INPUT', /quantizedActivations must be/);
    await rejects(Omni.load({ model: tiny.dir, device: 'wasm', wasm: { threads: 0 } }), 'BAD_INPUT', /threads must be an integer/);
  });

  it('cache and onWarning reach the checkpoint: a full cache warns and the load goes on in memory', async () => {
    const manifest = parseManifest(readFileSync(join(converted, MANIFEST_FILE), 'utf8'), converted);
    expect(manifest.shards.length).toBeGreaterThan(1);
    const warnings: LoadWarning[] = [];
    const cache = memoryCache({ maxBytes: manifest.shards[0].bytes });
    const omni = await Omni.load({ model: converted, device: 'wasm', weights: 'q4', speech: false, cache, onWarning: (w) => warnings.push(w) });
    try {
      expect(warnings.map((w) => w.kind)).toEqual(['cache-full']);
      expect(warnings[0].message).toMatch(/memory model cache is full/);
      expect(await textTurn(omni)).toHaveLength(3);
    } finally {
      await omni.close();
    }
  }, 300_000);

  it("cache: 'auto' with workers: each worker opens its own cache and the model answers", async () => {
    const warnings: LoadWarning[] = [];
    const omni = await Omni.load({ model: converted, device: 'wasm', weights: 'q4', pipeline: 'workers', cache: 'auto', onWarning: (w) => warnings.push(w) });
    try {
      expect(omni.canSpeak).toBe(true);
      expect(await textTurn(omni)).toHaveLength(3);
      // Node's default cache is memory without a cap: nothing to warn about.
      expect(warnings).toEqual([]);
    } finally {
      await omni.close();
    }
  }, 300_000);

  it('refuses bad load options before reading any weight', async () => {
    await rejects(Omni.load({ model: tiny.dir, caches: 'auto' } as never), 'BAD_INPUT', /unknown option caches; known: model, device, wasm, weights, pipeline, speech, cache, onWarning/);
    await rejects(Omni.load({ model: tiny.dir, speech: 1 as never }), 'BAD_INPUT', /speech must be true or false, got 1/);
    await rejects(Omni.load({ model: tiny.dir, pipeline: 'workers', cache: memoryCache() }), 'BAD_INPUT', /a ModelCache object cannot cross to the stage workers; with pipeline 'workers' pass cache: 'auto'/);
    await rejects(Omni.load({ model: tiny.dir, cache: {} as never }), 'BAD_INPUT', /cache must be 'auto', a ModelCache/);
    await rejects(Omni.load({ model: tiny.dir, onWarning: 1 as never }), 'BAD_INPUT', /onWarning must be a function/);
  });
});
