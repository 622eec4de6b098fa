/**
 * The subset of the zip format that torch.save uses: uncompressed ("stored")
 * entries, optionally with zip64 fields. Read and written in memory; the
 * files this is for (speaker dictionaries) are small.
 */
import { OmniError } from '../errors.js';

const LOCAL_HEADER = 0x04034b50;
const CENTRAL_HEADER = 0x02014b50;
const END_OF_CENTRAL_DIR = 0x06054b50;
const ZIP64_END_OF_CENTRAL_DIR = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EXTRA_ID = 0x0001;
/** torch's zip writer pads each local header with an extra field of this id so the data starts on a 64-byte boundary. */
const PADDING_EXTRA_ID = 0x4246; // "FB"
const DATA_ALIGNMENT = 64;
/** General-purpose flag bit 11: the name is UTF-8. */
const UTF8_NAME_FLAG = 0x0800;
/** 1980-01-01 00:00 in DOS date/time, the earliest a zip can say: a fixed stamp keeps written files reproducible. */
const DOS_DATE_1980 = (0 << 9) | (1 << 5) | 1;

let crcTable: Uint32Array | null = null;

/** CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip stores it. */
export function crc32(bytes: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = crcTable[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function corrupt(file: string, what: string): OmniError {
  return new OmniError('BAD_HEADER', `${file}: ${what}; it is not a zip archive as torch.save writes them`);
}

/** Little-endian reads that fail with TRUNCATED instead of a RangeError past the end. */
class Reader {
  readonly view: DataView;
  constructor(readonly bytes: Uint8Array, readonly file: string) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(at: number, length: number, what: string): void {
    if (at < 0 || at + length > this.bytes.length) {
      throw new OmniError('TRUNCATED', `${this.file} is ${this.bytes.length} bytes but its ${what} needs bytes ${at}..${at + length}; the file is truncated`);
    }
  }

  u16(at: number): number { return this.view.getUint16(at, true); }
  u32(at: number): number { return this.view.getUint32(at, true); }

  u64(at: number, what: string): number {
    const value = this.view.getBigUint64(at, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(this.file, `${what} is ${value}, beyond any file this reader can hold`);
    return Number(value);
  }
}

/** Where the central directory is: from the zip64 record when the classic one's fields are saturated. */
function findCentralDirectory(r: Reader): { offset: number; size: number; entries: number } {
  const minEnd = 22;
  r.need(0, minEnd, 'end-of-central-directory record');
  // The record sits at the end, after a comment of at most 65535 bytes.
  let end = -1;
  for (let at = r.bytes.length - minEnd; at >= Math.max(0, r.bytes.length - minEnd - 0xffff); at--) {
    if (r.u32(at) === END_OF_CENTRAL_DIR) { end = at; break; }
  }
  if (end < 0) throw corrupt(r.file, 'no end-of-central-directory record');
  let entries = r.u16(end + 10);
  let size = r.u32(end + 12);
  let offset = r.u32(end + 16);
  const locator = end - 20;
  if (locator >= 0 && r.u32(locator) === ZIP64_LOCATOR) {
    const record = r.u64(locator + 8, 'the zip64 record offset');
    r.need(record, 56, 'zip64 end-of-central-directory record');
    if (r.u32(record) !== ZIP64_END_OF_CENTRAL_DIR) throw corrupt(r.file, `no zip64 end-of-central-directory record at byte ${record}`);
    entries = r.u64(record + 32, 'the zip64 entry count');
    size = r.u64(record + 40, 'the zip64 central directory size');
    offset = r.u64(record + 48, 'the zip64 central directory offset');
  }
  r.need(offset, size, 'central directory');
  return { offset, size, entries };
}

/**
 * Every entry of a zip archive whose entries are stored uncompressed, as
 * views into `bytes`, in central-directory order. Compressed or encrypted
 * entries, bad offsets and CRC mismatches are refused.
 */
export function readStoredZip(bytes: Uint8Array, file = 'zip archive'): Map<string, Uint8Array> {
  const r = new Reader(bytes, file);
  const directory = findCentralDirectory(r);
  const names = new TextDecoder('utf-8', { fatal: true });
  const out = new Map<string, Uint8Array>();
  let at = directory.offset;
  for (let i = 0; i < directory.entries; i++) {
    r.need(at, 46, `central directory entry ${i}`);
    if (r.u32(at) !== CENTRAL_HEADER) throw corrupt(file, `central directory entry ${i} at byte ${at} has a bad signature`);
    const flags = r.u16(at + 8);
    const method = r.u16(at + 10);
    const crc = r.u32(at + 16);
    let compressedSize = r.u32(at + 20);
    let size = r.u32(at + 24);
    const nameLength = r.u16(at + 28);
    const extraLength = r.u16(at + 30);
    const commentLength = r.u16(at + 32);
    let localOffset = r.u32(at + 42);
    r.need(at + 46, nameLength + extraLength + commentLength, `central directory entry ${i}`);
    let name: string;
    try {
      name = names.decode(bytes.subarray(at + 46, at + 46 + nameLength));
    } catch {
      throw corrupt(file, `central directory entry ${i} has a name that is not UTF-8`);
    }
    // zip64 extra: the 64-bit values, in this order, of exactly the fields saturated at 0xFFFFFFFF.
    for (let e = at + 46 + nameLength; e + 4 <= at + 46 + nameLength + extraLength;) {
      const id = r.u16(e);
      const length = r.u16(e + 2);
      if (id === ZIP64_EXTRA_ID) {
        let field = e + 4;
        const next = (what: string) => {
          if (field + 8 > e + 4 + length) throw corrupt(file, `entry ${name} has a short zip64 extra field`);
          const v = r.u64(field, what);
          field += 8;
          return v;
        };
        if (size === 0xffffffff) size = next('a zip64 size');
        if (compressedSize === 0xffffffff) compressedSize = next('a zip64 size');
        if (localOffset === 0xffffffff) localOffset = next('a zip64 offset');
      }
      e += 4 + length;
    }
    if (flags & 1) throw corrupt(file, `entry ${name} is encrypted`);
    if (method !== 0) {
      throw new OmniError('BAD_HEADER', `${file}: entry ${name} is compressed (method ${method}); torch.save stores entries uncompressed, so re-save the file with torch.save`);
    }
    if (compressedSize !== size) throw corrupt(file, `stored entry ${name} has compressed size ${compressedSize} ≠ size ${size}`);
    r.need(localOffset, 30, `local header of ${name}`);
    if (r.u32(localOffset) !== LOCAL_HEADER) throw corrupt(file, `entry ${name}: no local header at byte ${localOffset}`);
    const dataStart = localOffset + 30 + r.u16(localOffset + 26) + r.u16(localOffset + 28);
    r.need(dataStart, size, `entry ${name}`);
    const data = bytes.subarray(dataStart, dataStart + size);
    if (crc32(data) !== crc) throw corrupt(file, `entry ${name} fails its CRC-32 check (stored ${crc.toString(16)}, computed ${crc32(data).toString(16)})`);
    if (out.has(name)) throw corrupt(file, `entry ${name} appears twice`);
    out.set(name, data);
    at += 46 + nameLength + extraLength + commentLength;
  }
  return out;
}

/**
 * A zip archive of stored (uncompressed) entries in the given order, laid out
 * as torch's writer does: each entry's data aligned to 64 bytes by an "FB"
 * padding field in its local header, CRC-32 and sizes in the headers, a fixed
 * timestamp. Classic (32-bit) fields only: archives up to 4 GiB.
 */
export function writeStoredZip(entries: Iterable<[string, Uint8Array]>): Uint8Array<ArrayBuffer> {
  const encoder = new TextEncoder();
  const list = [...entries].map(([name, data]) => ({ name: encoder.encode(name), data, crc: crc32(data), offset: 0, padding: 0 }));
  let length = 0;
  for (const entry of list) {
    entry.offset = length;
    const headerEnd = length + 30 + entry.name.length;
    // The padding field needs 4 bytes of its own; pad to the next boundary past them.
    entry.padding = (DATA_ALIGNMENT - ((headerEnd + 4) % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
    length = headerEnd + 4 + entry.padding + entry.data.length;
  }
  const directoryOffset = length;
  for (const entry of list) length += 46 + entry.name.length;
  const directorySize = length - directoryOffset;
  length += 22;
  if (length > 0xffffffff || list.length > 0xffff) {
    throw new OmniError('BAD_INPUT', `writeStoredZip: ${list.length} entries, ${length} bytes; this writer makes classic zips (under 4 GiB, 65535 entries)`);
  }

  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  const common = (at: number, entry: (typeof list)[number]) => {
    view.setUint16(at, 0, true); // version needed: stored data needs no feature
    view.setUint16(at + 2, UTF8_NAME_FLAG, true);
    view.setUint16(at + 4, 0, true); // method: stored
    view.setUint16(at + 6, 0, true); // time 00:00
    view.setUint16(at + 8, DOS_DATE_1980, true);
    view.setUint32(at + 10, entry.crc, true);
    view.setUint32(at + 14, entry.data.length, true);
    view.setUint32(at + 18, entry.data.length, true);
    view.setUint16(at + 22, entry.name.length, true);
  };
  for (const entry of list) {
    const at = entry.offset;
    view.setUint32(at, LOCAL_HEADER, true);
    common(at + 4, entry);
    view.setUint16(at + 28, 4 + entry.padding, true);
    out.set(entry.name, at + 30);
    const extra = at + 30 + entry.name.length;
    view.setUint16(extra, PADDING_EXTRA_ID, true);
    view.setUint16(extra + 2, entry.padding, true);
    out.fill(0x5a, extra + 4, extra + 4 + entry.padding); // 'Z'
    out.set(entry.data, extra + 4 + entry.padding);
  }
  let at = directoryOffset;
  for (const entry of list) {
    view.setUint32(at, CENTRAL_HEADER, true);
    view.setUint16(at + 4, 0, true); // version made by
    common(at + 6, entry);
    // extra, comment, disk, internal and external attributes: all zero.
    view.setUint32(at + 42, entry.offset, true);
    out.set(entry.name, at + 46);
    at += 46 + entry.name.length;
  }
  view.setUint32(at, END_OF_CENTRAL_DIR, true);
  view.setUint16(at + 8, list.length, true);
  view.setUint16(at + 10, list.length, true);
  view.setUint32(at + 12, directorySize, true);
  view.setUint32(at + 16, directoryOffset, true);
  return out;
}
