import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OmniError } from '../../core/src/errors.js';
import { readCase } from '../../core/src/weights/index.js';
import { parseRunCaseArgs, runCase, runCaseCommand, type RunCaseOptions, type Stage } from '../src/runCase.js';

const golden = fileURLToPath(new URL('../../../fixtures/golden/', import.meta.url));
const tinyOmni = join(golden, 'tiny-omni');

function options(casePath: string, outPath = '/dev/null'): RunCaseOptions {
  return parseRunCaseArgs(['--model', tinyOmni, '--case', casePath, '--out', outPath]);
}

const silent = () => {};

/** Test-only stages: they touch the case, the checkpoint and the config, so the plumbing is exercised end to end. */
const nextIds: Stage = {
  name: 'next-ids',
  needs: ['input_ids'],
  run(ctx) {
    const ids = ctx.array('input_ids');
    ctx.emit('ids_plus_one', { dtype: 'i32', shape: ids.shape, data: Int32Array.from(ids.data, (v) => v + 1) });
  },
};
const countIds: Stage = {
  name: 'count-ids',
  needs: ['ids_plus_one'],
  run(ctx) {
    const ids = ctx.array('ids_plus_one');
    const audioToken = ctx.config.thinker.tokens.audio;
    ctx.emit('audio_token_count', { dtype: 'i32', shape: [1], data: Int32Array.of(ids.data.filter((v) => v === audioToken + 1).length) });
  },
};
const embedFirst: Stage = {
  name: 'embed-first',
  needs: ['input_ids'],
  async run(ctx) {
    // One embedding row read through the checkpoint the stage was given, in the weight format asked for.
    const table = await ctx.checkpoint.readMatrix('thinker.model.embed_tokens.weight', ctx.options.weights);
    if (table.format !== 'f32') throw new Error('expected f32');
    const id = ctx.array('input_ids').data[0];
    const hidden = ctx.config.thinker.text.hidden;
    ctx.emit('first_embedding', { dtype: 'f32', shape: [hidden], data: table.data.slice(id * hidden, (id + 1) * hidden) });
  },
};
const needsPixels: Stage = { name: 'vision', needs: ['pixel_values', 'image_grid_thw'], run: () => { throw new Error('must be skipped'); } };

describe('runCase plumbing', () => {
  let scratch: string;
  beforeAll(() => { scratch = mkdtempSync(join(tmpdir(), 'omniweb-runcase-')); });
  afterAll(() => { rmSync(scratch, { recursive: true }); });

  it('gives its stages a backend made with the wasm flags', async () => {
    const backendInfo: Stage = {
      name: 'backend-info',
      needs: ['input_ids'],
      async run(ctx) {
        const info = (await ctx.backend()).info;
        ctx.emit('threads', { dtype: 'i32', shape: [1], data: Int32Array.of(info.threads) });
        ctx.emit('relaxed', { dtype: 'i32', shape: [1], data: Int32Array.of(info.wasmSimd === 'relaxed' ? 1 : 0) });
        ctx.emit('exact', { dtype: 'i32', shape: [1], data: Int32Array.of(/exact q8\/q4 GEMV activations/.test(info.name) ? 1 : 0) });
      },
    };
    const casePath = join(golden, 'thinker_p1.safetensors');
    const argv = ['--model', tinyOmni, '--case', casePath, '--out', '/dev/null', '--threads', '1', '--wasm-simd', 'baseline', '--quantized-activations', 'exact'];
    const { outputs } = await runCase(parseRunCaseArgs(argv), [backendInfo], silent);
    expect([outputs.get('threads')!.data[0], outputs.get('relaxed')!.data[0], outputs.get('exact')!.data[0]]).toEqual([1, 0, 1]);
  });

  it('runs stages whose needs are met, in order, feeding emitted arrays forward, and skips the rest', async () => {
    const casePath = join(golden, 'thinker_p1.safetensors');
    const result = await runCase(options(casePath), [nextIds, needsPixels, countIds, embedFirst], silent);
    expect(result.ran).toEqual(['next-ids', 'count-ids', 'embed-first']);
    expect(result.skipped).toEqual([{ stage: 'vision', missing: ['pixel_values', 'image_grid_thw'] }]);

    const inputs = await readCase(casePath);
    const ids = inputs.get('input_ids')!.data;
    expect([...result.outputs.get('ids_plus_one')!.data]).toEqual([...ids].map((v) => v + 1));
    // The README's p1 prompt carries 62 audio tokens (the 2.5 s clip).
    expect([...result.outputs.get('audio_token_count')!.data]).toEqual([ids.filter((v) => v === 151646).length]);
    expect(result.outputs.get('audio_token_count')!.data[0]).toBe(62);
    // The case records the merged inputs_embeds; its first row is the embedding of input_ids[0] (a text token).
    const embeds = inputs.get('inputs_embeds')!;
    expect([...result.outputs.get('first_embedding')!.data]).toEqual([...embeds.data.slice(0, 32)]);
  });

  it('lets an emitted array shadow the case array of the same name', async () => {
    const replace: Stage = { name: 'replace', needs: [], run: (ctx) => ctx.emit('input_ids', { dtype: 'i32', shape: [1], data: Int32Array.of(7) }) };
    const result = await runCase(options(join(golden, 'thinker_p1.safetensors')), [replace, nextIds], silent);
    expect([...result.outputs.get('ids_plus_one')!.data]).toEqual([8]);
  });

  it('refuses a name emitted twice and an array whose data does not fit its shape', async () => {
    const twice: Stage = { name: 'twice', needs: [], run: (ctx) => ctx.emit('ids_plus_one', { dtype: 'i32', shape: [0], data: new Int32Array(0) }) };
    await expect(runCase(options(join(golden, 'thinker_p1.safetensors')), [nextIds, twice], silent))
      .rejects.toThrow(/stage twice emitted ids_plus_one, already emitted by stage next-ids/);
    const ragged: Stage = { name: 'ragged', needs: [], run: (ctx) => ctx.emit('x', { dtype: 'f32', shape: [2, 2], data: new Float32Array(3) }) };
    await expect(runCase(options(join(golden, 'thinker_p1.safetensors')), [ragged], silent))
      .rejects.toThrow(/stage ragged emitted x as f32 \[2, 2\] with 3 values/);
  });

  it('names the stage and the array when a stage reads something absent', async () => {
    const reader: Stage = { name: 'reader', needs: [], run: (ctx) => { ctx.array('pixel_values'); } };
    const err = await runCase(options(join(golden, 'audio.safetensors')), [reader], silent).catch((e) => e);
    expect(err).toBeInstanceOf(OmniError);
    expect(err.code).toBe('BAD_INPUT');
    expect(err.message).toMatch(/stage reader reads pixel_values, which is neither in .*audio\.safetensors nor emitted by an earlier stage/);
  });

  it('writes every emitted array, under its name, to --out', async () => {
    const out = join(scratch, 'out.safetensors');
    const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    try {
      await runCaseCommand(['--model', tinyOmni, '--case', join(golden, 'thinker_p1.safetensors'), '--out', out], [nextIds, countIds]);
      expect(JSON.parse(String(write.mock.calls[0][0]))).toMatchObject({ ran: ['next-ids', 'count-ids'], outputs: ['ids_plus_one', 'audio_token_count'] });
    } finally {
      write.mockRestore();
    }
    const written = await readCase(out);
    expect([...written.keys()]).toEqual(['ids_plus_one', 'audio_token_count']);
    expect(written.get('audio_token_count')).toEqual({ dtype: 'i32', shape: [1], data: Int32Array.of(62) });
  });
});

