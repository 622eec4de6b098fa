// The DiT's ODE solvers on the golden tiny checkpoint with the golden talker_p1 noise: rk4 (the
// reference, the default) and the cheaper midpoint and euler, which converge to the same mel as
// the grid gets finer. The tiny model's random weights make the velocity swing with the 1000·t
// time sinusoid, so even rk4 on the reference's 10 points sits ~5% from the ODE's solution;
// convergence is judged against rk4 on a fine grid (577 points, ~1e-5 from 2049 points).
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { relativeError, type Backend } from '@omniweb/core';
// Not exported from @omniweb/core (yet): the wasm backend from its source module.
import { createWasmBackend } from '../../core/src/wasm/index.js';
import { DIT_SOLVERS, solverEvaluations, type DitSolver, type SynthesisOptions, type Token2Wav, type Voice } from '../src/index.js';
import { F32_TOL } from './goldenSuite.js';
import { expectOmniError, goldenCase, loadTiny, transposed } from './helpers.js';

const FINE_STEPS = 577;
const table: string[] = [];

describe('DiT solvers on wasm', () => {
  let backend: Backend;
  let token2wav: Token2Wav;
  let voice: Voice;
  let codes: Int32Array;
  let noise: Float32Array;
  let goldenMel: Float32Array;
  let reference: Float32Array;
  let fine: Float32Array;
  const mel = (options: SynthesisOptions = {}) => token2wav.mel(codes, voice, { noise, ...options });

  beforeAll(async () => {
    backend = await createWasmBackend();
    token2wav = await loadTiny(backend);
    const g = await goldenCase('talker_p1');
    codes = g('codec_codes').data as Int32Array;
    voice = { cond: g('speaker_cond'), refMel: g('speaker_ref_mel') };
    noise = g('ode_initial_noise').data as Float32Array;
    goldenMel = g('dit_mel').data as Float32Array;
    reference = await mel();
    fine = await mel({ steps: FINE_STEPS });
  });

  afterAll(() => {
    token2wav.dispose();
    backend.destroy();
    for (const row of table) console.log(row);
  });

  it('counts evaluations per sample: 4, 2 and 1 per step (36, 18 and 9 on the reference grid)', () => {
    expect(DIT_SOLVERS).toEqual(['rk4', 'midpoint', 'euler']);
    expect(DIT_SOLVERS.map((s) => solverEvaluations(s, 10))).toEqual([36, 18, 9]);
  });

  it('rk4 is the default: the same bits when named, and the golden dit_mel within the f32 bar', async () => {
    const named = await mel({ solver: 'rk4', steps: 10 });
    expect(named).toEqual(reference);
    const frames = reference.length / token2wav.dit.config.melDim;
    const err = relativeError(transposed(reference, frames, token2wav.dit.config.melDim), goldenMel);
    table.push(`solvers: rk4 @10 points vs golden dit_mel ${err.toExponential(2)}`);
    expect(err).toBeLessThanOrEqual(F32_TOL);
  });

  it.each(['euler', 'midpoint'] as const)('%s converges to the rk4 mel as the grid gets finer', async (solver: DitSolver) => {
    const atDefault = await mel({ solver });
    const errors: number[] = [];
    for (const steps of [37, 145, FINE_STEPS]) errors.push(relativeError(await mel({ solver, steps }), fine));
    const atReference = relativeError(atDefault, reference);
    table.push(`solvers: ${solver} @10 points (${solverEvaluations(solver, 10)} evaluations) vs rk4 @10 (36): ${atReference.toExponential(2)}; `
      + `vs rk4 @${FINE_STEPS} at 37/145/${FINE_STEPS} points: ${errors.map((e) => e.toExponential(2)).join(' / ')}`);
    expect(atReference).toBeGreaterThan(0);
    expect(errors[1]).toBeLessThan(errors[0]);
    expect(errors[2]).toBeLessThan(errors[1] / 4);
    // First order vs second order on the finest grid.
    expect(errors[2]).toBeLessThan(solver === 'euler' ? 2e-3 : 3e-4);
  });

  it('streams with the chosen solver: 9 evaluations per window for euler, 36 for rk4', async () => {
    const forward = vi.spyOn(token2wav.dit, 'forward');
    try {
      // 60 codes: chunk 0 (due at 48 codes) and the rest, two DiT windows.
      const streamCodes = Array.from({ length: 60 }, (_, i) => (i * 37) % (token2wav.dit.config.numEmbeds + 1));
      const decode = async (options: SynthesisOptions) => {
        forward.mockClear();
        const pieces: Float32Array[] = [];
        for await (const piece of token2wav.stream(streamCodes, voice, { seed: 1, ...options })) pieces.push(piece);
        return { calls: forward.mock.calls.length, samples: pieces.reduce((n, p) => n + p.length, 0) };
      };
      const rk4 = await decode({});
      const euler = await decode({ solver: 'euler' });
      expect(rk4).toEqual({ calls: 2 * 36, samples: 60 * token2wav.samplesPerCode });
      expect(euler).toEqual({ calls: 2 * 9, samples: 60 * token2wav.samplesPerCode });
    } finally {
      forward.mockRestore();
    }
  });

  it('rejects an unknown solver with BAD_INPUT and stays usable', async () => {
    await expectOmniError(() => mel({ solver: 'heun' as DitSolver }), 'BAD_INPUT', /solver must be one of rk4, midpoint, euler/);
    await expectOmniError(() => mel({ solver: 'euler', steps: 1 }), 'BAD_INPUT', /steps/);
    expect(await mel()).toEqual(reference);
  });
});
