/**
 * `omniweb convert`: an official checkpoint folder (bf16 shards of several GB) → the web format
 * of core's weights/manifest.ts: shards of at most 256 MiB with every matrix already in the
 * chosen device format (big matrices split by rows), the other tensors as stored, the side
 * files copied, and omniweb.json with each file's size and sha256. A browser then downloads,
 * verifies and caches it shard by shard without converting anything. One part of one matrix
 * is in memory at a time; the manifest is written last, so a folder without it is unfinished.
 */
import { createHash } from 'node:crypto';
import { copyFile, readdir, readFile, rename, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  convertedRowBytes, DTYPE_BYTES, f16ToF32, fileSink, INDEX_FILE, isConvertedMatrix, loadOmniConfig, MANIFEST_FILE, MANIFEST_FORMAT, MANIFEST_VERSION, MAX_SHARD_BYTES,
  OmniError, openCheckpoint, partDataName, partScalesName, planSafetensors, streamSafetensors,
  type ByteSink, type Checkpoint, type HostMatrix, type Manifest, type ManifestFile, type ManifestMatrix, type SafetensorsDtype, type TensorSpec, type WeightFormat,
} from '@omniweb/core';
import { parseByteSize } from './makeCheckpoint.js';
import { prepareEmptyFolder } from './outputFolder.js';
import { badFlag, parseFlags } from './flags.js';

export const CONVERT_USAGE = `omniweb convert <checkpoint-folder> --weights q4|q8|f16 --out <dir> [--shard-size 256MiB]`;

const WEIGHTS = ['q4', 'q8', 'f16'] as const satisfies readonly WeightFormat[];
/** Kept free in every shard for its JSON header (about 150 bytes per tensor). */
const HEADER_RESERVE_BYTES = 1024 * 1024;

export interface ConvertOptions {
  source: string;
  out: string;
  weights: (typeof WEIGHTS)[number];
  /** Largest shard in bytes, at most 256 MiB. */
  shardBytes: number;
  log?: (line: string) => void;
}

export interface ConvertResult {
  source: string;
  out: string;
  weights: WeightFormat;
  shards: ManifestFile[];
  files: ManifestFile[];
  matrices: number;
  tensors: number;
  /** Source tensor bytes → converted shard bytes. */
  sourceBytes: number;
  convertedBytes: number;
  seconds: number;
  peakRssBytes: number;
}

const bad = (message: string) => badFlag('convert', message);

export function parseConvertArgs(argv: readonly string[]): ConvertOptions {
  const [source, ...rest] = argv;
  if (source === undefined || source.startsWith('--')) throw bad('the checkpoint folder to convert comes first');
  const values = parseFlags('convert', rest, { weights: 'value', out: 'value', 'shard-size': 'value' });
  const weights = values.get('weights');
  if (weights === undefined) throw bad(`--weights is required (${WEIGHTS.join(', ')})`);
  if (!(WEIGHTS as readonly string[]).includes(weights)) throw bad(`--weights ${weights} is not one of ${WEIGHTS.join(', ')}`);
  const out = values.get('out');
  if (out === undefined) throw bad('--out is required (the folder to create)');
  const shardSize = values.get('shard-size');
  const shardBytes = shardSize === undefined ? MAX_SHARD_BYTES : parseByteSize(shardSize);
  if (shardBytes > MAX_SHARD_BYTES || shardBytes < 2 * HEADER_RESERVE_BYTES) {
    throw bad(`--shard-size ${shardSize} must be between ${2 * HEADER_RESERVE_BYTES} bytes and 256MiB (a browser verifies a whole shard in memory)`);
  }
  return { source, out, weights: weights as ConvertOptions['weights'], shardBytes };
}

/** One tensor of an output shard and how to produce its bytes. */
interface Piece {
  spec: TensorSpec;
  bytes: number;
  produce: () => Promise<Uint8Array>;
}

