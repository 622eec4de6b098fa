/**
 * `omniweb speak`: text in, a spoken reply out — the reply's text streams to stdout and its
 * speech is written as a 24 kHz WAV file. A thin layer over `runTurn` (run.ts).
 */
import { OmniError } from '@omniweb/core';
import { resolveSampleOptions } from '@omniweb/vocoder';
import { parseFlags } from './flags.js';
import { runTurn, TURN_FLAGS, turnOptions } from './run.js';
import { WASM_USAGE } from './wasmFlags.js';

export const SPEAK_USAGE = `omniweb speak [--model <dir>] --text "…" --out reply.wav [--voice NAME]
    [--device wasm|webgpu] [--weights f32|f16|q8|q4] [--max-new-tokens N] [--max-codes N]
    [--solver rk4|midpoint|euler] [--dit-steps N] ${WASM_USAGE}`;

export async function speakCommand(argv: readonly string[]): Promise<void> {
  const values = parseFlags('speak', argv, TURN_FLAGS);
  if (!values.has('text')) throw new OmniError('BAD_INPUT', 'speak: --text is required (what to answer)');
  if (!values.has('out')) throw new OmniError('BAD_INPUT', 'speak: --out is required (the WAV file to write)');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const options = turnOptions('speak', values);
  const report = await runTurn(options, (text) => process.stdout.write(text), log);
  process.stdout.write('\n');
  const { path, samples, sampleRate } = report.speech!;
  const { solver, steps } = resolveSampleOptions(options.synthesis ?? {});
  log(`${path}: ${(samples / sampleRate).toFixed(2)} s of speech at ${sampleRate} Hz, ${report.result.stats.codes} codec codes (DiT: ${solver} over ${steps} time points)`);
}
