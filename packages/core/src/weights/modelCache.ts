/**
 * Where a browser keeps downloaded model files between visits: the origin private file
 * system (OPFS) where it can be written, else the Cache API, else memory (this page only).
 * Entries are keyed by URL + size + sha256 and written only after the bytes were verified,
 * so a hit needs no download and no hashing; a short entry (a write cut off by a crash) is
 * a miss.
 */
import { OmniError } from '../errors.js';
import { blobSource, bytesSource, type ByteSource } from './byteSource.js';

export interface CacheKey {
  url: string;
  bytes: number;
  sha256: string;
}

export type ModelCacheKind = 'opfs' | 'cache-api' | 'memory';

export interface ModelCache {
  readonly kind: ModelCacheKind;
  /** The file stored under `key`, or null. */
  get(key: CacheKey): Promise<ByteSource | null>;
  /**
   * Stores verified bytes and returns a source over the stored copy. A full store (browser
   * quota, memory cap) throws OUT_OF_MEMORY and keeps nothing of the entry.
   */
  put(key: CacheKey, bytes: Uint8Array): Promise<ByteSource>;
  delete(key: CacheKey): Promise<void>;
}

const STORE_NAME = 'omniweb-models';

/** 32-bit FNV-1a of a string, hex: a short stable tag of the URL for file names. */
function urlTag(url: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < url.length; i++) h = Math.imul(h ^ url.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function entryName(key: CacheKey): string {
  return `${key.sha256}-${key.bytes}-${urlTag(key.url)}`;
}

function isQuotaError(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { name?: unknown }).name === 'QuotaExceededError';
}

function quotaError(kind: ModelCacheKind, key: CacheKey, cause: unknown): OmniError {
  return new OmniError('OUT_OF_MEMORY', `the ${kind} model cache is full; ${key.url} (${key.bytes} bytes) was not stored`, { cause });
}

/** A cache in this page's memory; `maxBytes` caps what it holds (default: no cap). */
export function memoryCache(options: { maxBytes?: number } = {}): ModelCache {
  const maxBytes = options.maxBytes ?? Infinity;
  if (!(maxBytes >= 0)) throw new OmniError('BAD_INPUT', `memoryCache: maxBytes must be ≥ 0, got ${String(options.maxBytes)}`);
  const entries = new Map<string, Uint8Array>();
  let held = 0;
  return {
    kind: 'memory',
    async get(key) {
      const bytes = entries.get(entryName(key));
      return bytes ? bytesSource(bytes, key.url) : null;
    },
    async put(key, bytes) {
      const name = entryName(key);
      const previous = entries.get(name)?.length ?? 0;
      if (held - previous + bytes.length > maxBytes) throw quotaError('memory', key, null);
      entries.set(name, bytes);
      held += bytes.length - previous;
      return bytesSource(bytes, key.url);
    },
    async delete(key) {
      const name = entryName(key);
      held -= entries.get(name)?.length ?? 0;
      entries.delete(name);
    },
  };
}

interface OpfsWritable {
  write(data: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

interface OpfsDirectory {
  getFileHandle(name: string, options?: { create?: boolean }): Promise<{ getFile(): Promise<File>; createWritable?(): Promise<OpfsWritable> }>;
  removeEntry(name: string): Promise<void>;
}

/** The OPFS cache, or null where this context has no OPFS or cannot write it from here (Safari's main thread). */
export async function opfsCache(): Promise<ModelCache | null> {
  const storage = (globalThis as { navigator?: { storage?: { getDirectory?: () => Promise<unknown> } } }).navigator?.storage;
  if (typeof storage?.getDirectory !== 'function') return null;
  let dir: OpfsDirectory;
  try {
    const root = (await storage.getDirectory()) as { getDirectoryHandle(name: string, o: { create: boolean }): Promise<OpfsDirectory> };
    dir = await root.getDirectoryHandle(STORE_NAME, { create: true });
    const probe = await dir.getFileHandle('.probe', { create: true });
    if (typeof probe.createWritable !== 'function') return null;
  } catch {
    return null;
  }
  const fileOf = async (key: CacheKey): Promise<File | null> => {
    try {
      return await (await dir.getFileHandle(entryName(key))).getFile();
    } catch {
      return null;
    }
  };
  return {
    kind: 'opfs',
    async get(key) {
      const file = await fileOf(key);
      return file && file.size === key.bytes ? blobSource(file, key.url) : null;
    },
    async put(key, bytes) {
      const name = entryName(key);
      let writable: OpfsWritable | null = null;
      try {
        writable = await (await dir.getFileHandle(name, { create: true })).createWritable!();
        await writable.write(bytes);
        await writable.close();
      } catch (e) {
        await writable?.abort().catch(() => {});
        await dir.removeEntry(name).catch(() => {});
        if (isQuotaError(e)) throw quotaError('opfs', key, e);
        throw new OmniError('IO', `cannot write ${name} to the OPFS model cache: ${(e as Error).message}`, { cause: e });
      }
      const file = await fileOf(key);
      if (!file || file.size !== key.bytes) throw new OmniError('IO', `the OPFS model cache lost ${name} right after writing it`);
      return blobSource(file, key.url);
    },
    async delete(key) {
      await dir.removeEntry(entryName(key)).catch(() => {});
    },
  };
}

/** The Cache API cache, or null where `caches` is missing (Node, insecure contexts). */
export async function cacheApiCache(): Promise<ModelCache | null> {
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return null;
  let cache: Cache;
  try {
    cache = await storage.open(STORE_NAME);
  } catch {
    return null;
  }
  // Entries are looked up by a synthetic URL; the model's URL is part of it.
  const requestOf = (key: CacheKey) => new Request(`https://omniweb.invalid/${entryName(key)}/${encodeURIComponent(key.url)}`);
  const blobOf = async (key: CacheKey): Promise<Blob | null> => {
    const response = await cache.match(requestOf(key));
    return response ? response.blob() : null;
  };
  return {
    kind: 'cache-api',
    async get(key) {
      const blob = await blobOf(key);
      return blob && blob.size === key.bytes ? blobSource(blob, key.url) : null;
    },
    async put(key, bytes) {
      try {
        await cache.put(requestOf(key), new Response(bytes as Uint8Array<ArrayBuffer>));
      } catch (e) {
        await cache.delete(requestOf(key)).catch(() => false);
        if (isQuotaError(e)) throw quotaError('cache-api', key, e);
        throw new OmniError('IO', `cannot store ${key.url} in the Cache API model cache: ${(e as Error).message}`, { cause: e });
      }
      const blob = await blobOf(key);
      if (!blob || blob.size !== key.bytes) throw new OmniError('IO', `the Cache API model cache lost ${key.url} right after storing it`);
      return blobSource(blob, key.url);
    },
    async delete(key) {
      await cache.delete(requestOf(key));
    },
  };
}

/** The best cache this context offers: OPFS, else the Cache API, else memory. */
export async function defaultModelCache(): Promise<ModelCache> {
  return (await opfsCache()) ?? (await cacheApiCache()) ?? memoryCache();
}
