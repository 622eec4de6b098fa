import { OmniError } from '../errors.js';
import { blobSource, bytesSource, pathSource, urlSource, type ByteSource, type UrlSourceOptions } from './byteSource.js';
import { openConverted, type ConvertedOptions } from './converted.js';
import { readHeader } from './header.js';
import { MANIFEST_FILE, type Manifest } from './manifest.js';
import { TensorStore, type StoreEntry, type StoreOptions } from './tensorStore.js';

/** The files of a checkpoint folder, wherever it lives: a directory, a URL prefix, files picked in a browser. */
export interface CheckpointFiles {
  /** The folder, for messages. */
  readonly location: string;
  /** The named file, or null when it does not exist. */
  open(fileName: string): Promise<ByteSource | null>;
}

/** One safetensors file: a Node path, an http(s) URL, a Blob/File, bytes, or a ready source. */
export type SafetensorsInput = string | URL | Blob | Uint8Array | ArrayBuffer | ByteSource;

/** A checkpoint folder (or its index/single file), or any single-file input. */
export type CheckpointInput = SafetensorsInput | CheckpointFiles;

/** `cache` and `onWarning` apply to folders `omniweb convert` wrote (their files have hashes to key and check them by). */
export interface OpenOptions extends StoreOptions, ConvertedOptions, Pick<UrlSourceOptions, 'maxUnrangedBytes' | 'fetch'> {}

export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';
/** Side files (config.json, index) are small; a bigger one is a mistake, not something to buffer. */
const MAX_SIDE_FILE_BYTES = 64 * 1024 * 1024;

function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function isByteSource(x: unknown): x is ByteSource {
  return typeof x === 'object' && x !== null && typeof (x as ByteSource).read === 'function' && typeof (x as ByteSource).size === 'number';
}

function isCheckpointFiles(x: unknown): x is CheckpointFiles {
  return typeof x === 'object' && x !== null && typeof (x as CheckpointFiles).open === 'function' && typeof (x as CheckpointFiles).location === 'string';
}

/** Rejects index entries that would leave the checkpoint folder. */
function checkFileName(name: string, where: string): void {
  if (name === '' || name.startsWith('/') || name.includes('\\') || name.split('/').includes('..')) {
    throw new OmniError('BAD_HEADER', `${where} names file ${JSON.stringify(name)}, which is not a file inside the checkpoint folder`);
  }
}

/** Files of a local directory (Node). */
export function directoryFiles(dir: string): CheckpointFiles {
  return {
    location: dir,
    async open(fileName) {
      checkFileName(fileName, `a request for ${dir}`);
      const { join } = await import('node:path');
      return pathSource(join(dir, fileName));
    },
  };
}

/** Files under a URL prefix (a trailing slash is added when missing). */
export function urlFiles(baseUrl: string, options: UrlSourceOptions = {}): CheckpointFiles {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return {
    location: base,
    async open(fileName) {
      checkFileName(fileName, `a request for ${base}`);
      return urlSource(new URL(fileName, base).href, options);
    },
  };
}

/** Files picked or dropped in a browser, by their names (`File.name`, or the keys of a record). */
export function blobFiles(files: Iterable<File> | Record<string, Blob>, location = 'selected files'): CheckpointFiles {
  if (files === null || typeof files !== 'object') {
    throw new OmniError('BAD_INPUT', 'blobFiles takes the picked File list or a record of file name → Blob');
  }
  const byName = new Map<string, Blob>(
    Symbol.iterator in files ? [...(files as Iterable<File>)].map((f) => [f.name, f]) : Object.entries(files),
  );
  return {
    location,
    async open(fileName) {
      const blob = byName.get(fileName);
      return blob ? blobSource(blob, fileName) : null;
    },
  };
}

