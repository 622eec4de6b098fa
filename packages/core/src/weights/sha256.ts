import { OmniError } from '../errors.js';

/**
 * SHA-256 of `bytes` as lowercase hex: node:crypto in Node, WebCrypto in a browser. Neither
 * hashes incrementally in both places, so callers hash whole files; converted shards are
 * at most 256 MiB, which keeps that within the loader's memory budget.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  let digest: ArrayBuffer | Uint8Array;
  if (typeof process !== 'undefined' && process.versions?.node) {
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
