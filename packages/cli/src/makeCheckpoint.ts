/**
 * `omniweb make-checkpoint`: writes a checkpoint folder in the official
 * Qwen2.5-Omni layout (config.json, generation_config.json, safetensors shards
 * with their index, tokenizer files, spk_dict.pt) filled with seeded random
 * weights, so loaders and runtimes can be exercised at full size without the
 * real weights. Weights are streamed to disk a chunk at a time: memory stays
 * flat whatever the model size.
 */
import { readFile, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  loadOmniConfig, parseOmniConfig, OmniError, DTYPE_BYTES, fileSink, INDEX_FILE, openCheckpoint, readSpeakers, SINGLE_FILE, SPEAKERS_FILE, streamSafetensors, writeSpeakers, type FloatDtype,
} from '@omniweb/core';
import { prepareEmptyFolder } from './outputFolder.js';
import { checkpointLayout, type TensorPlan } from './synthetic/layout.js';
import { tensorChunks } from './synthetic/random.js';
import { GENERATION_CONFIG, hfJson, SHAPE_NAMES, SHAPES, shapeConfig, type ShapeName } from './synthetic/shapes.js';
import { syntheticSpeakers, VOICES } from './synthetic/speakers.js';
import { writeTokenizerFiles } from './synthetic/tokenizer.js';

export const MAKE_CHECKPOINT_USAGE = `omniweb make-checkpoint --shape ${SHAPE_NAMES.join('|')} --out <dir>
    [--seed N] [--dtype bf16|f32] [--shard-size 5GB]`;

/** transformers' default `max_shard_size`: "5GB" (decimal), which gives the official 7B its 4.99 GB shards. */
export const DEFAULT_SHARD_BYTES = 5e9;
/** Free space kept beyond the checkpoint's own size, so the disk is never filled to the last byte. */
const DISK_HEADROOM_BYTES = 256 * 1024 * 1024;
const DTYPES = { bf16: 'BF16', f32: 'F32' } as const satisfies Record<string, FloatDtype>;

export interface MakeCheckpointOptions {
  shape: ShapeName;
  out: string;
  /** 0 … 2^32 − 1; the same seed gives the same files. */
  seed: number;
  dtype: keyof typeof DTYPES;
  /** Largest shard, in bytes; a tensor bigger than this gets a shard of its own. */
  shardBytes: number;
  /** Progress lines (one per shard and per side file). */
  log?: (line: string) => void;
}

export interface MakeCheckpointResult {
  out: string;
  shape: ShapeName;
  seed: number;
  dtype: string;
  /** Every file written, with its size. */
  files: { name: string; bytes: number }[];
  tensorCount: number;
  /** Parameter count per top-level prefix (thinker, talker, token2wav). */
  parameters: Record<string, number>;
  seconds: number;
  /** Largest resident set of this process so far (all phases), in bytes. */
  peakRssBytes: number;
}

function badFlag(message: string): OmniError {
  return new OmniError('BAD_INPUT', `make-checkpoint: ${message} (omniweb help shows every flag)`);
}

/** "5GB", "300MB", "64KiB" or a plain byte count → bytes (decimal units as transformers reads them, binary with "i"). */
export function parseByteSize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(text.trim());
  if (!m) throw badFlag(`--shard-size ${JSON.stringify(text)} is not a size such as 5GB, 500MB or 1048576`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const scale = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[unit]!;
  const bytes = Math.floor(Number(m[1]) * scale);
  if (!Number.isSafeInteger(bytes) || bytes < 1) throw badFlag(`--shard-size ${text} is not a positive size`);
  return bytes;
}

const FLAGS = ['shape', 'out', 'seed', 'dtype', 'shard-size'] as const;

