/**
 * The byte-level alphabet of GPT-2-style BPE (Qwen2's): each of the 256 byte
 * values is one printable character in token strings. Printable Latin-1
 * bytes ('!'–'~', '¡'–'¬', '®'–'ÿ') stand for themselves; the other 68 bytes
 * take the characters from U+0100 on, in byte order.
 */
function buildByteOfChar(): Map<string, number> {
  const byteOf = new Map<string, number>();
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let extra = 0;
  for (let b = 0; b < 256; b++) byteOf.set(String.fromCodePoint(printable(b) ? b : 256 + extra++), b);
  return byteOf;
}

const BYTE_OF_CHAR = buildByteOfChar();

/** The bytes a byte-level token string stands for; null when a character is outside the alphabet. */
export function tokenBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const b = BYTE_OF_CHAR.get(ch);
    if (b === undefined) return null;
    out[n++] = b;
  }
  return out.subarray(0, n);
}
