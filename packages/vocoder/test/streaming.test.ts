// Streaming decode (fact sheet §8.6) against the whole-utterance decode of the same codes and noise:
// exact length, chunk sizes, chunks yielded as soon as their codes are in, no clicks at the seams.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend } from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend } from '../../core/src/wasm/index.js';
import type { Token2Wav, Voice } from '../src/index.js';
import { goldenCase, loadTiny } from './helpers.js';

/** Codes in [0, limit) from a fixed seed (a random talker: what matters here is the windowing). */
function randomCodes(count: number, limit: number, seed: number): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % limit;
  });
}

/** Yields the codes in the given batch sizes (cycled), counting how many the consumer has taken. */
function talker(codes: number[], batches: number[], taken: { count: number }): AsyncIterable<number[]> {
  return {
    async *[Symbol.asyncIterator]() {
      for (let at = 0, i = 0; at < codes.length; i++) {
        const batch = codes.slice(at, at + batches[i % batches.length]);
        at += batch.length;
        taken.count = at;
        yield batch;
      }
    },
  };
}

function maxStep(x: Float32Array, from: number, to: number): number {
  let step = 0;
  for (let i = from; i + 1 < to; i++) step = Math.max(step, Math.abs(x[i + 1] - x[i]));
  return step;
}

// WebGPU runs the same graph; on SwiftShader these decodes would take minutes, so it is left out here.
const BACKENDS: readonly [string, () => Promise<Backend> | Backend][] = [['oracle', createOracleBackend], ['wasm', () => createWasmBackend()]];

describe.each(BACKENDS)('streaming Token2Wav on %s', (_, makeBackend) => {
  let backend: Backend;
  let token2wav: Token2Wav;
  let voice: Voice;

  beforeAll(async () => {
    backend = await makeBackend();
    token2wav = await loadTiny(backend);
    const g = await goldenCase('talker_p1');
    voice = { cond: g('speaker_cond'), refMel: g('speaker_ref_mel') };
  });

  afterAll(() => {
    token2wav.dispose();
    backend.destroy();
  });

  it('150 codes in uneven batches: 4 chunks, 480 samples per code, no clicks at the seams, close to the whole decode', async () => {
    const codes = randomCodes(150, token2wav.dit.config.numEmbeds + 1, 7);
    const hop = token2wav.bigvgan.hop;
    const taken = { count: 0 };
    const chunks: Float32Array[] = [];
    const takenAtChunk: number[] = [];
    for await (const chunk of token2wav.stream(talker(codes, [1, 1, 5, 2, 11], taken), voice, { seed: 3 })) {
      chunks.push(chunk);
      takenAtChunk.push(taken.count);
    }
    // Chunk i is due once 2·N − 24 mel frames reach 72·(i + 1): N = 48, 84, 120; then the rest.
    expect(chunks.map((c) => c.length)).toEqual([(72 - 20) * hop, 72 * hop, 72 * hop, (300 - 216 + 20) * hop]);
    expect(takenAtChunk.slice(0, 3).map((n, i) => n >= 48 + 36 * i && n < 48 + 36 * i + 11)).toEqual([true, true, true]);
    const streamed = new Float32Array(chunks.reduce((n, c) => n + c.length, 0));
    const seams: number[] = [];
    chunks.reduce((at, c) => {
      streamed.set(c, at);
      if (at > 0) seams.push(at);
      return at + c.length;
    }, 0);
    expect(streamed.length).toBe(codes.length * token2wav.samplesPerCode);

    // No click: the jump across each seam is no larger than the largest step anywhere else.
    const isSeamStep = (i: number) => seams.includes(i + 1);
    let elsewhere = 0;
    for (let i = 0; i + 1 < streamed.length; i++) if (!isSeamStep(i)) elsewhere = Math.max(elsewhere, Math.abs(streamed[i + 1] - streamed[i]));
    const atSeams = seams.map((s) => maxStep(streamed, s - 1, s + 1));
    for (const step of atSeams) expect(step).toBeLessThanOrEqual(elsewhere);

    const whole = await token2wav.synthesize(codes, voice, { seed: 3 });
    let signal = 0;
    let error = 0;
    for (let i = 0; i < whole.length; i++) {
      signal += whole[i] ** 2;
      error += (streamed[i] - whole[i]) ** 2;
    }
    const snr = 10 * Math.log10(signal / error);
    // The tiny model's random weights give clipped noise (steps up to 2), so also hold the seams
    // to the whole decode: within a mel frame of a seam it deviates no more than anywhere else.
    const nearSeam = (i: number) => seams.some((at) => Math.abs(i - at) <= hop);
    let seamDeviation = 0;
    let otherDeviation = 0;
    for (let i = 0; i < whole.length; i++) {
      const d = Math.abs(streamed[i] - whole[i]);
      if (nearSeam(i)) seamDeviation = Math.max(seamDeviation, d);
      else otherDeviation = Math.max(otherDeviation, d);
    }
    console.log(
      `streamed vs whole decode: SNR ${snr.toFixed(1)} dB; largest deviation ${seamDeviation.toExponential(2)} near seams, `
      + `${otherDeviation.toExponential(2)} elsewhere; steps at seams ${atSeams.map((s) => s.toFixed(3)).join(', ')}, elsewhere ≤ ${elsewhere.toFixed(3)}`,
    );
    expect(seamDeviation).toBeLessThanOrEqual(2 * otherDeviation);
    expect(snr).toBeGreaterThan(40);
  });

  it('a source that ends before the first chunk is due is decoded whole, as one chunk', async () => {
    const codes = randomCodes(30, token2wav.dit.config.numEmbeds + 1, 11);
    const chunks: Float32Array[] = [];
    for await (const chunk of token2wav.stream(codes.map((c) => [c]), voice, { seed: 5 })) chunks.push(chunk);
    expect(chunks).toHaveLength(1);
    expect(Array.from(chunks[0])).toEqual(Array.from(await token2wav.synthesize(codes, voice, { seed: 5 })));
  });
});
