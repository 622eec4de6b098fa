// The Talker against talker_p1 of the official HF implementation (fixtures/golden/README.md): rope ids,
// the projection's input and output at prefill, the first decode input, the raw logits of every forward
// call and the 24 greedy codes (repetition penalty 1.05). The Thinker reply comes from our f32 Thinker,
// fed up front or, with `interleaved`, token by token while the Thinker runs on the same backend.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { relativeError, type Backend } from '@omniweb/core';
import type { TalkerStream } from '../src/index.js';
import type { Models } from './helpers.js';
import { collect, loadModels, readAll, runThinker, talkerCase, thinkerReply, type TalkerCase, type ThinkerReply } from './helpers.js';

/** f32 bar of the golden README. */
export const F32_TOL = 1e-4;

const table: string[] = [];
afterAll(() => {
  for (const line of table) console.log(line);
});

export interface SuiteOptions {
  /** Prefill in passes of this many rows. */
  maxChunkRows?: number;
  /** Also run the Thinker and the Talker concurrently (the Thinker's decode steps must be affordable here). */
  interleaved?: boolean;
}

export function goldenSuite(name: string, makeBackend: () => Backend | Promise<Backend>, { maxChunkRows, interleaved }: SuiteOptions = {}): void {
  describe(`talker golden p1 (${name}${maxChunkRows ? `, prefill passes of ${maxChunkRows} rows` : ''})`, () => {
    let backend: Backend;
    let models: Models;
    let golden: TalkerCase;
    let reply: ThinkerReply;

    beforeAll(async () => {
      [golden, reply] = await Promise.all([talkerCase(), thinkerReply()]);
      backend = await makeBackend();
      models = await loadModels(backend);
    });
    afterAll(() => {
      models?.talker.dispose();
      models?.thinker.dispose();
      backend?.destroy();
    });

    it('our Thinker gave the golden reply', () => {
      expect(reply.ids).toEqual(golden.thinkerIds);
      expect(reply.tokens.length).toBe(golden.thinkerIds.length - 1);
    });

    it('matches rope ids, projections, every step\'s logits and the codes', async () => {
      const { talker } = models;
      const vocab = talker.config.vocab;
      const logits: Float32Array[] = [];
      let positions: Int32Array | null = null;
      let projIn: Float32Array | null = null;
      let projOut: Float32Array | null = null;
      let step1ProjIn: Float32Array | null = null;
      const stream = talker.start(reply.prompt, {
        speaker: golden.speaker,
        sampling: { temperature: 0 },
        maxNewTokens: golden.calls,
        maxChunkRows,
        inspect: async (step) => {
          expect(step.step).toBe(logits.length);
          logits.push(step.logits.slice());
          if (step.step === 0) {
            positions = step.positions.slice();
            projIn = await readAll(backend, step.projIn);
            projOut = await readAll(backend, step.projOut);
          }
          if (step.step === 1) step1ProjIn = await readAll(backend, step.projIn);
        },
      });
      for (const token of reply.tokens) stream.push(token);
      stream.endOfText();
      const codes = await collect(stream.codes());

      expect(stream.ropeDeltas).toBe(golden.ropeDeltas);
      expect(Array.from(positions!)).toEqual(Array.from(golden.positions));
      const errors: [string, number][] = [
        ['prefill_proj_in', relativeError(projIn!, golden.projIn)],
        ['prefill_proj_out', relativeError(projOut!, golden.projOut)],
        ['step1_proj_in', relativeError(step1ProjIn!, golden.step1ProjIn)],
      ];
      expect(logits.length).toBe(golden.calls);
      let worst = 0;
      for (let k = 0; k < golden.calls; k++) {
        const err = relativeError(logits[k], golden.stepLogits.subarray(k * vocab, (k + 1) * vocab));
        worst = Math.max(worst, err);
      }
      errors.push([`step_logits_last (worst of ${golden.calls})`, worst]);
      for (const [tensor, err] of errors) {
        table.push(`golden talker ${name}${maxChunkRows ? ` chunk ${maxChunkRows}` : ''} ${tensor}: ${err.toExponential(2)}`);
        expect(err, tensor).toBeLessThanOrEqual(F32_TOL);
      }
      expect(codes).toEqual(golden.codes);
    });

    if (interleaved) it('runs beside the Thinker, a token behind, with the codes of feeding everything up front', async () => {
      const { thinker, talker, config } = models;
      const log: string[] = [];
      let stream: TalkerStream | null = null;
      let talking: Promise<number[]> | null = null;
      const ids = await runThinker(thinker, config, (prompt) => {
        stream = talker.start(prompt, { speaker: golden.speaker, sampling: { temperature: 0 }, maxNewTokens: golden.calls });
        talking = (async () => {
          const codes: number[] = [];
          for await (const code of stream!.codes()) {
            log.push('code');
            codes.push(code);
          }
          return codes;
        })();
      }, (token) => {
        log.push('push');
        stream!.push(token);
      });
      stream!.endOfText();
      log.push('end');
      expect(ids).toEqual(golden.thinkerIds);
      expect(await talking!).toEqual(golden.codes);
      // Codes came out while the Thinker was still producing tokens, never ahead of the reply token they need.
      expect(log.indexOf('code')).toBeGreaterThan(-1);
      expect(log.indexOf('code')).toBeLessThan(log.lastIndexOf('push'));
      const beforeEnd = log.slice(0, log.indexOf('end'));
      beforeEnd.forEach((_, i) => {
        const seen = beforeEnd.slice(0, i + 1);
        expect(seen.filter((e) => e === 'code').length).toBeLessThanOrEqual(seen.filter((e) => e === 'push').length);
      });
    });
  });
}
