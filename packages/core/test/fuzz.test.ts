import { describe, expect, it } from 'vitest';
import { OmniError } from '../src/errors.js';
import { bytesSource, openSafetensors, type ByteSource } from '../src/weights/index.js';

/** mulberry32: a small seeded generator, so every corruption can be replayed from its case number. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Tensor = { dtype: string; shape: number[]; bytes: number };

/** Every readable dtype, matrices and vectors, and an empty tensor. */
const TENSORS: Record<string, Tensor> = {
  'w.f32': { dtype: 'F32', shape: [4, 6], bytes: 4 },
  'w.f16': { dtype: 'F16', shape: [3, 40], bytes: 2 },
  'w.bf16': { dtype: 'BF16', shape: [2, 3, 5], bytes: 2 },
  'ids.i64': { dtype: 'I64', shape: [7], bytes: 8 },
  'ids.i32': { dtype: 'I32', shape: [2, 2], bytes: 4 },
  'img.u8': { dtype: 'U8', shape: [3, 3], bytes: 1 },
  'empty.f32': { dtype: 'F32', shape: [0, 4], bytes: 4 },
};

function headerJson(): Record<string, any> {
  const header: Record<string, any> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const [name, t] of Object.entries(TENSORS)) {
    const length = t.shape.reduce((a, b) => a * b, 1) * t.bytes;
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + length] };
    offset += length;
  }
  return header;
}

function assemble(header: unknown, data: Uint8Array): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setUint32(0, json.length, true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

/** Small in-range values for every dtype, so the uncorrupted file reads cleanly. */
function validData(): Uint8Array {
  const header = headerJson();
  const end = Math.max(...Object.entries(header).filter(([k]) => k !== '__metadata__').map(([, v]) => v.data_offsets[1]));
  const data = new Uint8Array(end);
  const random = rng(1);
  for (const [name, t] of Object.entries(TENSORS)) {
    const [begin] = header[name].data_offsets;
    const n = t.shape.reduce((a, b) => a * b, 1);
    const view = new DataView(data.buffer, begin);
    for (let i = 0; i < n; i++) {
      const x = random() * 2 - 1;
      if (t.dtype === 'F32') view.setFloat32(4 * i, x, true);
      else if (t.dtype === 'F16') view.setUint16(2 * i, 0x3c00 | (i & 0x3ff), true);
      else if (t.dtype === 'BF16') view.setUint16(2 * i, new Uint32Array(Float32Array.of(x).buffer)[0] >>> 16, true);
      else if (t.dtype === 'I64') view.setBigInt64(8 * i, BigInt(151640 + i), true);
      else if (t.dtype === 'I32') view.setInt32(4 * i, i - 2, true);
      else view.setUint8(i, i * 20);
    }
  }
  return data;
}

const VALID_DATA = validData();
const VALID_FILE = assemble(headerJson(), VALID_DATA);
const HEADER_LENGTH = new DataView(VALID_FILE.buffer).getUint32(0, true);

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)];
}

function flipBits(file: Uint8Array, from: number, to: number, random: () => number): Uint8Array {
  const out = file.slice();
  const flips = 1 + Math.floor(random() * 4);
  for (let i = 0; i < flips; i++) {
    const at = from + Math.floor(random() * (to - from));
    out[at] ^= 1 << Math.floor(random() * 8);
  }
  return out;
}

const ODD_NUMBERS = [-1, 0, 1, 3, 2.5, 2 ** 31, 2 ** 53, 1e300, NaN];