/** A matrix part: its values and (q8/q4) scales come from one conversion, so they are produced together. */
function matrixPieces(checkpoint: Checkpoint, name: string, format: WeightFormat, first: number, count: number, cols: number): Piece[] {
  const rowBytes = convertedRowBytes(cols, format);
  const part = { rows: [first, first + count] as [number, number] };
  let pending: Promise<HostMatrix> | null = null;
  const converted = () => (pending ??= checkpoint.readMatrixRows(name, format, first, count));
  const asBytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const dataDtype: SafetensorsDtype = format === 'f32' ? 'F32' : format === 'f16' ? 'F16' : 'U8';
  const pieces: Piece[] = [{
    spec: { name: partDataName(name, part), dtype: dataDtype, shape: [count, rowBytes.data / DTYPE_BYTES[dataDtype]] },
    bytes: count * rowBytes.data,
    produce: async () => {
      const m = await converted();
      if (rowBytes.scales === 0) pending = null;
      return asBytes(m.data);
    },
  }];
  if (rowBytes.scales > 0) {
    pieces.push({
      spec: { name: partScalesName(name, part), dtype: 'F32', shape: [count, rowBytes.scales / 4] },
      bytes: count * rowBytes.scales,
      produce: async () => {
        const m = await converted();
        pending = null;
        const { scales } = m as Extract<HostMatrix, { scales: unknown }>;
        // The format stores f32 scales; f16 ones widen exactly, and loading narrows them back.
        return asBytes(scales instanceof Uint16Array ? Float32Array.from(scales, f16ToF32) : scales);
      },
    });
  }
  return pieces;
}

/** A sink that hashes what goes through it. */
function hashingSink(inner: ByteSink): ByteSink & { sha256(): string } {
  const hash = createHash('sha256');
  return {
    async write(bytes) {
      hash.update(bytes);
      await inner.write(bytes);
    },
    close: () => inner.close(),
    sha256: () => hash.digest('hex'),
  };
}

