/**
 * Opening a folder `omniweb convert` wrote (see manifest.ts). Every file the manifest lists is
 * checked against its size and sha256 before anything is read from it, shard by shard, so a
 * missing, short or corrupt shard fails the open with a typed error and no model half-loads.
 * With a model cache, each verified file is stored as soon as it is checked: a load that was
 * cut off resumes after the last good file, and a later load reads only from the cache.
 * Without one, a shard is hashed as it is read (in Node 16 MiB at a time; in a browser whole,
 * at most 256 MiB) and read again range by range as tensors are asked for (over HTTP:
 * downloaded twice), so it is never held beyond its check.
 */
import { isOmniError, OmniError } from '../errors.js';
import { bytesSource, type ByteSource } from './byteSource.js';
import type { CheckpointFiles } from './checkpoint.js';
import { readHeader, type TensorInfo } from './header.js';
import {
  convertedRowBytes, MANIFEST_FILE, parseManifest, partDataName, partScalesName, type Manifest, type ManifestFile, type ManifestMatrix,
} from './manifest.js';
import type { ModelCache } from './modelCache.js';
import { sha256Hex, sha256OfSource } from './sha256.js';
import type { ConvertedPart, StoredTensor, StoreEntry } from './tensorStore.js';

/** Something the caller should know but that does not stop the load. */
export interface LoadWarning {
  /** `cache-full`: the model cache refused a file; it is held in memory, the files after it are read from the network. */
  kind: 'cache-full';
  message: string;
}

export interface ConvertedOptions {
  /** Where verified files are kept between loads (see modelCache.ts); default none. */
  cache?: ModelCache | null;
  onWarning?: (warning: LoadWarning) => void;
}

/**
 * The folder's files, each manifest-listed one verified on open (and cached when a cache is
 * given). Files the manifest does not list are opened as they are.
 */
function verifiedFiles(files: CheckpointFiles, manifest: Manifest, options: ConvertedOptions): CheckpointFiles {
  const listed = new Map<string, ManifestFile>([...manifest.shards, ...manifest.files].map((f) => [f.file, f]));
  const shards = new Set(manifest.shards.map((s) => s.file));
  let cache = options.cache ?? null;
  const location = files.location.endsWith('/') ? files.location : `${files.location}/`;

  /** Checks the file's size and hash; returns its bytes when `keep` (to cache them), else null. */
  const verify = async (entry: ManifestFile, source: ByteSource, keep: boolean): Promise<Uint8Array | null> => {
    const where = `${location}${entry.file}`;
    if (source.size !== entry.bytes) {
      throw new OmniError(
        source.size < entry.bytes ? 'TRUNCATED' : 'HASH_MISMATCH',
        `${where} is ${source.size} bytes but ${MANIFEST_FILE} lists ${entry.bytes}; ${source.size < entry.bytes ? 'the file is truncated' : 'it is not the file that was converted'} (re-download it)`,
      );
    }
    const bytes = keep ? await source.read(0, source.size) : null;
    const sha256 = bytes ? await sha256Hex(bytes) : await sha256OfSource(source);
    if (sha256 !== entry.sha256) {
      throw new OmniError('HASH_MISMATCH', `${where} has sha256 ${sha256}, but ${MANIFEST_FILE} lists ${entry.sha256}; the file is corrupt or from another conversion (re-download it)`);
    }
    return bytes;
  };

  return {
    location: files.location,
    async open(fileName) {
      const entry = listed.get(fileName);
      if (!entry) return files.open(fileName);
      const key = { url: `${location}${fileName}`, bytes: entry.bytes, sha256: entry.sha256 };
      const hit = await cache?.get(key);
      if (hit) return hit;
      const source = await files.open(fileName);
      if (!source) return null;
      // Without a cache a shard is read again range by range, so its bytes need not be kept.
      const keep = cache !== null || !shards.has(fileName);
      let bytes: Uint8Array | null;
      try {
        bytes = await verify(entry, source, keep);
      } catch (e) {
        await source.close();
        throw e;
      }
      if (!bytes) return source;
      await source.close();
      if (!cache) return bytesSource(bytes, key.url);
      try {
        return await cache.put(key, bytes);
      } catch (e) {
        if (!isOmniError(e, 'OUT_OF_MEMORY')) throw e;
        options.onWarning?.({
          kind: 'cache-full',
          message: `${e.message}; this file is held in memory for this load, the files after it are read from the network as the model loads, and all of them will be downloaded again next time`,
        });
        // Holding the rest of a multi-GB model in memory too could sink the tab: no cache from here on.
        cache = null;
        return bytesSource(bytes, key.url);
      }
    },
  };
}