/** Parses the flags after `make-checkpoint` (`--flag value` or `--flag=value`). */
export function parseMakeCheckpointArgs(argv: readonly string[]): MakeCheckpointOptions {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw badFlag(`unexpected argument ${JSON.stringify(arg)}; every make-checkpoint argument is a --flag`);
    const eq = arg.indexOf('=');
    const flag = arg.slice(2, eq < 0 ? undefined : eq);
    if (!(FLAGS as readonly string[]).includes(flag)) throw badFlag(`unknown flag --${flag}`);
    if (values.has(flag)) throw badFlag(`--${flag} is given twice`);
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined || value === '' || (eq < 0 && value.startsWith('--'))) throw badFlag(`--${flag} needs a value`);
    values.set(flag, value);
  }
  const shape = values.get('shape');
  if (shape === undefined) throw badFlag(`--shape is required (${SHAPE_NAMES.join(', ')})`);
  if (!(SHAPE_NAMES as readonly string[]).includes(shape)) throw badFlag(`--shape ${shape} is not one of ${SHAPE_NAMES.join(', ')}`);
  const out = values.get('out');
  if (out === undefined) throw badFlag('--out is required (the folder to create)');
  const seedText = values.get('seed') ?? '0';
  const seed = Number(seedText);
  if (!/^\d+$/.test(seedText) || seed > 0xffffffff) throw badFlag(`--seed ${seedText} is not an integer in 0 … 4294967295`);
  const dtype = values.get('dtype') ?? 'bf16';
  if (!Object.hasOwn(DTYPES, dtype)) throw badFlag(`--dtype ${dtype} is not one of ${Object.keys(DTYPES).join(', ')}`);
  const shardSize = values.get('shard-size');
  return {
    shape: shape as ShapeName,
    out,
    seed,
    dtype: dtype as keyof typeof DTYPES,
    shardBytes: shardSize === undefined ? DEFAULT_SHARD_BYTES : parseByteSize(shardSize),
  };
}

function elementCount(tensor: TensorPlan): number {
  return tensor.shape.reduce((a, b) => a * b, 1);
}