/** Replaces one field of one tensor entry (or the metadata) with something plausible or absurd. */
function editJson(random: () => number): Uint8Array {
  const header = headerJson();
  const names = Object.keys(TENSORS);
  const entry = header[pick(random, names)];
  const field = pick(random, ['dtype', 'shape', 'data_offsets', 'delete', 'metadata', 'entry'] as const);
  switch (field) {
    case 'dtype':
      entry.dtype = pick(random, ['F32', 'F16', 'BF16', 'I64', 'I32', 'U8', 'F64', 'BOOL', 'I8', 'F8_E4M3', 'Q4_0', '', 7, null]);
      break;
    case 'shape': {
      const kind = pick(random, ['dim', 'append', 'drop', 'huge', 'notList'] as const);
      if (kind === 'dim' && entry.shape.length > 0) entry.shape[Math.floor(random() * entry.shape.length)] = pick(random, [...ODD_NUMBERS, 2, 6, '4']);
      else if (kind === 'append') entry.shape.push(pick(random, [0, 1, 2, 2 ** 40]));
      else if (kind === 'drop') entry.shape.pop();
      else if (kind === 'huge') entry.shape = [2 ** 30, 2 ** 30, 2 ** 30];
      else entry.shape = pick(random, [null, 5, 'x', {}]);
      break;
    }
    case 'data_offsets': {
      const kind = pick(random, ['swap', 'shift', 'set', 'notPair', 'overlap', 'copy'] as const);
      const [b, e] = entry.data_offsets;
      const other = header[pick(random, names)];
      if (kind === 'swap') entry.data_offsets = [e, b];
      else if (kind === 'overlap') {
        // Same length, moved to start inside another tensor's range.
        const start = other.data_offsets[0] + Math.floor(random() * (other.data_offsets[1] - other.data_offsets[0] + 1));
        entry.data_offsets = [start, start + e - b];
      } else if (kind === 'copy') entry.data_offsets = [...other.data_offsets];
      else if (kind === 'shift') {
        const d = pick(random, [-8, -1, 1, 4, 16, 1 << 20]);
        entry.data_offsets = [b + d, e + d];
      } else if (kind === 'set') entry.data_offsets[Math.floor(random() * 2)] = pick(random, [...ODD_NUMBERS, VALID_DATA.length, VALID_DATA.length + 1]);
      else entry.data_offsets = pick(random, [[b], [b, e, e], null, `${b}-${e}`]);
      break;
    }
    case 'delete':
      delete entry[pick(random, ['dtype', 'shape', 'data_offsets'])];
      break;
    case 'metadata':
      header.__metadata__ = pick(random, [null, 3, { a: 1 }, ['x'], { ok: 'yes' }]);
      break;
    case 'entry':
      header[pick(random, names)] = pick(random, [null, 1, 'F32', [], {}]);
      break;
  }
  return assemble(header, VALID_DATA);
}

function editHeaderLength(random: () => number): Uint8Array {
  const out = VALID_FILE.slice();
  const view = new DataView(out.buffer);
  const choice = pick(random, ['near', 'zero', 'eof', 'high', 'limit', 'random'] as const);
  if (choice === 'near') view.setUint32(0, HEADER_LENGTH + (random() < 0.5 ? -1 : 1) * (1 + Math.floor(random() * 8)), true);
  else if (choice === 'zero') view.setUint32(0, 0, true);
  else if (choice === 'eof') view.setUint32(0, out.length - 8 + Math.floor(random() * 3), true);
  else if (choice === 'high') view.setUint32(4, 1 + Math.floor(random() * 0xffff), true);
  else if (choice === 'limit') view.setUint32(0, 100 * 1024 * 1024 + 1, true);
  else view.setUint32(0, Math.floor(random() * 2 ** 32), true);
  return out;
}

const KINDS = ['headerBits', 'dataBits', 'truncate', 'headerLength', 'json'] as const;
type Kind = (typeof KINDS)[number];

function corrupt(kind: Kind, random: () => number): Uint8Array {
  switch (kind) {
    case 'headerBits': return flipBits(VALID_FILE, 8, 8 + HEADER_LENGTH, random);
    case 'dataBits': return flipBits(VALID_FILE, 8 + HEADER_LENGTH, VALID_FILE.length, random);
    case 'truncate': return VALID_FILE.slice(0, Math.floor(random() * VALID_FILE.length));
    case 'headerLength': return editHeaderLength(random);
    case 'json': return editJson(random);
  }
}

/** Wraps a source to record the largest single read, so an allocation past the file size would show. */
function meteredSource(bytes: Uint8Array): ByteSource & { largestRead: number } {
  const inner = bytesSource(bytes, 'fuzz.safetensors');
  const metered = {
    name: inner.name,
    size: inner.size,
    largestRead: 0,
    async read(offset: number, length: number) {
      metered.largestRead = Math.max(metered.largestRead, length);
      return inner.read(offset, length);
    },
    close: () => inner.close(),
  };
  return metered;
}

