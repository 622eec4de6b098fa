// Every public entry point refuses bad input with an OmniError before doing work, and codes past
// the DiT's table are decoded as code 0 (the reference streamer's rule, fact sheet §8.6).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadOmniConfig, openCheckpoint, type Backend, type HostArray } from '@omniweb/core';
import { createOracleBackend } from '@omniweb/kernels';
import { BigVgan, Dit, Token2Wav, type Voice } from '../src/index.js';
import { expectOmniError, goldenCase, loadTiny, TINY } from './helpers.js';

describe('Token2Wav input checks (oracle)', () => {
  let backend: Backend;
  let token2wav: Token2Wav;
  let voice: Voice;
  let codes: number[];

  beforeAll(async () => {
    backend = createOracleBackend();
    token2wav = await loadTiny(backend);
    const g = await goldenCase('talker_p1');
    voice = { cond: g('speaker_cond'), refMel: g('speaker_ref_mel') };
    codes = Array.from(g('codec_codes').data as Int32Array).slice(0, 6);
  });

  afterAll(() => {
    token2wav.dispose();
    backend.destroy();
  });

  const f32 = (shape: number[], fill = 0.5): HostArray => ({ dtype: 'f32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill) });

  it('codes past the DiT table decode as code 0; other non-ids are refused', async () => {
    const table = token2wav.dit.config.numEmbeds + 1;
    const withSpecial = [...codes];
    withSpecial[2] = table + 98; // a talker special id such as 8292 (codec pad/eos)
    const asZero = [...codes];
    asZero[2] = 0;
    const a = await token2wav.synthesize(withSpecial, voice, { seed: 1 });
    const b = await token2wav.synthesize(asZero, voice, { seed: 1 });
    expect(Array.from(a)).toEqual(Array.from(b));
    await expectOmniError(() => token2wav.synthesize([1, -1], voice), 'BAD_INPUT', /-1 at 1/);
    await expectOmniError(() => token2wav.synthesize([1, 2.5], voice), 'BAD_INPUT', /2\.5/);
    await expectOmniError(() => token2wav.synthesize([NaN], voice), 'BAD_INPUT');
    await expectOmniError(() => token2wav.synthesize([], voice), 'BAD_INPUT', /mel frames/);
    await expectOmniError(() => token2wav.synthesize(null as never, voice), 'BAD_INPUT');
  });

  it('refuses voices of the wrong shape, too short a reference mel, and non-finite values', async () => {
    const { condDim } = token2wav.dit.config.ecapa;
    await expectOmniError(() => token2wav.synthesize(codes, null as never), 'BAD_INPUT', /voice/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, cond: f32([condDim + 1]) }), 'BAD_INPUT', /cond/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, cond: f32([2, condDim]) }), 'BAD_INPUT', /cond/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, refMel: f32([10, 79]) }), 'BAD_INPUT', /refMel/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, refMel: f32([2, 10, 80]) }), 'BAD_INPUT', /refMel/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, refMel: f32([4, 80]) }), 'BAD_INPUT', /T_ref ≥ 5/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, cond: f32([condDim], NaN) }), 'BAD_INPUT', /finite/);
    await expectOmniError(() => token2wav.synthesize(codes, { ...voice, cond: { dtype: 'i32', shape: [condDim], data: new Int32Array(condDim) } }), 'BAD_INPUT');
  });

  it('refuses bad noise, ODE settings and aborted calls', async () => {
    const frames = 2 * codes.length;
    await expectOmniError(() => token2wav.synthesize(codes, voice, { noise: new Float32Array((frames - 1) * 80) }), 'BAD_INPUT', /noise holds 11 frames/);
    await expectOmniError(() => token2wav.synthesize(codes, voice, { noise: new Float32Array(81) }), 'BAD_INPUT', /noise/);
    await expectOmniError(() => token2wav.synthesize(codes, voice, { seed: 0.5 }), 'BAD_INPUT', /seed/);
    await expectOmniError(() => token2wav.synthesize(codes, voice, { steps: 1 }), 'BAD_INPUT', /steps/);
    await expectOmniError(() => token2wav.synthesize(codes, voice, { guidanceScale: -1 }), 'BAD_INPUT', /guidanceScale/);
    await expectOmniError(() => token2wav.synthesize(codes, voice, { swayCoefficient: NaN }), 'BAD_INPUT', /swayCoefficient/);
    const controller = new AbortController();
    controller.abort();
    await expectOmniError(() => token2wav.synthesize(codes, voice, { signal: controller.signal }), 'ABORTED');
  });

  it('stream refuses a source that is not iterable, and codes that are not ids', async () => {
    await expectOmniError(() => token2wav.stream(42 as never, voice).next(), 'BAD_INPUT', /iterable/);
    await expectOmniError(() => token2wav.stream([[1, 2], [3, -4]], voice).next(), 'BAD_INPUT', /-4/);
  });

  it('the models refuse wrong tensors, configs that disagree with the weights, and use after dispose', async () => {
    await expectOmniError(() => token2wav.bigvgan.forward(backend.empty([10, 79])), 'SHAPE_MISMATCH', /mel \[T, 80\]/);
    const { dit } = token2wav;
    await expectOmniError(() => dit.createRun(0), 'BAD_INPUT');
    const run = dit.createRun(4);
    const condition = dit.condition((voice.cond.data as Float32Array), voice.refMel.data as Float32Array);
    const x = backend.empty([4, 79]);
    try {
      await expectOmniError(() => dit.prepare(run, null as never, new Int32Array(2)), 'BAD_INPUT', /DitCondition/);
      await expectOmniError(() => dit.prepare(run, condition, new Int32Array(3)), 'BAD_INPUT', /2 codes/);
      await expectOmniError(() => dit.prepare(run, condition, Int32Array.of(1, dit.config.numEmbeds + 1)), 'BAD_INPUT', /outside the DiT's table/);
      await expectOmniError(() => dit.forward(run, x, 0), 'SHAPE_MISMATCH', /\[4, 80\]/);
      await expectOmniError(() => dit.forward({} as never, x, 0), 'BAD_INPUT', /DitRun/);
      await expectOmniError(() => dit.condition(new Float32Array(3), voice.refMel.data as Float32Array), 'BAD_INPUT', /enc_emb_dim/);
    } finally {
      backend.dispose(x);
      run.dispose();
      condition.dispose();
    }
    const checkpoint = await openCheckpoint(TINY);
    try {
      const config = (await loadOmniConfig(checkpoint, ['token2wav'])).token2wav!;
      await expectOmniError(() => Token2Wav.load(backend, checkpoint, null as never), 'BAD_INPUT');
      await expectOmniError(() => Dit.load(backend, checkpoint, { ...config.dit, hidden: 48 }), 'SHAPE_MISMATCH', /hidden_size 48/);
      await expectOmniError(() => BigVgan.load(backend, checkpoint, { ...config.bigvgan, upsampleInitialChannel: 128 }), 'SHAPE_MISMATCH', /conv_pre/);
      await expectOmniError(() => Token2Wav.load(backend, checkpoint, config, { format: 'q2' as never }), 'BAD_INPUT', /q2/);
      const dit = await Dit.load(backend, checkpoint, config.dit);
      dit.dispose();
      await expectOmniError(() => dit.createRun(2), 'BAD_INPUT', /disposed/);
    } finally {
      await checkpoint.close();
    }
  });
});
