/**
 * `omniweb run-case`: feed a golden case file through the model stages and
 * write what they produce under the reference's array names, so the output
 * file compares one-to-one with the case file.
 *
 * This file is plumbing only: flags, case I/O, and running stages in order.
 * A stage declares the arrays it `needs`; it runs when all of them are in the
 * case file or were emitted by an earlier stage (emitted arrays shadow the
 * case's arrays of the same name, so later stages consume our results, not
 * the reference's). Model stages are registered in `STAGES`.
 */
import { writeFile } from 'node:fs/promises';
import type { CacheStorage } from '@omniweb/thinker';
import { STAGES } from './stages.js';
import { badFlag, flagReader, parseFlags, type FlagKind } from './flags.js';
import { WASM_FLAGS, WASM_USAGE, wasmOptions } from './wasmFlags.js';
import {
  type Backend, createBackend, type WasmBackendOptions, type WeightFormat, loadOmniConfig, type OmniConfig, OmniError, openCheckpoint, readCase, writeSafetensors, type Checkpoint, type HostArray,
} from '@omniweb/core';

export type DeviceKind = 'wasm' | 'webgpu';

export interface RunCaseOptions {
  /** Checkpoint folder (or index / single file). */
  model: string;
  /** Case file to read inputs from. */
  casePath: string;
  /** Where the outputs are written. */
  outPath: string;
  device: DeviceKind;
  weights: WeightFormat;
  /** How the Thinker's KV cache keeps rows (f32, or int8 on wasm). */
  kvCache: CacheStorage;
  /** Thinker tokens to generate; null: as many as the case recorded. */
  maxNewTokens: number | null;
  /** Talker codec tokens to generate; null: as many as the case recorded. */
  talkerMaxNewTokens: number | null;
  useAudioInVideo: boolean;
  /** The wasm backend's options (--threads, --quantized-activations, --wasm-simd); {} leaves its defaults. */
  wasm: WasmBackendOptions;
  /** Video frame rate the processor assumes; null: the processor default (fact sheet §10.15). */
  fps: number | null;
}

export interface StageContext {
  readonly options: Readonly<RunCaseOptions>;
  readonly checkpoint: Checkpoint;
  readonly config: OmniConfig;
  /** True when the array is in the case file or was emitted by an earlier stage. */
  has(name: string): boolean;
  /** An emitted array, else the case file's; BAD_INPUT when neither exists. */
  array(name: string): HostArray;
  /** Records an output under its reference name; each name may be emitted once per run. */
  emit(name: string, array: HostArray): void;
  /** The compute backend of `--device`, created on first use and shared by every stage. */
  backend(): Promise<Backend>;
  /** A progress line on stderr (stdout carries the summary). */
  log(line: string): void;
}

export interface Stage {
  name: string;
  /** Arrays the stage reads; it is skipped when one is missing. */
  needs: readonly string[];
  run(ctx: StageContext): Promise<void> | void;
}


export interface RunCaseResult {
  ran: string[];
  skipped: { stage: string; missing: string[] }[];
  outputs: Map<string, HostArray>;
}

export const RUN_CASE_USAGE = `omniweb run-case --model <dir> --case <file.safetensors> --out <file.safetensors>
    [--device wasm|webgpu] [--weights f32|f16|q8|q4] [--kv-cache f32|int8] [--max-new-tokens N]
    [--talker-max-new-tokens N] [--use-audio-in-video] [--fps N]
    ${WASM_USAGE}`;

const FLAGS: Record<string, FlagKind> = {
  model: 'value',
  case: 'value',
  out: 'value',
  device: 'value',
  weights: 'value',
  'kv-cache': 'value',
  'max-new-tokens': 'value',
  'talker-max-new-tokens': 'value',
  'use-audio-in-video': 'switch',
  fps: 'value',
  ...WASM_FLAGS,
};