/** Fills shards in tensor order, starting a new one when the next tensor would overflow it (transformers' rule). */
function splitIntoShards(tensors: readonly TensorPlan[], bytesPerElement: number, shardBytes: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [];
  let current: TensorPlan[] = [];
  let size = 0;
  for (const tensor of tensors) {
    const bytes = elementCount(tensor) * bytesPerElement;
    if (current.length > 0 && size + bytes > shardBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(tensor);
    size += bytes;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/** `model.safetensors` for one shard, else `model-0000i-of-0000n.safetensors` as transformers names them. */
function shardFileName(index: number, count: number): string {
  if (count === 1) return SINGLE_FILE;
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index + 1)}-of-${pad(count)}.safetensors`;
}

async function checkFreeSpace(out: string, needed: number): Promise<void> {
  const fs = await statfs(out);
  const free = fs.bavail * fs.bsize;
  if (free < needed + DISK_HEADROOM_BYTES) {
    throw new OmniError('IO', `${out} has ${(free / 1e9).toFixed(1)} GB free; this checkpoint needs ${(needed / 1e9).toFixed(1)} GB plus headroom`);
  }
}

/**
 * Opens what was written with the project's own loader: the config parses
 * and matches the tensor headers, every planned tensor is there with its
 * shape and dtype and nothing else is, the speaker file reads back.
 */
async function verifyCheckpoint(out: string, plan: readonly TensorPlan[], dtype: FloatDtype): Promise<void> {
  const checkpoint = await openCheckpoint(out);
  try {
    const config = await loadOmniConfig(checkpoint);
    const names = checkpoint.names();
    if (names.length !== plan.length) throw new OmniError('INTERNAL', `wrote ${plan.length} tensors but ${out} lists ${names.length}`);
    for (const tensor of plan) {
      const info = checkpoint.info(tensor.name);
      if (info.dtype !== dtype || info.shape.join() !== tensor.shape.join()) {
        throw new OmniError('INTERNAL', `${tensor.name} was planned ${dtype} [${tensor.shape}] but reads back ${info.dtype} [${info.shape}]`);
      }
    }
    if (config.token2wav) {
      const speakers = readSpeakers(await readFile(join(out, SPEAKERS_FILE)), join(out, SPEAKERS_FILE));
      for (const name of Object.keys(VOICES)) {
        if (speakers.get(name)?.cond.data.length !== config.token2wav.dit.ecapa.condDim) {
          throw new OmniError('INTERNAL', `${SPEAKERS_FILE} reads back without a ${config.token2wav.dit.ecapa.condDim}-wide cond for ${name}`);
        }
      }
    }
  } finally {
    await checkpoint.close();
  }
}

/** Writes the checkpoint folder and checks it with the project's loader. */
export async function makeCheckpoint(options: MakeCheckpointOptions): Promise<MakeCheckpointResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const shape = SHAPES[options.shape];
  if (!shape) throw badFlag(`shape ${JSON.stringify(options.shape)} is not one of ${SHAPE_NAMES.join(', ')}`);
  const dtype = DTYPES[options.dtype];
  if (!dtype) throw badFlag(`dtype ${JSON.stringify(options.dtype)} is not one of ${Object.keys(DTYPES).join(', ')}`);
  if (!Number.isSafeInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) throw badFlag(`seed ${options.seed} is not an integer in 0 … 4294967295`);
  if (!Number.isSafeInteger(options.shardBytes) || options.shardBytes < 1) throw badFlag(`shard size ${options.shardBytes} is not a positive byte count`);
  const { out, seed } = options;

  const configJson = shapeConfig(shape, dtype === 'BF16' ? 'bfloat16' : 'float32');
  // Our own config must pass our own parser before anything is written.
  const config = parseOmniConfig(configJson);
  const plan = checkpointLayout(config);
  const bytesPerElement = DTYPE_BYTES[dtype];
  const shards = splitIntoShards(plan, bytesPerElement, options.shardBytes);
  const totalBytes = plan.reduce((sum, t) => sum + elementCount(t) * bytesPerElement, 0);

  await prepareEmptyFolder(out, 'make-checkpoint');
  await checkFreeSpace(out, totalBytes);
  const files: { name: string; bytes: number }[] = [];
  const writeText = async (name: string, text: string) => {
    await writeFile(join(out, name), text);
    files.push({ name, bytes: Buffer.byteLength(text) });
  };
  await writeText('config.json', hfJson(configJson));
  await writeText('generation_config.json', hfJson(GENERATION_CONFIG));

  const weightMap: Record<string, string> = {};
  for (const [i, tensors] of shards.entries()) {
    const name = shardFileName(i, shards.length);
    const sink = await fileSink(join(out, name));
    let bytes: number;
    try {
      bytes = await streamSafetensors(sink, tensors.map((t) => ({ name: t.name, dtype, shape: t.shape })), (t, index) => tensorChunks(tensors[index], dtype, seed), { format: 'pt' });
    } finally {
      await sink.close();
    }
    for (const t of tensors) weightMap[t.name] = name;
    files.push({ name, bytes });
    log(`${name}: ${tensors.length} tensors, ${(bytes / 1e9).toFixed(2)} GB`);
  }
  if (shards.length > 1) {
    const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]]));
    await writeText(INDEX_FILE, `${JSON.stringify({ metadata: { total_size: totalBytes }, weight_map: sortedMap }, null, 2)}\n`);
  }

  for (const name of await writeTokenizerFiles(out, shape.note)) files.push({ name, bytes: (await stat(join(out, name))).size });
  if (config.token2wav) {
    const speakers = writeSpeakers(syntheticSpeakers(config.token2wav.dit, seed));
    await writeFile(join(out, SPEAKERS_FILE), speakers);
    files.push({ name: SPEAKERS_FILE, bytes: speakers.length });
  }
  log('checking the folder with openCheckpoint + loadOmniConfig…');
  await verifyCheckpoint(out, plan, dtype);

  const parameters: Record<string, number> = {};
  for (const t of plan) {
    const prefix = t.name.split('.')[0];
    parameters[prefix] = (parameters[prefix] ?? 0) + elementCount(t);
  }
  return {
    out,
    shape: options.shape,
    seed,
    dtype: options.dtype,
    files,
    tensorCount: plan.length,
    parameters,
    seconds: Math.round((performance.now() - started) / 100) / 10,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
  };
}

/** `omniweb make-checkpoint …`: progress on stderr, the JSON summary on stdout. */
export async function makeCheckpointCommand(argv: readonly string[]): Promise<void> {
  const options = parseMakeCheckpointArgs(argv);
  const result = await makeCheckpoint({ ...options, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
