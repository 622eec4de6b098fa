import { OmniError } from '../errors.js';
import type { ByteSource } from './byteSource.js';

/** Bytes read per step when hashing a file incrementally (Node). */
const HASH_CHUNK_BYTES = 16 * 2 ** 20;

function isNode(): boolean {
  return typeof process !== 'undefined' && Boolean(process.versions?.node);
}

/**
 * SHA-256 of `bytes` as lowercase hex: node:crypto in Node, WebCrypto in a browser. Neither
 * hashes incrementally in both places, so callers hash whole files; converted shards are
 * at most 256 MiB, which keeps that within the loader's memory budget.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  let digest: ArrayBuffer | Uint8Array;
  if (isNode()) {
    const { createHash } = await import('node:crypto');
    digest = createHash('sha256').update(bytes).digest();
  } else if (subtle) {
    digest = await subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
  } else {
    throw new OmniError('UNSUPPORTED_CONFIG', 'this platform has neither node:crypto nor WebCrypto (crypto.subtle needs a secure context: https or localhost); cannot verify downloaded weights');
  }
  let hex = '';
  for (const byte of new Uint8Array(digest)) {
    hex += byte.toString(16).padStart(2, '0');
  }
  return hex;
}

/**
 * SHA-256 of a whole file without keeping it: in Node a chunk at a time, elsewhere (WebCrypto
 * cannot hash incrementally) in one read.
 */
export async function sha256OfSource(source: ByteSource): Promise<string> {
  if (!isNode()) return sha256Hex(await source.read(0, source.size));
  const { createHash } = await import('node:crypto');
  const hash = createHash('sha256');
  for (let at = 0; at < source.size; at += HASH_CHUNK_BYTES) hash.update(await source.read(at, Math.min(HASH_CHUNK_BYTES, source.size - at)));
  return hash.digest('hex');
}