/** Opens each shard (verified) and maps every tensor of the manifest to where it is stored. */
export async function openConverted(
  files: CheckpointFiles, manifestText: string, where: string, options: ConvertedOptions & { signal?: AbortSignal },
): Promise<{ tensors: Map<string, StoreEntry>; sources: ByteSource[]; files: CheckpointFiles; manifest: Manifest }> {
  const manifest = parseManifest(manifestText, where);
  const verified = verifiedFiles(files, manifest, options);
  const sources: ByteSource[] = [];
  try {
    const shardTensors = new Map<string, { source: ByteSource; tensors: ReadonlyMap<string, TensorInfo> }>();
    for (const shard of manifest.shards) {
      if (options.signal?.aborted) throw new OmniError('ABORTED', `opening ${where} was aborted before shard ${shard.file}; verified shards stay in the cache`);
      const source = await verified.open(shard.file);
      if (!source) {
        throw new OmniError('MISSING_TENSOR', `shard ${shard.file}, listed in ${where}, is missing from ${files.location}; download it`);
      }
      sources.push(source);
      shardTensors.set(shard.file, { source, tensors: (await readHeader(source)).tensors });
    }
    const stored = (file: string, name: string, owner: string): StoredTensor => {
      const shard = shardTensors.get(file)!;
      const info = shard.tensors.get(name);
      if (!info) throw new OmniError('MISSING_TENSOR', `tensor ${name} (of ${owner}): ${where} puts it in shard ${file}, whose header does not list it`);
      return { info, source: shard.source };
    };
    const tensors = new Map<string, StoreEntry>();
    for (const [name, file] of Object.entries(manifest.tensors)) tensors.set(name, stored(file, name, name));
    for (const [name, matrix] of Object.entries(manifest.matrices)) tensors.set(name, convertedEntry(name, matrix, stored));
    return { tensors, sources, files: verified, manifest };
  } catch (e) {
    await Promise.all(sources.map((s) => s.close()));
    throw e;
  }
}

/** One converted matrix: its parts' shard tensors, each checked to hold exactly its rows. */
function convertedEntry(
  name: string, matrix: ManifestMatrix, stored: (file: string, tensor: string, owner: string) => StoredTensor,
): StoreEntry {
  const cols = matrix.shape.slice(1).reduce((a, b) => a * b, 1);
  const rowBytes = convertedRowBytes(cols, matrix.format);
  const dataDtype = matrix.format === 'f32' ? 'F32' : matrix.format === 'f16' ? 'F16' : 'U8';
  const expect = (tensor: StoredTensor, dtype: string, rows: number, bytesPerRow: number) => {
    const { info } = tensor;
    if (info.dtype !== dtype || info.shape[0] !== rows || info.byteLength !== rows * bytesPerRow) {
      throw new OmniError(
        'SHAPE_MISMATCH',
        `${info.name} in ${info.file} is ${info.dtype} [${info.shape.join(', ')}]; the ${matrix.format} matrix ${name} [${matrix.shape.join(', ')}] needs ${dtype} with ${rows} rows of ${bytesPerRow} bytes`,
      );
    }
  };
  let byteLength = 0;
  const parts = matrix.parts.map((part): ConvertedPart => {
    const rows = part.rows[1] - part.rows[0];
    const data = stored(part.file, partDataName(name, part), name);
    expect(data, dataDtype, rows, rowBytes.data);
    let scales: StoredTensor | null = null;
    if (rowBytes.scales > 0) {
      scales = stored(part.file, partScalesName(name, part), name);
      expect(scales, 'F32', rows, rowBytes.scales);
    }
    byteLength += data.info.byteLength + (scales?.info.byteLength ?? 0);
    return { first: part.rows[0], rows, data, scales };
  });
  const first = parts[0].data.info;
  return {
    info: { name, dtype: matrix.format.toUpperCase(), shape: matrix.shape, byteOffset: first.byteOffset, byteLength, file: first.file },
    format: matrix.format,
    parts,
  };
}
