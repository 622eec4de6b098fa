/**
 * The web format `omniweb convert` writes: safetensors shards of at most 256 MiB holding the
 * matrix weights already in their device format (f16, or q8/q4 data + f32 scales, split by
 * rows where a matrix is bigger than a shard) and every other tensor as the original stored
 * it, plus `omniweb.json`, which lists each file with its size and sha256 and says where
 * every tensor lives. A browser downloads it shard by shard, verifying each, and never
 * converts or holds more than one shard at a time.
 */
import type { WeightFormat } from '../backend.js';
import { OmniError } from '../errors.js';
import { paddedCols, QUANT_GROUP } from '../quant.js';

export const MANIFEST_FILE = 'omniweb.json';
export const MANIFEST_FORMAT = 'omniweb-converted';
export const MANIFEST_VERSION = 1;
/** Largest shard written, and read whole to verify its hash. */
export const MAX_SHARD_BYTES = 256 * 2 ** 20;

/** A file of the converted folder with what it must be. */
export interface ManifestFile {
  file: string;
  bytes: number;
  sha256: string;
}

/** Rows [rows[0], rows[1]) of a converted matrix, in `file`. */
export interface MatrixPart {
  file: string;
  rows: [number, number];
}

export interface ManifestMatrix {
  format: WeightFormat;
  /** The original tensor's shape; the matrix is [shape[0], product(rest)]. */
  shape: number[];
  parts: MatrixPart[];
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  version: typeof MANIFEST_VERSION;
  /** The matrix format chosen at conversion. */
  weights: WeightFormat;
  shards: ManifestFile[];
  /** config.json, tokenizer files, spk_dict.pt, …: copied unchanged. */
  files: ManifestFile[];
  /** Converted matrices by their original name. */
  matrices: Record<string, ManifestMatrix>;
  /** Tensors stored as the original stored them, by name → shard file. */
  tensors: Record<string, string>;
}

/**
 * Whether the converter stores a tensor in the chosen matrix format: every float tensor of two
 * or more dimensions outside token2wav, which is what the model loaders read with
 * `readMatrix(name, format)`; token2wav runs in float32 (fact sheet §1) and keeps its tensors.
 */
export function isConvertedMatrix(name: string, dtype: string, shape: readonly number[]): boolean {
  return shape.length >= 2 && (dtype === 'F32' || dtype === 'F16' || dtype === 'BF16') && !name.startsWith('token2wav.');
}

/** The shard tensor holding a part's values (f16 halves, or q8/q4 bytes). */
export function partDataName(matrix: string, part: Pick<MatrixPart, 'rows'>): string {
  return `${matrix}/rows.${part.rows[0]}-${part.rows[1]}`;
}

/** The shard tensor holding a q8/q4 part's f32 group scales. */
export function partScalesName(matrix: string, part: Pick<MatrixPart, 'rows'>): string {
  return `${matrix}/scales.${part.rows[0]}-${part.rows[1]}`;
}

/** Stored bytes of one row of a [rows, cols] matrix in `format` (values, then scales for q8/q4). */
export function convertedRowBytes(cols: number, format: WeightFormat): { data: number; scales: number } {
  switch (format) {
    case 'f32': return { data: cols * 4, scales: 0 };
    case 'f16': return { data: cols * 2, scales: 0 };
    case 'q8': return { data: paddedCols(cols), scales: (paddedCols(cols) / QUANT_GROUP) * 4 };
    case 'q4': return { data: paddedCols(cols) / 2, scales: (paddedCols(cols) / QUANT_GROUP) * 4 };
  }
}

const FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses and checks `omniweb.json`; anything malformed is BAD_HEADER naming the field. */
export function parseManifest(text: string, where: string): Manifest {
  const bad = (what: string) => new OmniError('BAD_HEADER', `${where}: ${what}; re-run omniweb convert or re-download the folder`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad(`not valid JSON (${(e as Error).message})`);
  }
  if (!isRecord(json)) throw bad('not a JSON object');
  if (json.format !== MANIFEST_FORMAT) throw bad(`"format" is ${JSON.stringify(json.format)}, not "${MANIFEST_FORMAT}"`);
  if (json.version !== MANIFEST_VERSION) {
    throw new OmniError('UNSUPPORTED_CONFIG', `${where}: version ${JSON.stringify(json.version)} of the converted format; this runtime reads version ${MANIFEST_VERSION}`);
  }
  if (!FORMATS.includes(json.weights as WeightFormat)) throw bad(`"weights" is ${JSON.stringify(json.weights)}, not one of ${FORMATS.join(', ')}`);
  const fileName = (v: unknown, what: string): string => {
    if (typeof v !== 'string' || v === '' || v.startsWith('/') || v.includes('\\') || v.split('/').includes('..')) {
      throw bad(`${what} names file ${JSON.stringify(v)}, which is not a file inside the folder`);
    }
    return v;
  };
  const fileList = (v: unknown, what: string, maxBytes: number): ManifestFile[] => {
    if (!Array.isArray(v)) throw bad(`"${what}" is not a list`);
    return v.map((entry, i) => {
      if (!isRecord(entry)) throw bad(`${what}[${i}] is not an object`);
      const file = fileName(entry.file, `${what}[${i}]`);
      if (!Number.isSafeInteger(entry.bytes) || (entry.bytes as number) < 0 || (entry.bytes as number) > maxBytes) {
        throw bad(`${what}[${i}] (${file}) has "bytes" ${JSON.stringify(entry.bytes)}, not a size in 0 … ${maxBytes}`);
      }
      if (typeof entry.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(entry.sha256)) throw bad(`${what}[${i}] (${file}) has no 64-digit hex "sha256"`);
      return { file, bytes: entry.bytes as number, sha256: entry.sha256 };
    });
  };
  const shards = fileList(json.shards, 'shards', MAX_SHARD_BYTES);
  const files = fileList(json.files, 'files', Number.MAX_SAFE_INTEGER);
  const shardNames = new Set(shards.map((s) => s.file));
  if (shardNames.size !== shards.length) throw bad('a shard is listed twice');
  const inShard = (v: unknown, what: string): string => {
    const file = fileName(v, what);
    if (!shardNames.has(file)) throw bad(`${what} is in ${file}, which "shards" does not list`);
    return file;
  };
  if (!isRecord(json.matrices)) throw bad('"matrices" is not an object');
  const matrices: Record<string, ManifestMatrix> = {};
  for (const [name, entry] of Object.entries(json.matrices)) {
    if (!isRecord(entry)) throw bad(`matrix ${name} is not an object`);
    if (!FORMATS.includes(entry.format as WeightFormat)) throw bad(`matrix ${name} has format ${JSON.stringify(entry.format)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || shape.length < 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
      throw bad(`matrix ${name} has shape ${JSON.stringify(shape)}, not two or more positive integers`);
    }
    if (!Array.isArray(entry.parts) || entry.parts.length === 0) throw bad(`matrix ${name} has no "parts"`);
    let next = 0;
    const parts = entry.parts.map((part: unknown, i: number): MatrixPart => {
      if (!isRecord(part)) throw bad(`matrix ${name} part ${i} is not an object`);
      const rows = part.rows;
      if (!Array.isArray(rows) || rows.length !== 2 || rows[0] !== next || !Number.isSafeInteger(rows[1]) || rows[1] <= rows[0]) {
        throw bad(`matrix ${name} part ${i} has rows ${JSON.stringify(rows)}; parts must cover the rows in order from ${next}`);
      }
      next = rows[1];
      return { file: inShard(part.file, `matrix ${name} part ${i}`), rows: [rows[0], rows[1]] };
    });
    if (next !== shape[0]) throw bad(`matrix ${name} parts cover ${next} of its ${shape[0]} rows`);
    matrices[name] = { format: entry.format as WeightFormat, shape: shape as number[], parts };
  }
  if (!isRecord(json.tensors)) throw bad('"tensors" is not an object');
  const tensors: Record<string, string> = {};
  for (const [name, file] of Object.entries(json.tensors)) {
    if (Object.hasOwn(matrices, name)) throw bad(`tensor ${name} is listed both as a matrix and as a stored tensor`);
    tensors[name] = inShard(file, `tensor ${name}`);
  }
  return { format: MANIFEST_FORMAT, version: MANIFEST_VERSION, weights: json.weights as WeightFormat, shards, files, matrices, tensors };
}