/** Opens one input as a byte source; a missing file is an IO error. */
export async function openByteSource(input: SafetensorsInput, options: OpenOptions = {}): Promise<ByteSource> {
  if (isByteSource(input)) return input;
  if (input instanceof Uint8Array) return bytesSource(input);
  if (input instanceof ArrayBuffer) return bytesSource(new Uint8Array(input));
  if (typeof Blob !== 'undefined' && input instanceof Blob) return blobSource(input);
  const text = input instanceof URL ? input.href : input;
  if (typeof text !== 'string') {
    throw new OmniError('BAD_INPUT', `cannot read weights from a ${Object.prototype.toString.call(input)}; pass a path, URL, Blob, bytes or ByteSource`);
  }
  const source = isHttpUrl(text) ? await urlSource(text, options) : await pathSource(text);
  if (!source) throw new OmniError('IO', `${text} does not exist`);
  return source;
}

/** A safetensors checkpoint: its tensors plus access to the files beside them (config.json, …). */
export class Checkpoint extends TensorStore {
  /** The folder the weights came from; null for a lone file given as bytes, Blob or source. */
  readonly files: CheckpointFiles | null;
  /** The safetensors file names (one, or the shards of the index). */
  readonly shards: readonly string[];
  /** The manifest of a folder `omniweb convert` wrote; null for a checkpoint as transformers saves it. */
  readonly manifest: Manifest | null;

  constructor(
    tensors: ReadonlyMap<string, StoreEntry>,
    sources: readonly ByteSource[],
    lookedIn: string,
    files: CheckpointFiles | null,
    options: StoreOptions,
    manifest: Manifest | null = null,
  ) {
    super(tensors, sources, lookedIn, options);
    this.files = files;
    this.shards = sources.map((s) => s.name);
    this.manifest = manifest;
  }

  /** A side file as text (e.g. `config.json`), or null when it is absent or there is no folder. */
  async readText(fileName: string): Promise<string | null> {
    if (!this.files) return null;
    const source = await this.files.open(fileName);
    if (!source) return null;
    try {
      return await readSmallText(source);
    } finally {
      await source.close();
    }
  }
}

async function readSmallText(source: ByteSource): Promise<string> {
  if (source.size > MAX_SIDE_FILE_BYTES) {
    throw new OmniError('BAD_INPUT', `${source.name} is ${source.size} bytes; a JSON side file over ${MAX_SIDE_FILE_BYTES} bytes is not expected`);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(await source.read(0, source.size));
  } catch (e) {
    if (e instanceof OmniError) throw e;
    throw new OmniError('BAD_HEADER', `${source.name} is not UTF-8 text`, { cause: e });
  }
}

async function singleFile(source: ByteSource, files: CheckpointFiles | null, options: StoreOptions): Promise<Checkpoint> {
  try {
    const header = await readHeader(source);
    const tensors = new Map([...header.tensors].map(([name, info]) => [name, { info, source }]));
    return new Checkpoint(tensors, [source], source.name, files, options);
  } catch (e) {
    await source.close();
    throw e;
  }
}

/** Parses `model.safetensors.index.json` into tensor → shard file. */
function parseIndex(text: string, where: string): Map<string, string> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new OmniError('BAD_HEADER', `${where} is not valid JSON (${(e as Error).message}); re-download it`);
  }
  const map = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof map !== 'object' || map === null || Array.isArray(map)) {
    throw new OmniError('BAD_HEADER', `${where} has no "weight_map" object mapping tensor names to shard files`);
  }
  const weightMap = new Map<string, string>();
  for (const [tensor, file] of Object.entries(map)) {
    if (typeof file !== 'string') throw new OmniError('BAD_HEADER', `${where} maps tensor ${tensor} to ${JSON.stringify(file)}, not a file name`);
    checkFileName(file, where);
    weightMap.set(tensor, file);
  }
  return weightMap;
}