/** Parses the flags after `run-case` (`--flag value` or `--flag=value`). */
export function parseRunCaseArgs(argv: readonly string[]): RunCaseOptions {
  const values = parseFlags('run-case', argv, FLAGS);
  const { oneOf, positiveInt, positiveNumber } = flagReader('run-case', values);
  const required = (flag: string, what: string) => {
    const v = values.get(flag);
    if (!v) throw badFlag('run-case', `--${flag} is required (${what})`);
    return v;
  };
  const device = oneOf('device', ['wasm', 'webgpu'] as const, 'wasm');
  return {
    model: required('model', 'the checkpoint folder'),
    casePath: required('case', 'the case .safetensors file'),
    outPath: required('out', 'where to write the outputs'),
    device,
    weights: oneOf('weights', ['f32', 'f16', 'q8', 'q4'] as const, 'f32'),
    kvCache: kvCacheFlag(oneOf('kv-cache', ['f32', 'int8'] as const, 'f32'), device),
    maxNewTokens: positiveInt('max-new-tokens'),
    talkerMaxNewTokens: positiveInt('talker-max-new-tokens'),
    useAudioInVideo: values.has('use-audio-in-video'),
    fps: positiveNumber('fps'),
    wasm: wasmOptions('run-case', values, device),
  };
}

function kvCacheFlag(storage: CacheStorage, device: DeviceKind): CacheStorage {
  if (storage === 'int8' && device !== 'wasm') throw badFlag('run-case', '--kv-cache int8 runs on --device wasm; WebGPU keeps f32 caches');
  return storage;
}

const DATA_TYPE = { f32: Float32Array, i32: Int32Array, u8: Uint8Array } as const;

/** Runs every stage whose needs are met, in order, and returns what they emitted. */
export async function runCase(
  options: RunCaseOptions,
  stages: readonly Stage[] = STAGES,
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<RunCaseResult> {
  const inputs = await readCase(options.casePath);
  const checkpoint = await openCheckpoint(options.model);
  let backend = null as Promise<Backend> | null;
  try {
    const config = await loadOmniConfig(checkpoint);
    const outputs = new Map<string, HostArray>();
    const emittedBy = new Map<string, string>();
    const result: RunCaseResult = { ran: [], skipped: [], outputs };
    for (const stage of stages) {
      const has = (name: string) => outputs.has(name) || inputs.has(name);
      const missing = stage.needs.filter((name) => !has(name));
      if (missing.length > 0) {
        result.skipped.push({ stage: stage.name, missing });
        continue;
      }
      const ctx: StageContext = {
        options,
        checkpoint,
        config,
        has,
        array(name) {
          const found = outputs.get(name) ?? inputs.get(name);
          if (!found) throw new OmniError('BAD_INPUT', `stage ${stage.name} reads ${name}, which is neither in ${options.casePath} nor emitted by an earlier stage`);
          return found;
        },
        emit(name, array) {
          const earlier = emittedBy.get(name);
          if (earlier !== undefined) throw new OmniError('INTERNAL', `stage ${stage.name} emitted ${name}, already emitted by stage ${earlier}`);
          const Data = array && Object.hasOwn(DATA_TYPE, array.dtype) ? DATA_TYPE[array.dtype] : null;
          const count = Array.isArray(array?.shape) ? array.shape.reduce((a, b) => a * b, 1) : NaN;
          if (!Data || !(array.data instanceof Data) || array.data.length !== count) {
            throw new OmniError('INTERNAL', `stage ${stage.name} emitted ${name} as ${array?.dtype} [${Array.isArray(array?.shape) ? array.shape.join(', ') : array?.shape}] with ${array?.data?.length} values in a ${array?.data?.constructor?.name}`);
          }
          emittedBy.set(name, stage.name);
          outputs.set(name, array);
        },
        backend: () => (backend ??= createBackend({ device: options.device, ...options.wasm })),
        log,
      };
      log(`stage ${stage.name}…`);
      await stage.run(ctx);
      result.ran.push(stage.name);
    }
    return result;
  } finally {
    if (backend) (await backend).destroy();
    await checkpoint.close();
  }
}

/** `omniweb run-case …`: parse, run, write; prints a JSON summary on stdout. */
export async function runCaseCommand(argv: readonly string[], stages: readonly Stage[] = STAGES): Promise<void> {
  const options = parseRunCaseArgs(argv);
  const result = await runCase(options, stages);
  const bytes = writeSafetensors(result.outputs, { producer: 'omniweb run-case', stages: result.ran.join(',') });
  try {
    await writeFile(options.outPath, bytes);
  } catch (e) {
    throw new OmniError('IO', `cannot write ${options.outPath}: ${(e as Error).message}`, { cause: e });
  }
  const summary = { case: options.casePath, out: options.outPath, ran: result.ran, skipped: result.skipped, outputs: [...result.outputs.keys()] };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
}
