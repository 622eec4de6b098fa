import { OmniError } from '../errors.js';

/**
 * Random access to the bytes of one file. Every reader in this folder goes
 * through this interface, so a checkpoint on disk, behind a URL or picked by
 * the user in a browser is read the same way: a range at a time, never whole.
 */
export interface ByteSource {
  /** What to call the file in error messages (path, URL or file name). */
  readonly name: string;
  /** File length in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`, in a fresh buffer the caller owns. */
  read(offset: number, length: number): Promise<Uint8Array>;
  /** Release the file handle or network resources, if any. */
  close(): Promise<void>;
}

/**
 * Largest single read we ask a backing store for. Node's `FileHandle.read`
 * and `Blob.slice().arrayBuffer()` both handle ranges this size comfortably;
 * a bigger tensor is assembled from several reads into one buffer.
 */
const READ_CHUNK_BYTES = 256 * 1024 * 1024;

/** Throws unless [offset, offset + length) lies inside a file of `size` bytes. */
function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new OmniError('INTERNAL', `read of ${name}: invalid range offset ${offset}, length ${length}`);
  }
  if (offset + length > size) {
    throw new OmniError(
      'TRUNCATED',
      `${name} is ${size} bytes but a read needs bytes ${offset}..${offset + length}; the file is truncated or the header is wrong`,
    );
  }
}

/** Reads `length` bytes as a sequence of bounded chunk reads into one buffer. */
async function readChunked(
  length: number,
  readChunk: (into: Uint8Array, at: number) => Promise<void>,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  for (let at = 0; at < length; at += READ_CHUNK_BYTES) {
    await readChunk(out.subarray(at, Math.min(length, at + READ_CHUNK_BYTES)), at);
  }
  return out;
}

/** A source over bytes already in memory (tests, small files, servers without range support). */
export function bytesSource(bytes: Uint8Array, name = 'in-memory buffer'): ByteSource {
  const size = bytes.length;
  return {
    name,
    size,
    async read(offset, length) {
      checkRange(name, size, offset, length);
      return bytes.slice(offset, offset + length);
    },
    async close() {},
  };
}

/** A source over a Blob or File (browser file picker, drag and drop); reads are `slice()`s. */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name ?? 'blob'): ByteSource {
  const size = blob.size;
  return {
    name,
    size,
    async read(offset, length) {
      checkRange(name, size, offset, length);
      return readChunked(length, async (into, at) => {
        const start = offset + at;
        into.set(new Uint8Array(await blob.slice(start, start + into.length).arrayBuffer()));
      });
    },
    async close() {},
  };
}

/** True when `e` is Node's "no such file" error. */
function isNotFound(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { code?: unknown }).code === 'ENOENT';
}

/**
 * A source over a local file (Node only): positioned reads on one open file
 * handle. Returns null when the file does not exist; other failures are IO.
 */
export async function pathSource(path: string): Promise<ByteSource | null> {
  const fs = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof fs.open>>;
  try {
    handle = await fs.open(path, 'r');
  } catch (e) {
    if (isNotFound(e)) return null;
    throw new OmniError('IO', `cannot open ${path}: ${(e as Error).message}`, { cause: e });
  }
  let size: number;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new OmniError('IO', `${path} is not a regular file`);
    size = stat.size;
  } catch (e) {
    await handle.close();
    if (e instanceof OmniError) throw e;
    throw new OmniError('IO', `cannot stat ${path}: ${(e as Error).message}`, { cause: e });
  }
  return {
    name: path,
    size,
    async read(offset, length) {
      checkRange(path, size, offset, length);
      return readChunked(length, async (into, at) => {
        let done = 0;
        while (done < into.length) {
          let bytesRead: number;
          try {
            ({ bytesRead } = await handle.read(into, done, into.length - done, offset + at + done));
          } catch (e) {
            throw new OmniError('IO', `reading ${path} at byte ${offset + at + done} failed: ${(e as Error).message}`, { cause: e });
          }
          // The file shrank after we measured it.
          if (bytesRead === 0) throw new OmniError('TRUNCATED', `${path} ended at byte ${offset + at + done} while reading`);
          done += bytesRead;
        }
      });
    },
    async close() {
      await handle.close();
    },
  };
}