async function shardedFiles(indexSource: ByteSource, files: CheckpointFiles, options: StoreOptions): Promise<Checkpoint> {
  const where = indexSource.name;
  let weightMap: Map<string, string>;
  try {
    weightMap = parseIndex(await readSmallText(indexSource), where);
  } finally {
    await indexSource.close();
  }
  const tensorsOfShard = new Map<string, string[]>();
  for (const [tensor, file] of weightMap) {
    const list = tensorsOfShard.get(file);
    if (list) list.push(tensor);
    else tensorsOfShard.set(file, [tensor]);
  }
  const opened: ByteSource[] = [];
  try {
    const tensors = new Map<string, StoreEntry>();
    for (const [file, names] of tensorsOfShard) {
      const source = await files.open(file);
      if (!source) {
        throw new OmniError(
          'MISSING_TENSOR',
          `shard ${file}, listed in ${where} for ${names.length} tensors (e.g. ${names[0]}), is missing from ${files.location}; download it`,
        );
      }
      opened.push(source);
      const header = await readHeader(source);
      for (const name of names) {
        const info = header.tensors.get(name);
        if (!info) {
          throw new OmniError('MISSING_TENSOR', `tensor ${name}: ${where} puts it in shard ${file}, whose header does not list it`);
        }
        tensors.set(name, { info, source });
      }
    }
    return new Checkpoint(tensors, opened, `${where} (${opened.length} shards)`, files, options);
  } catch (e) {
    await Promise.all(opened.map((s) => s.close()));
    throw e;
  }
}

/** Opens a checkpoint folder: the manifest of a converted folder, else the shard index, else `model.safetensors`. */
async function openFolder(files: CheckpointFiles, options: OpenOptions): Promise<Checkpoint> {
  const manifestSource = await files.open(MANIFEST_FILE);
  if (manifestSource) {
    let text: string;
    try {
      text = await readSmallText(manifestSource);
    } finally {
      await manifestSource.close();
    }
    const opened = await openConverted(files, text, manifestSource.name, options);
    return new Checkpoint(opened.tensors, opened.sources, `${manifestSource.name} (${opened.sources.length} shards)`, opened.files, options, opened.manifest);
  }
  const index = await files.open(INDEX_FILE);
  if (index) return shardedFiles(index, files, options);
  const single = await files.open(SINGLE_FILE);
  if (single) return singleFile(single, files, options);
  throw new OmniError('IO', `${files.location} has neither ${INDEX_FILE} nor ${SINGLE_FILE}; point at a checkpoint folder`);
}

function parentOf(location: string): string {
  const cut = Math.max(location.lastIndexOf('/'), location.lastIndexOf('\\'));
  return cut < 0 ? '.' : location.slice(0, cut + 1);
}

/** Opens one safetensors file; reads only its header until tensors are asked for. */
export async function openSafetensors(input: SafetensorsInput, options: OpenOptions = {}): Promise<Checkpoint> {
  return singleFile(await openByteSource(input, options), null, options);
}

/**
 * Opens a checkpoint: a folder (Node path, URL prefix, `CheckpointFiles`),
 * its `model.safetensors.index.json`, a single `.safetensors` file (whose
 * folder then serves config.json), or bytes/Blob/source of one file.
 */
export async function openCheckpoint(input: CheckpointInput, options: OpenOptions = {}): Promise<Checkpoint> {
  if (isCheckpointFiles(input)) return openFolder(input, options);
  if (typeof input !== 'string' && !(input instanceof URL)) return singleFile(await openByteSource(input, options), null, options);
  const text = input instanceof URL ? input.href : input;
  const isIndex = text.endsWith('.index.json');
  const isFile = isIndex || text.endsWith('.safetensors');
  if (isHttpUrl(text)) {
    const files = urlFiles(isFile ? parentOf(text) : text, options);
    if (!isFile) return openFolder(files, options);
    const source = await openByteSource(text, options);
    return isIndex ? shardedFiles(source, files, options) : singleFile(source, files, options);
  }
  const { stat } = await import('node:fs/promises');
  const kind = await stat(text).then(
    (s) => (s.isDirectory() ? 'dir' : 'file'),
    (e: Error) => { throw new OmniError('IO', `cannot open checkpoint ${text}: ${e.message}`, { cause: e }); },
  );
  if (kind === 'dir') return openFolder(directoryFiles(text), options);
  const files = directoryFiles(parentOf(text));
  const source = await openByteSource(text, options);
  return isIndex ? shardedFiles(source, files, options) : singleFile(source, files, options);
}
