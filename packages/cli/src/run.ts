/**
 * `omniweb run`: one turn through the SDK — text and media files in, the answer out (text on
 * stdout as it streams, speech to a WAV file with --out). Also the plumbing `omniweb speak`
 * shares: flags, the embedded tiny checkpoint, loading, and the turn itself.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OmniError, type WasmBackendOptions, type WeightFormat } from '@omniweb/core';
import { encodeWav } from '@omniweb/media';
import { Omni, type ModuleWeights, type PipelineKind, type SendInput, type TurnResult } from '@omniweb/sdk';
import { DIT_SOLVERS, resolveSampleOptions, SAMPLE_RATE, type DitSolver } from '@omniweb/vocoder';
import { DEFAULT_SHARD_BYTES, makeCheckpoint } from './makeCheckpoint.js';
import { badFlag, flagReader, parseFlags, type FlagKind } from './flags.js';
import { WASM_FLAGS, WASM_USAGE, wasmOptions } from './wasmFlags.js';

export const RUN_USAGE = `omniweb run [--model <dir>] [--text "…"] [--audio f.wav] [--image f.png|f.jpg] [--video f.y4m]
    [--voice NAME] [--device wasm|webgpu] [--weights f32|f16|q8|q4] [--max-new-tokens N] [--max-codes N]
    [--pipeline workers|in-thread] [--out reply.wav] [--solver rk4|midpoint|euler] [--dit-steps N] [--json]
    ${WASM_USAGE}
    (without --out the reply is text only and the Talker and token2wav are not loaded)`;

/** The model used without --model: the tiny synthetic checkpoint (random weights, the official layout). */
export const EMBEDDED_MODEL = fileURLToPath(new URL('../../../.cache/tiny-omni', import.meta.url));

export interface TurnOptions {
  /** Checkpoint folder; null: the embedded tiny checkpoint. */
  model: string | null;
  text: string | null;
  audio: string | null;
  image: string | null;
  video: string | null;
  voice: string | null;
  device: 'wasm' | 'webgpu';
  weights: WeightFormat;
  maxNewTokens: number | null;
  /** Talker codes at most per reply; null: the reference's limit. */
  maxCodes: number | null;
  /** token2wav's ODE solver and time points (--solver, --dit-steps); null: the reference's. */
  synthesis: { solver?: DitSolver; steps?: number } | null;
  /** Where the spoken reply goes; null: text only. */
  out: string | null;
  /** One worker thread per stage (default), or every stage on the main thread. */
  pipeline: PipelineKind;
  /** The wasm backend's options (--threads, --quantized-activations, --wasm-simd); {} leaves its defaults. */
  wasm: WasmBackendOptions;
}

export const TURN_FLAGS = {
  model: 'value', text: 'value', voice: 'value', device: 'value', weights: 'value', 'max-new-tokens': 'value', 'max-codes': 'value', out: 'value',
  pipeline: 'value', solver: 'value', 'dit-steps': 'value', ...WASM_FLAGS,
} as const satisfies Record<string, FlagKind>;

/** The flags every turn command shares, from parsed values. */
export function turnOptions(command: string, values: ReadonlyMap<string, string>): TurnOptions {
  const bad = (message: string) => badFlag(command, message);
  const { oneOf, positiveInt: count } = flagReader(command, values);
  const device = oneOf('device', ['wasm', 'webgpu'] as const, 'wasm');
  const options: TurnOptions = {
    model: values.get('model') ?? null,
    text: values.get('text') ?? null,
    audio: values.get('audio') ?? null,
    image: values.get('image') ?? null,
    video: values.get('video') ?? null,
    voice: values.get('voice') ?? null,
    device,
    weights: oneOf('weights', ['f32', 'f16', 'q8', 'q4'] as const, 'f32'),
    maxNewTokens: count('max-new-tokens'),
    maxCodes: count('max-codes'),
    synthesis: null,
    out: values.get('out') ?? null,
    pipeline: oneOf('pipeline', ['workers', 'in-thread'] as const, 'workers'),
    wasm: wasmOptions(command, values, device),
  };
  if (options.out === null && options.voice !== null) throw bad('--voice chooses the voice of the spoken reply; give --out too');
  if (options.out === null && options.maxCodes !== null) throw bad('--max-codes bounds the spoken reply; give --out too');
  if (values.has('solver') || values.has('dit-steps')) {
    if (options.out === null) throw bad('--solver and --dit-steps shape the spoken reply; give --out too');
    const steps = count('dit-steps');
    options.synthesis = { ...(values.has('solver') && { solver: oneOf('solver', DIT_SOLVERS, 'rk4') }), ...(steps !== null && { steps }) };
    try {
      resolveSampleOptions(options.synthesis);
    } catch (e) {
      throw bad(`--dit-steps ${steps}: ${(e as Error).message}`);
    }
  }
  if (options.text === null && options.audio === null && options.image === null && options.video === null) {
    throw bad('nothing to say: give --text, --audio, --image or --video');
  }
  return options;
}

/**
 * The embedded tiny checkpoint, made on first use. It is written beside its final place and
 * renamed into it, so a run that stops halfway (or a second run at the same time) never
 * leaves a partial folder behind.
 */