export interface UrlSourceOptions {
  /** Passed to every `fetch`. */
  signal?: AbortSignal;
  /**
   * When the server ignores `Range`, the whole file has to be downloaded once
   * and kept in memory. Above this size (default 1 GiB) that is refused with
   * an IO error instead, since a multi-GB shard would not fit in a tab.
   */
  maxUnrangedBytes?: number;
  /** Injected `fetch` (tests, custom auth); default: the global one. */
  fetch?: typeof fetch;
}

/** Tries per request when the connection fails before a response arrives. */
const FETCH_ATTEMPTS = 3;

/** Bytes [start, end) as an HTTP Range header value (inclusive end). */
function rangeHeader(start: number, end: number): string {
  return `bytes=${start}-${end - 1}`;
}

/** The total from a `Content-Range: bytes a-b/total` header, or null. */
function contentRangeTotal(value: string | null): number | null {
  const m = value === null ? null : /^bytes\s+\d+-\d+\/(\d+)\s*$/i.exec(value);
  return m ? Number(m[1]) : null;
}

/**
 * A source over a URL, read with HTTP range requests. Returns null on 404.
 * A server that answers a range request with the whole body (status 200)
 * gets one full download, kept in memory (see `maxUnrangedBytes`).
 */
export async function urlSource(url: string, options: UrlSourceOptions = {}): Promise<ByteSource | null> {
  const doFetch = options.fetch ?? globalThis.fetch;
  const maxUnranged = options.maxUnrangedBytes ?? 2 ** 30;
  const get = async (range: string | null): Promise<Response> => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await doFetch(url, { headers: range ? { Range: range } : {}, signal: options.signal });
      } catch (e) {
        if (options.signal?.aborted) throw new OmniError('ABORTED', `download of ${url} was aborted`, { cause: e });
        // A kept-alive connection the server closed just as the request went out fails before any
        // response; a range GET is safe to send again on a fresh one.
        if (attempt < FETCH_ATTEMPTS) continue;
        throw new OmniError('IO', `fetching ${url} failed (${FETCH_ATTEMPTS} attempts): ${(e as Error).message}`, { cause: e });
      }
    }
  };
  const probe = await get(rangeHeader(0, 1));
  if (probe.status === 404) {
    await probe.body?.cancel();
    return null;
  }
  if (probe.status === 416) {
    // Range not satisfiable on byte 0: the file is empty.
    await probe.body?.cancel();
    return bytesSource(new Uint8Array(0), url);
  }
  if (probe.status === 206) {
    const size = contentRangeTotal(probe.headers.get('content-range'));
    await probe.body?.cancel();
    if (size === null) {
      throw new OmniError('IO', `${url} answered a range request without a usable Content-Range header; cannot tell the file size`);
    }
    const fetchRange = async (start: number, length: number): Promise<Uint8Array> => {
      const res = await get(rangeHeader(start, start + length));
      if (res.status !== 206) {
        await res.body?.cancel();
        throw new OmniError('IO', `${url}: range request for bytes ${start}..${start + length} got HTTP ${res.status}`);
      }
      const body = new Uint8Array(await res.arrayBuffer());
      if (body.length !== length) {
        throw new OmniError('TRUNCATED', `${url}: asked for ${length} bytes at ${start}, got ${body.length}`);
      }
      return body;
    };
    return {
      name: url,
      size,
      async read(offset, length) {
        checkRange(url, size, offset, length);
        if (length === 0) return new Uint8Array(0);
        // One request's body is returned as it is: copying it into a second buffer would double the peak.
        if (length <= READ_CHUNK_BYTES) return fetchRange(offset, length);
        return readChunked(length, async (into, at) => into.set(await fetchRange(offset + at, into.length)));
      },
      async close() {},
    };
  }
  if (probe.status === 200) {
    const announced = Number(probe.headers.get('content-length') ?? NaN);
    if (Number.isFinite(announced) && announced > maxUnranged) {
      await probe.body?.cancel();
      throw new OmniError(
        'IO',
        `${url} ignores HTTP Range requests and is ${announced} bytes, over the ${maxUnranged}-byte limit for a full in-memory download; serve it from a host that supports ranges`,
      );
    }
    const bytes = new Uint8Array(await probe.arrayBuffer());
    if (bytes.length > maxUnranged) {
      throw new OmniError('IO', `${url} ignores HTTP Range requests and is ${bytes.length} bytes, over the ${maxUnranged}-byte limit`);
    }
    return bytesSource(bytes, url);
  }
  await probe.body?.cancel();
  throw new OmniError('IO', `fetching ${url} failed: HTTP ${probe.status} ${probe.statusText}`);
}