async function hashFile(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Converts `options.source` into `options.out`; returns what was written. */
export async function convertCheckpoint(options: ConvertOptions): Promise<ConvertResult> {
  const started = performance.now();
  const log = options.log ?? (() => {});
  const { source, out, weights: format, shardBytes } = options;
  if (!(await stat(source).then((s) => s.isDirectory(), () => false))) throw bad(`${source} is not a checkpoint folder`);
  const checkpoint = await openCheckpoint(source);
  try {
    if (checkpoint.manifest) throw bad(`${source} was already converted by omniweb convert; convert the original checkpoint instead`);
    // The config must describe these tensors before anything is written.
    await loadOmniConfig(checkpoint);
    const capacity = shardBytes - HEADER_RESERVE_BYTES;
    // A matrix part's values and scales are one group: they land in the same shard.
    const groups: Piece[][] = [];
    const matrices: Record<string, ManifestMatrix> = {};
    const stored = new Set<string>();
    for (const name of checkpoint.names()) {
      const info = checkpoint.info(name);
      if (!isConvertedMatrix(name, info.dtype, info.shape)) {
        if (info.byteLength > capacity) {
          throw new OmniError('UNSUPPORTED_CONFIG', `convert: ${name} (${info.dtype} [${info.shape.join(', ')}]) is ${info.byteLength} bytes, more than fits one ${shardBytes}-byte shard, and only matrices are split`);
        }
        groups.push([{ spec: { name, dtype: info.dtype as SafetensorsDtype, shape: [...info.shape] }, bytes: info.byteLength, produce: () => checkpoint.readStored(name) }]);
        stored.add(name);
        continue;
      }
      const rows = info.shape[0];
      const cols = info.shape.slice(1).reduce((a, b) => a * b, 1);
      const { data, scales } = convertedRowBytes(cols, format);
      const rowsPerPart = Math.floor(capacity / (data + scales));
      if (rowsPerPart < 1) throw new OmniError('UNSUPPORTED_CONFIG', `convert: one row of ${name} (${data + scales} bytes as ${format}) does not fit a ${shardBytes}-byte shard`);
      const matrix: ManifestMatrix = { format, shape: [...info.shape], parts: [] };
      for (let first = 0; first < rows; first += rowsPerPart) {
        const count = Math.min(rowsPerPart, rows - first);
        matrix.parts.push({ file: '', rows: [first, first + count] });
        groups.push(matrixPieces(checkpoint, name, format, first, count, cols));
      }
      matrices[name] = matrix;
    }

    const shards: Piece[][] = [];
    let current: Piece[] = [];
    let size = 0;
    for (const group of groups) {
      const bytes = group.reduce((s, p) => s + p.bytes, 0);
      if (current.length > 0 && size + bytes > capacity) {
        shards.push(current);
        current = [];
        size = 0;
      }
      current.push(...group);
      size += bytes;
    }
    if (current.length > 0) shards.push(current);

    await prepareEmptyFolder(out, 'convert');
    const pad = (n: number) => String(n).padStart(5, '0');
    const shardFiles: ManifestFile[] = [];
    const tensors: Record<string, string> = {};
    const fileOfPart = new Map<string, string>();
    for (const [index, shard] of shards.entries()) {
      const file = `weights-${pad(index + 1)}-of-${pad(shards.length)}.safetensors`;
      const header = planSafetensors(shard.map((p) => p.spec)).header.length;
      if (header > HEADER_RESERVE_BYTES) throw new OmniError('INTERNAL', `convert: the header of ${file} is ${header} bytes, over the ${HEADER_RESERVE_BYTES} reserved`);
      const sink = hashingSink(await fileSink(join(out, file)));
      let bytes: number;
      try {
        bytes = await streamSafetensors(sink, shard.map((p) => p.spec), async function* (_t, i) { yield await shard[i].produce(); });
      } finally {
        await sink.close();
      }
      shardFiles.push({ file, bytes, sha256: sink.sha256() });
      for (const piece of shard) {
        if (stored.has(piece.spec.name)) tensors[piece.spec.name] = file;
        else fileOfPart.set(piece.spec.name, file);
      }
      log(`${file}: ${shard.length} tensors, ${(bytes / 2 ** 20).toFixed(1)} MiB`);
    }
    for (const [name, matrix] of Object.entries(matrices)) {
      for (const part of matrix.parts) part.file = fileOfPart.get(partDataName(name, part))!;
    }

    const sideFiles: ManifestFile[] = [];
    for (const entry of await readdir(source, { withFileTypes: true })) {
      if (!entry.isFile() || entry.name.endsWith('.safetensors') || entry.name === INDEX_FILE) continue;
      await copyFile(join(source, entry.name), join(out, entry.name));
      sideFiles.push({ file: entry.name, bytes: (await stat(join(out, entry.name))).size, sha256: await hashFile(join(out, entry.name)) });
    }
    const manifest: Manifest = {
      format: MANIFEST_FORMAT, version: MANIFEST_VERSION, weights: format, shards: shardFiles, files: sideFiles, matrices, tensors,
    };
    const scratch = join(out, `${MANIFEST_FILE}.part`);
    const sink = await fileSink(scratch);
    try {
      await sink.write(new TextEncoder().encode(`${JSON.stringify(manifest)}\n`));
    } finally {
      await sink.close();
    }
    await rename(scratch, join(out, MANIFEST_FILE));
    return {
      source, out, weights: format, shards: shardFiles, files: sideFiles,
      matrices: Object.keys(matrices).length, tensors: Object.keys(tensors).length,
      sourceBytes: checkpoint.bytesTotal, convertedBytes: shardFiles.reduce((s, f) => s + f.bytes, 0),
      seconds: Math.round((performance.now() - started) / 100) / 10,
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
    };
  } finally {
    await checkpoint.close();
  }
}

/** `omniweb convert …`: progress on stderr, the JSON summary on stdout. */
export async function convertCommand(argv: readonly string[]): Promise<void> {
  const options = parseConvertArgs(argv);
  const result = await convertCheckpoint({ ...options, log: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(`${JSON.stringify({ ...result, shards: result.shards.length, files: result.files.map((f) => f.file) }, null, 2)}\n`);
}