describe('parseRunCaseArgs', () => {
  const base = ['--model', 'm', '--case', 'c.safetensors', '--out', 'o.safetensors'];

  it('applies defaults and reads every flag in both spellings', () => {
    expect(parseRunCaseArgs(base)).toEqual({
      model: 'm', casePath: 'c.safetensors', outPath: 'o.safetensors', device: 'wasm', weights: 'f32', kvCache: 'f32',
      maxNewTokens: null, talkerMaxNewTokens: null, useAudioInVideo: false, fps: null, wasm: {},
    });
    expect(parseRunCaseArgs([...base, '--device=webgpu', '--weights', 'q4', '--max-new-tokens', '8', '--talker-max-new-tokens=25', '--use-audio-in-video', '--fps', '2.5']))
      .toMatchObject({ device: 'webgpu', weights: 'q4', maxNewTokens: 8, talkerMaxNewTokens: 25, useAudioInVideo: true, fps: 2.5 });
    expect(parseRunCaseArgs([...base, '--kv-cache', 'int8']).kvCache).toBe('int8');
    expect(parseRunCaseArgs([...base, '--threads', '1', '--quantized-activations=int8', '--wasm-simd', 'baseline']).wasm)
      .toEqual({ threads: 1, quantizedActivations: 'int8', simd: 'baseline' });
  });

  const bad: [string[], RegExp][] = [
    [[...base, '--device', 'cuda'], /--device cuda is not one of wasm, webgpu/],
    [[...base, '--max-new-tokens', '1.5'], /--max-new-tokens 1.5 is not a positive integer/],
    [[...base, '--fps', '-2'], /--fps -2 is not a positive number/],
    [[...base, '--fps'], /--fps needs a value/],
    [[...base, '--weights', '--fps', '2'], /--weights needs a value/],
    [[...base, '--use-audio-in-video=yes'], /--use-audio-in-video takes no value/],
    [[...base, '--model', 'n'], /--model is given twice/],
    [[...base, 'extra'], /unexpected argument "extra"/],
    [['--case', 'c', '--out', 'o'], /--model is required \(the checkpoint folder\)/],
    [[...base, '--threads', '0'], /run-case: --threads 0 is not a positive integer/],
    [[...base, '--quantized-activations', 'int4'], /--quantized-activations int4 is not one of auto, int16, int8, exact/],
    [[...base, '--wasm-simd', 'avx'], /--wasm-simd avx is not one of auto, relaxed, baseline/],
    [[...base, '--device', 'webgpu', '--threads', '2'], /--threads sets the wasm backend; with --device webgpu it changes nothing/],
    [[...base, '--kv-cache', 'int4'], /--kv-cache int4 is not one of f32, int8/],
    [[...base, '--device', 'webgpu', '--kv-cache', 'int8'], /--kv-cache int8 runs on --device wasm/],
  ];
  for (const [argv, message] of bad) {
    it(`rejects ${argv.slice(6).join(' ') || argv.join(' ')}`, () => {
      let caught: unknown;
      try { parseRunCaseArgs(argv); } catch (e) { caught = e; }
      expect(caught).toBeInstanceOf(OmniError);
      expect((caught as OmniError).code).toBe('BAD_INPUT');
      expect((caught as OmniError).message).toMatch(message);
    });
  }
});