export async function ensureEmbeddedModel(log: (line: string) => void): Promise<string> {
  if (existsSync(`${EMBEDDED_MODEL}/config.json`)) return EMBEDDED_MODEL;
  log(`making the embedded tiny checkpoint at ${EMBEDDED_MODEL} (first use)…`);
  await mkdir(dirname(EMBEDDED_MODEL), { recursive: true });
  const scratch = `${EMBEDDED_MODEL}.part-${process.pid}`;
  await rm(scratch, { recursive: true, force: true });
  try {
    await makeCheckpoint({ shape: 'tiny', out: scratch, seed: 0, dtype: 'bf16', shardBytes: DEFAULT_SHARD_BYTES });
    await rename(scratch, EMBEDDED_MODEL).catch((e: NodeJS.ErrnoException) => {
      // Another run finished first: its folder is as good as ours.
      if (!existsSync(`${EMBEDDED_MODEL}/config.json`)) throw new OmniError('IO', `cannot move the tiny checkpoint into ${EMBEDDED_MODEL}: ${e.message}`, { cause: e });
    });
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return EMBEDDED_MODEL;
}

async function readInput(flag: string, path: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    throw new OmniError('IO', `--${flag} ${path}: ${(e as Error).message}`, { cause: e });
  }
}

export interface TurnReport {
  model: string;
  device: string;
  pipeline: PipelineKind;
  /** Each module's matrix precision as loaded. */
  weights: ModuleWeights;
  loadMs: number;
  result: TurnResult;
  /** The spoken reply, when --out was given. */
  speech: { path: string; samples: number; sampleRate: number } | null;
}

/**
 * Loads the model, runs one turn and writes the speech. `onText` gets the reply as it streams;
 * progress goes to `log`.
 */
export async function runTurn(options: TurnOptions, onText: (text: string) => void, log: (line: string) => void): Promise<TurnReport> {
  const input: SendInput = {};
  if (options.text !== null) input.text = options.text;
  if (options.audio !== null) input.audio = await readInput('audio', options.audio);
  if (options.image !== null) input.image = await readInput('image', options.image);
  if (options.video !== null) input.video = await readInput('video', options.video);
  const model = options.model ?? await ensureEmbeddedModel(log);
  log(`loading ${model} on ${options.device} (${options.weights}, ${options.pipeline === 'workers' ? 'a worker thread per stage' : 'in-thread'})…`);
  const started = performance.now();
  // Text-only turns leave the speech stages unloaded: less memory, a faster load.
  const speech = options.out !== null;
  const omni = await Omni.load({ model, device: options.device, wasm: options.wasm, weights: options.weights, pipeline: options.pipeline, speech });
  const loadMs = Math.round(performance.now() - started);
  try {
    const session = omni.session({
      speech,
      ...(options.voice !== null && { voice: options.voice }),
      ...(options.maxNewTokens !== null && { maxNewTokens: options.maxNewTokens }),
      ...(options.maxCodes !== null && { talker: { maxNewTokens: options.maxCodes } }),
      ...(options.synthesis !== null && { synthesis: options.synthesis }),
    });
    const pcm: Float32Array[] = [];
    let sampleRate = SAMPLE_RATE;
    const reading = (async () => {
      for await (const event of session.events()) {
        if (event.type === 'text') onText(event.text);
        else if (event.type === 'audio') {
          pcm.push(event.pcm);
          sampleRate = event.sampleRate;
        }
      }
    })();
    let result: TurnResult;
    try {
      result = await session.send(input);
    } finally {
      await session.close();
      await reading;
    }
    let written: TurnReport['speech'] = null;
    if (options.out !== null) {
      const samples = new Float32Array(pcm.reduce((n, p) => n + p.length, 0));
      pcm.reduce((at, p) => { samples.set(p, at); return at + p.length; }, 0);
      written = { path: options.out, samples: samples.length, sampleRate };
      try {
        await writeFile(options.out, encodeWav(samples, written.sampleRate));
      } catch (e) {
        throw new OmniError('IO', `cannot write ${options.out}: ${(e as Error).message}`, { cause: e });
      }
    }
    return { model, device: omni.device.name, pipeline: options.pipeline, weights: omni.weights, loadMs, result, speech: written };
  } finally {
    await omni.close();
  }
}

/** `omniweb run …`: the answer streams to stdout; with --json, stdout is one JSON summary instead. */
export async function runCommand(argv: readonly string[]): Promise<void> {
  const values = parseFlags('run', argv, { ...TURN_FLAGS, audio: 'value', image: 'value', video: 'value', json: 'switch' });
  const options = turnOptions('run', values);
  const json = values.has('json');
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const report = await runTurn(options, json ? () => {} : (text) => process.stdout.write(text), log);
  if (!json) {
    process.stdout.write('\n');
    if (report.speech) log(`${report.speech.path}: ${(report.speech.samples / report.speech.sampleRate).toFixed(2)} s of speech at ${report.speech.sampleRate} Hz`);
    return;
  }
  const { result } = report;
  const summary = JSON.stringify({
    model: report.model,
    device: report.device,
    pipeline: report.pipeline,
    weights: report.weights,
    loadMs: report.loadMs,
    text: result.text,
    ids: result.ids,
    interrupted: result.interrupted,
    stats: result.stats,
    speech: report.speech && { ...report.speech, seconds: report.speech.samples / report.speech.sampleRate },
    // Worker threads share the process: this peak covers every stage.
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  }, null, 2);
  // The ids on one line: indented, a long reply would take a line per id.
  process.stdout.write(`${summary.replace(/"ids": \[[^\]]*\]/, `"ids": ${JSON.stringify(result.ids)}`)}\n`);
}
