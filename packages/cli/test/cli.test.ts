import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openCheckpoint, readCase } from '../../core/src/weights/index.js';
import { STAGES } from '../src/stages.js';
import { omniweb, type Run } from './cliProcess.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const golden = join(root, 'fixtures/golden');
const tinyOmni = join(golden, 'tiny-omni');

/** The contract for bad input: exit 2 and exactly one `error: CODE: message` line. */
function expectBadInput(run: Run, code: string, message: RegExp): void {
  expect(run.code, run.stderr).toBe(2);
  const lines = run.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^error: ${code}: `));
  expect(lines[0]).toMatch(message);
}

describe('omniweb inspect', () => {
  let scratch: string;
  beforeAll(() => { scratch = mkdtempSync(join(tmpdir(), 'omniweb-cli-')); });
  afterAll(() => { rmSync(scratch, { recursive: true }); });

  it('lists every tensor of tiny-omni with the validated config', async () => {
    const run = await omniweb('inspect', tinyOmni);
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    const ckpt = await openCheckpoint(tinyOmni);
    try {
      expect(report.tensorCount).toBe(708);
      expect(report.tensors.map((t: { name: string }) => t.name)).toEqual(ckpt.names());
      for (const t of report.tensors) {
        const info = ckpt.info(t.name);
        expect([t.dtype, t.shape]).toEqual([info.dtype, info.shape]);
      }
    } finally {
      await ckpt.close();
    }
    expect(report.config.thinker.text.hidden).toBe(32);
    expect(report.config.talker.codec.end).toBe(8294);
    // The golden README's parameter split: thinker 9.88 M, talker 0.49 M, token2wav 0.48 M, 10,837,904 in all.
    // The file also stores one buffer, the DiT's 8 rotary inv_freq values, which the README does not count.
    const { thinker, talker, token2wav } = report.parameters;
    expect(report.tensors.find((t: { name: string }) => t.name === 'token2wav.code2wav_dit_model.rotary_embed.inv_freq').shape).toEqual([8]);
    expect(thinker + talker + token2wav - 8).toBe(10_837_904);
    expect([thinker, talker, token2wav].map((n: number) => Math.round(n / 1e4) / 100)).toEqual([9.88, 0.49, 0.48]);
  });

  it('inspects a lone case file with no config', async () => {
    const run = await omniweb('inspect', join(golden, 'audio.safetensors'));
    expect(run.code, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.config).toBeNull();
    expect(report.tensors.find((t: { name: string }) => t.name === 'audio_embeds')).toEqual({ name: 'audio_embeds', dtype: 'F32', shape: [62, 32] });
  });

  it('exits 2 with one error line for a missing path, a truncated file and a config that contradicts the weights', async () => {
    expectBadInput(await omniweb('inspect', join(scratch, 'absent')), 'IO', /absent/);

    const truncated = join(scratch, 'cut.safetensors');
    writeFileSync(truncated, readFileSync(join(golden, 'token2wav.safetensors')).subarray(0, 5000));
    expectBadInput(await omniweb('inspect', truncated), 'TRUNCATED', /cut\.safetensors is 5000 bytes but its header describes \d+/);

    const edited = join(scratch, 'edited');
    const config = JSON.parse(readFileSync(join(tinyOmni, 'config.json'), 'utf8'));
    config.thinker_config.text_config.vocab_size = 152064;
    mkdirSync(edited);
    symlinkSync(join(tinyOmni, 'model.safetensors'), join(edited, 'model.safetensors'));
    writeFileSync(join(edited, 'config.json'), JSON.stringify(config));
    expectBadInput(await omniweb('inspect', edited), 'SHAPE_MISMATCH', /thinker\.model\.embed_tokens\.weight is \[151936, 32\], but config\.json implies \[152064, 32\]/);
  });

  it('exits 2 on a wrong call', async () => {
    expectBadInput(await omniweb('inspect'), 'BAD_INPUT', /inspect takes one path/);
    expectBadInput(await omniweb('frobnicate'), 'BAD_INPUT', /unknown command "frobnicate"; commands: inspect, run-case, help/);
  });
});

describe('omniweb run-case', () => {
  let scratch: string;
  beforeAll(() => { scratch = mkdtempSync(join(tmpdir(), 'omniweb-cli-')); });
  afterAll(() => { rmSync(scratch, { recursive: true }); });

  it('runs the registered stages and writes a valid outputs file with a summary', async () => {
    const out = join(scratch, 'out.safetensors');
    const run = await omniweb('run-case', '--model', tinyOmni, '--case', join(golden, 'audio.safetensors'), `--out=${out}`, '--weights', 'q8');
    expect(run.code, run.stderr).toBe(0);
    const summary = JSON.parse(run.stdout);
    expect(summary.out).toBe(out);
    // Whatever stages are registered, the file holds exactly what they emitted.
    const written = await readCase(out);
    expect([...written.keys()]).toEqual(summary.outputs);
    expect([...summary.ran, ...summary.skipped.map((s: { stage: string }) => s.stage)].sort()).toEqual(STAGES.map((s) => s.name).sort());
  });

  it('exits 2 with one clear line for bad flags', async () => {
    const base = ['run-case', '--model', tinyOmni, '--case', join(golden, 'audio.safetensors'), '--out', join(scratch, 'x.safetensors')];
    expectBadInput(await omniweb(...base, '--weights', 'q3'), 'BAD_INPUT', /--weights q3 is not one of f32, f16, q8, q4/);
    expectBadInput(await omniweb(...base, '--max-new-tokens', '0'), 'BAD_INPUT', /--max-new-tokens 0 is not a positive integer/);
    expectBadInput(await omniweb(...base, '--temperature', '1'), 'BAD_INPUT', /unknown flag --temperature/);
    expectBadInput(await omniweb('run-case', '--model', tinyOmni), 'BAD_INPUT', /--case is required/);
    expectBadInput(
      await omniweb('run-case', '--model', tinyOmni, '--case', join(scratch, 'none.safetensors'), '--out', join(scratch, 'y.safetensors')),
      'IO', /none\.safetensors does not exist/,
    );
  });
});