/** Opens the file and reads every tensor every way; returns where it stopped ('ok' or an error code). */
async function load(bytes: Uint8Array): Promise<{ open: string; read: string; largestRead: number; largestResult: number }> {
  const source = meteredSource(bytes);
  let largestResult = 0;
  let store;
  try {
    store = await openSafetensors(source);
  } catch (e) {
    if (!(e instanceof OmniError)) throw e;
    return { open: e.code, read: '-', largestRead: source.largestRead, largestResult };
  }
  let read = 'ok';
  for (const name of store.names()) {
    try {
      const array = await store.readArray(name);
      largestResult = Math.max(largestResult, array.data.byteLength);
      if (array.dtype === 'f32' && array.shape.length >= 2) {
        for (const format of ['f32', 'f16', 'q8', 'q4'] as const) {
          const m = await store.readMatrix(name, format);
          largestResult = Math.max(largestResult, m.data.byteLength + ('scales' in m ? m.scales.byteLength : 0));
        }
      }
    } catch (e) {
      if (!(e instanceof OmniError)) throw e;
      read = e.code;
    }
  }
  return { open: 'ok', read, largestRead: source.largestRead, largestResult };
}

describe('safetensors corruption fuzz', () => {
  it('the uncorrupted file loads and reads every tensor', async () => {
    const result = await load(VALID_FILE);
    expect(result).toMatchObject({ open: 'ok', read: 'ok' });
  });

  it('1500 seeded corruptions each end in an OmniError or a valid load, with bounded reads', async () => {
    const perKind = 300;
    const counts: Record<string, Record<string, number>> = {};
    const started = Date.now();
    for (const kind of KINDS) {
      counts[kind] = {};
      for (let i = 0; i < perKind; i++) {
        const seed = KINDS.indexOf(kind) * 100_000 + i;
        const bytes = corrupt(kind, rng(seed));
        let result;
        try {
          result = await load(bytes);
        } catch (e) {
          throw new Error(`case ${kind} seed ${seed}: non-OmniError ${(e as Error).stack}`);
        }
        // No read may ask for more than the file holds; no result may outgrow it beyond the
        // widest conversion (u8 → i32 is ×4; q8 pads a row to 32 columns, ×8 for a one-column f32).
        expect(result.largestRead, `${kind} seed ${seed}`).toBeLessThanOrEqual(bytes.length);
        expect(result.largestResult, `${kind} seed ${seed}`).toBeLessThanOrEqual(8 * bytes.length);
        // A header that validates must be readable; the only refusals left are values, not structure
        // (an I64 flipped out of int32 range, or a dtype the format defines but we do not read).
        if (result.open === 'ok') expect(['ok', 'UNSUPPORTED_DTYPE'], `${kind} seed ${seed}`).toContain(result.read);
        const outcome = result.open === 'ok' ? `ok/read:${result.read}` : result.open;
        counts[kind][outcome] = (counts[kind][outcome] ?? 0) + 1;
      }
    }
    console.log(`fuzz outcomes (${Date.now() - started} ms):\n${JSON.stringify(counts, null, 1)}`);

    // The corruptions must actually exercise the validators, not just flip bits nobody reads.
    const all: Record<string, number> = {};
    for (const byKind of Object.values(counts)) for (const [k, v] of Object.entries(byKind)) all[k] = (all[k] ?? 0) + v;
    for (const code of ['BAD_HEADER', 'TRUNCATED', 'BAD_OFFSETS', 'SHAPE_MISMATCH', 'UNSUPPORTED_DTYPE', 'ok/read:ok']) {
      expect(all[code] ?? 0, code).toBeGreaterThan(0);
    }
    // Flipping data bits never breaks the structure; only an I64 pushed out of int32 range is refused on read.
    expect(Object.keys(counts.dataBits).every((k) => k === 'ok/read:ok' || k === 'ok/read:UNSUPPORTED_DTYPE')).toBe(true);
    // Cutting the file short always loses at least the last tensor's bytes.
    expect(Object.keys(counts.truncate)).toEqual(['TRUNCATED']);
  });
});
