import { describe, expect, it } from 'vitest';
import { crc32 as zlibCrc32 } from 'node:zlib';
import { isOmniError } from '../src/errors.js';
import { readSpeakers, writeSpeakers, type HostArray, type Speaker } from '../src/weights/index.js';
import { crc32, readStoredZip } from '../src/weights/zip.js';

/*
 * How torch.save lays out a file (PyTorch ≥ 1.6 "zip" serialization), which the
 * hand-assembled bytes below reproduce:
 *
 * Container: a zip archive, every entry stored (method 0, no compression), all
 * under one top folder, `archive/` when torch writes through a file object.
 * torch's writer (miniz) gives each local header an extra field with id "FB"
 * (0x4246) filled with 'Z' bytes so that every entry's data starts on a
 * 64-byte boundary. Records, in the order written:
 *   archive/data.pkl      the pickled object
 *   archive/byteorder     "little" (PyTorch ≥ 2.1)
 *   archive/data/0, …/1   raw little-endian bytes of each tensor storage, keys "0", "1", … in first-use order
 *   archive/version       "3\n"
 *   archive/.data/serialization_id   (PyTorch ≥ 2.2) an id string; readers ignore it
 * Central directory and end record follow; with zip64 the classic end record's
 * fields are saturated (0xFFFF / 0xFFFFFFFF) and a zip64 end record plus its
 * locator precede it, and central entries carry the real sizes and offsets in
 * a zip64 extra field (id 0x0001). Version-needed, timestamps and attributes
 * vary between writers and mean nothing to a reader.
 *
 * data.pkl: pickle protocol 2 (torch.save's default), as CPython's pickler
 * writes it: every dict, string, tuple of 1+ items and global is stored in the
 * memo with BINPUT n, and met again it is fetched with BINGET n. A dict is
 * EMPTY_DICT, then `key value SETITEM` for one item or `MARK k v k v … SETITEMS`
 * for more. A tensor is the call
 *   torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, OrderedDict())
 * written GLOBAL, MARK, args…, TUPLE, REDUCE; its storage argument is the
 * persistent id tuple ('storage', torch.<Type>Storage, key, 'cpu', numel)
 * followed by BINPERSID, which the loader resolves to archive/data/<key>.
 */

const te = new TextEncoder();

/** Pickle opcodes by name (CPython Lib/pickle.py spells them the same). */
const PROTO = 0x80, EMPTY_DICT = 0x7d, BINPUT = 0x71, BINGET = 0x68, BINUNICODE = 0x58, MARK = 0x28, GLOBAL = 0x63,
  TUPLE = 0x74, TUPLE1 = 0x85, TUPLE3 = 0x87, BINPERSID = 0x51, BININT1 = 0x4b, BININT = 0x4a, NEWFALSE = 0x89,
  EMPTY_TUPLE = 0x29, REDUCE = 0x52, SETITEMS = 0x75, SETITEM = 0x73, STOP = 0x2e;

function u32(v: number): number[] { return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24]; }
function u16(v: number): number[] { return [v & 0xff, v >>> 8]; }
function str(s: string): number[] { return [BINUNICODE, ...u32(te.encode(s).length), ...te.encode(s)]; }
function global(module: string, name: string): number[] { return [GLOBAL, ...te.encode(`${module}\n${name}\n`)]; }

const COND = Float32Array.of(0.5, -1.25, 2, 0);
/** Exactly representable in bf16, so the decoded values must match bit for bit. */
const REF_MEL = Float32Array.of(-1.5, 0.25, 3, -4, 0.125, 10);

function bf16Bytes(values: Float32Array): Uint8Array {
  const bits = new Uint32Array(values.buffer.slice(0));
  return Uint8Array.from([...bits].flatMap((b) => u16(b >>> 16)));
}

/**
 * data.pkl of {"Chelsie": {"cond": <cond>, "ref_mel": <ref_mel [1, 2, 3]>, "bos_token": 151872}},
 * opcode by opcode. `put()` is BINPUT with the next memo index, in the order CPython assigns them.
 */
function chelsiePickle(refMelStorage: 'FloatStorage' | 'BFloat16Storage'): Uint8Array {
  let memo = 0;
  const put = () => [BINPUT, memo++];
  const floatStorage = 6; // memo index of the torch.FloatStorage global (see the memo comments)
  const bytes = [
    PROTO, 2,
    EMPTY_DICT, ...put(), //                                   the outer dict → memo 0
    ...str('Chelsie'), ...put(),
    EMPTY_DICT, ...put(), //                                   Chelsie's dict
    MARK, //                                                   three items follow: SETITEMS
    ...str('cond'), ...put(),
    ...global('torch._utils', '_rebuild_tensor_v2'), ...put(), // memo 4
    MARK, //                                                   the argument tuple
    MARK, //                                                   the persistent id tuple
    ...str('storage'), ...put(), //                            memo 5
    ...global('torch', 'FloatStorage'), ...put(), //           memo 6
    ...str('0'), ...put(), //                                  storage key → archive/data/0
    ...str('cpu'), ...put(), //                                memo 8
    BININT1, 4, //                                             numel
    TUPLE, ...put(),
    BINPERSID,
    BININT1, 0, //                                             storage_offset
    BININT1, 4, TUPLE1, ...put(), //                           size (4,)
    BININT1, 1, TUPLE1, ...put(), //                           stride (1,)
    NEWFALSE, //                                               requires_grad
    ...global('collections', 'OrderedDict'), ...put(), //      memo 12
    EMPTY_TUPLE, REDUCE, ...put(), //                          OrderedDict() (backward hooks)
    TUPLE, ...put(),
    REDUCE, ...put(), //                                       the cond tensor
    ...str('ref_mel'), ...put(),
    BINGET, 4, //                                              _rebuild_tensor_v2 again, from the memo
    MARK,
    MARK,
    BINGET, 5, //                                              'storage'
    // A global met before comes from the memo; a new one is written and memoized.
    ...(refMelStorage === 'FloatStorage' ? [BINGET, floatStorage] : [...global('torch', refMelStorage), ...put()]),
    ...str('1'), ...put(),
    BINGET, 8, //                                              'cpu'
    BININT1, 6,
    TUPLE, ...put(),
    BINPERSID,
    BININT1, 0,
    BININT1, 1, BININT1, 2, BININT1, 3, TUPLE3, ...put(), //  size (1, 2, 3)
    BININT1, 6, BININT1, 3, BININT1, 1, TUPLE3, ...put(), //  stride (6, 3, 1)
    NEWFALSE,
    BINGET, 12, EMPTY_TUPLE, REDUCE, ...put(),
    TUPLE, ...put(),
    REDUCE, ...put(),
    ...str('bos_token'), ...put(),
    BININT, ...u32(151872), //                                 > 0xffff, so BININT (4-byte signed)
    SETITEMS, //                                               closes Chelsie's dict
    SETITEM, //                                                the outer dict's only item
    STOP,
  ];
  return Uint8Array.from(bytes);
}

/**
 * A zip of stored entries laid out as torch's writer does (64-byte aligned
 * data via "FB" padding), built here independently of the code under test.
 * `zip64` adds the zip64 end records and per-entry zip64 extra fields.
 */
function torchZip(entries: [string, Uint8Array][], zip64 = false): Uint8Array {
  const out: number[] = [];
  const central: number[] = [];
  for (const [name, data] of entries) {
    const nameBytes = te.encode(name);
    const offset = out.length;
    const padding = (64 - ((offset + 30 + nameBytes.length + 4) % 64)) % 64;
    const crc = zlibCrc32(data);
    const fields = [...u16(0), ...u16(0), ...u16(0x21), ...u32(crc), ...u32(data.length), ...u32(data.length)]; // method, time, date, crc, sizes
    out.push(...u32(0x04034b50), ...u16(zip64 ? 45 : 20), ...u16(0), ...fields, ...u16(nameBytes.length), ...u16(4 + padding), ...nameBytes);
    out.push(...u16(0x4246), ...u16(padding), ...new Array<number>(padding).fill(0x5a), ...data);
    const zip64Extra = zip64 ? [...u16(1), ...u16(24), ...u32(data.length), 0, 0, 0, 0, ...u32(data.length), 0, 0, 0, 0, ...u32(offset), 0, 0, 0, 0] : [];
    const sizes = zip64 ? [...u32(0xffffffff), ...u32(0xffffffff)] : u32(data.length).concat(u32(data.length));
    central.push(...u32(0x02014b50), ...u16(0x031e), ...u16(zip64 ? 45 : 20), ...u16(0), ...u16(0), ...u16(0), ...u16(0x21), ...u32(crc), ...sizes,
      ...u16(nameBytes.length), ...u16(zip64Extra.length), ...u16(0), ...u16(0), ...u16(0), ...u32(0),
      ...u32(zip64 ? 0xffffffff : offset), ...nameBytes, ...zip64Extra);
  }
  const directoryOffset = out.length;
  out.push(...central);
  if (zip64) {
    const record = out.length;
    const u64 = (v: number) => [...u32(v), 0, 0, 0, 0];
    out.push(...u32(0x06064b50), ...u64(44), ...u16(45), ...u16(45), ...u32(0), ...u32(0),
      ...u64(entries.length), ...u64(entries.length), ...u64(central.length), ...u64(directoryOffset));
    out.push(...u32(0x07064b50), ...u32(0), ...u64(record), ...u32(1));
    out.push(...u32(0x06054b50), ...u16(0xffff), ...u16(0xffff), ...u16(0xffff), ...u16(0xffff), ...u32(0xffffffff), ...u32(0xffffffff), ...u16(0));
  } else {
    out.push(...u32(0x06054b50), ...u16(0), ...u16(0), ...u16(entries.length), ...u16(entries.length), ...u32(central.length), ...u32(directoryOffset), ...u16(0));
  }
  return Uint8Array.from(out);
}

function chelsieFile(options: { zip64?: boolean; pickle?: Uint8Array; refMelBf16?: boolean } = {}): Uint8Array {
  const refMelBf16 = options.refMelBf16 ?? true;
  return torchZip([
    ['archive/data.pkl', options.pickle ?? chelsiePickle(refMelBf16 ? 'BFloat16Storage' : 'FloatStorage')],
    ['archive/byteorder', te.encode('little')],
    ['archive/data/0', new Uint8Array(COND.buffer.slice(0))],
    ['archive/data/1', refMelBf16 ? bf16Bytes(REF_MEL) : new Uint8Array(REF_MEL.buffer.slice(0))],
    ['archive/version', te.encode('3\n')],
    ['archive/.data/serialization_id', te.encode('1234567890123456789012345678901234567890')],
  ], options.zip64);
}

function f32(shape: number[], data: Float32Array): HostArray {
  return { dtype: 'f32', shape, data };
}

function expectError(run: () => unknown, code: string, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (e) {
    caught = e;
  }
  expect(isOmniError(caught), String(caught)).toBe(true);
  expect(caught).toMatchObject({ code });
  expect((caught as Error).message).toMatch(message);
}

describe('readSpeakers on hand-assembled torch.save bytes', () => {
  for (const zip64 of [false, true]) {
    it(`reads cond (FloatStorage), ref_mel (BFloat16Storage) and bos_token${zip64 ? ' from a zip64 archive' : ''}`, () => {
      const speakers = readSpeakers(chelsieFile({ zip64 }));
      expect([...speakers.keys()]).toEqual(['Chelsie']);
      const chelsie = speakers.get('Chelsie')!;
      expect(chelsie.bosToken).toBe(151872);
      expect(chelsie.cond).toEqual(f32([4], COND));
      expect(chelsie.refMel).toEqual(f32([1, 2, 3], REF_MEL));
    });
  }

  it('takes an ArrayBuffer too', () => {
    const bytes = chelsieFile();
    expect(readSpeakers(bytes.buffer.slice(0) as ArrayBuffer).get('Chelsie')!.bosToken).toBe(151872);
  });

  it('writes data.pkl byte for byte as the hand-assembled pickle', () => {
    const written = writeSpeakers(new Map([['Chelsie', { cond: f32([4], COND), refMel: f32([1, 2, 3], REF_MEL), bosToken: 151872 }]]));
    const entries = readStoredZip(written);
    expect([...entries.keys()]).toEqual(['archive/data.pkl', 'archive/byteorder', 'archive/data/0', 'archive/data/1', 'archive/version']);
    expect([...entries.get('archive/data.pkl')!]).toEqual([...chelsiePickle('FloatStorage')]);
    expect(entries.get('archive/data/1')).toEqual(new Uint8Array(REF_MEL.buffer.slice(0)));
    // torch's alignment: every entry's data starts on a 64-byte boundary of the file.
    for (const data of entries.values()) expect(data.byteOffset % 64).toBe(0);
  });

  it('follows strides and storage offsets of views into a shared storage', () => {
    // Two tensors over one 6-element FloatStorage: cond = storage[1:4]; ref_mel = the [2, 3] storage transposed to [1, 3, 2].
    const storage = Float32Array.of(0, 1, 2, 3, 4, 5);
    const pickle = Uint8Array.from([
      PROTO, 2, EMPTY_DICT, BINPUT, 0, ...str('Ethan'), BINPUT, 1, EMPTY_DICT, BINPUT, 2, MARK,
      ...str('cond'), BINPUT, 3, ...global('torch._utils', '_rebuild_tensor_v2'), BINPUT, 4,
      MARK, MARK, ...str('storage'), BINPUT, 5, ...global('torch', 'FloatStorage'), BINPUT, 6, ...str('0'), BINPUT, 7, ...str('cpu'), BINPUT, 8,
      BININT1, 6, TUPLE, BINPUT, 9, BINPERSID,
      BININT1, 1, BININT1, 3, TUPLE1, BINPUT, 10, BININT1, 1, TUPLE1, BINPUT, 11, NEWFALSE,
      ...global('collections', 'OrderedDict'), BINPUT, 12, EMPTY_TUPLE, REDUCE, BINPUT, 13, TUPLE, BINPUT, 14, REDUCE, BINPUT, 15,
      ...str('ref_mel'), BINPUT, 16, BINGET, 4,
      MARK, BINGET, 9, BINPERSID, //                           the same persistent id tuple, fetched from the memo
      BININT1, 0, BININT1, 1, BININT1, 3, BININT1, 2, TUPLE3, BINPUT, 17, BININT1, 6, BININT1, 1, BININT1, 3, TUPLE3, BINPUT, 18, NEWFALSE,
      BINGET, 12, EMPTY_TUPLE, REDUCE, BINPUT, 19, TUPLE, BINPUT, 20, REDUCE, BINPUT, 21,
      ...str('bos_token'), BINPUT, 22, BININT, ...u32(151870), SETITEMS, SETITEM, STOP,
    ]);
    const file = torchZip([['archive/data.pkl', pickle], ['archive/data/0', new Uint8Array(storage.buffer)], ['archive/version', te.encode('3\n')]]);
    const ethan = readSpeakers(file).get('Ethan')!;
    expect(ethan.cond).toEqual(f32([3], Float32Array.of(1, 2, 3)));
    expect(ethan.refMel).toEqual(f32([1, 3, 2], Float32Array.of(0, 3, 1, 4, 2, 5)));
    expect(ethan.bosToken).toBe(151870);
  });

  it('accepts another top folder name, as older torch versions wrote (the file base name)', () => {
    const bytes = torchZip([
      ['spk_dict/data.pkl', chelsiePickle('FloatStorage')],
      ['spk_dict/data/0', new Uint8Array(COND.buffer.slice(0))],
      ['spk_dict/data/1', new Uint8Array(REF_MEL.buffer.slice(0))],
      ['spk_dict/version', te.encode('3\n')],
    ]);
    expect(readSpeakers(bytes).get('Chelsie')!.refMel.data).toEqual(REF_MEL);
  });
});

describe('writeSpeakers → readSpeakers', () => {
  function randomSpeaker(seed: number, bosToken: number): Speaker {
    let state = seed;
    const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 8 - 4;
    return {
      cond: f32([192], Float32Array.from({ length: 192 }, next)),
      refMel: f32([1, 300, 80], Float32Array.from({ length: 300 * 80 }, next)),
      bosToken,
    };
  }
  const speakers = new Map([['Chelsie', randomSpeaker(1, 151872)], ['Ethan', randomSpeaker(2, 151870)]]);

  it('round-trips F32 storages exactly, names and order kept', () => {
    const back = readSpeakers(writeSpeakers(speakers));
    expect([...back.keys()]).toEqual(['Chelsie', 'Ethan']);
    for (const [name, speaker] of speakers) expect(back.get(name)).toEqual(speaker);
  });

  for (const storage of ['BF16', 'F16'] as const) {
    it(`round-trips ${storage} storages to within that type's rounding`, () => {
      const back = readSpeakers(writeSpeakers(speakers, { storage }));
      // Round to nearest loses at most half a step: 2^-8 relative for bf16 (8 significant bits), 2^-11 for f16 (11).
      const bound = storage === 'BF16' ? 2 ** -8 : 2 ** -11;
      for (const [name, speaker] of speakers) {
        const got = back.get(name)!;
        expect(got.refMel.shape).toEqual([1, 300, 80]);
        expect(got.bosToken).toBe(speaker.bosToken);
        for (const [a, b] of [[speaker.cond.data, got.cond.data], [speaker.refMel.data, got.refMel.data]]) {
          let worst = 0;
          for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / Math.max(Math.abs(a[i]), 2 ** -14));
          expect(worst).toBeLessThanOrEqual(bound);
          expect(worst).toBeGreaterThan(0); // the values really went through the narrow type
        }
      }
    });
  }

  it('is deterministic: the same speakers give the same bytes', () => {
    expect(Buffer.from(writeSpeakers(speakers)).equals(writeSpeakers(new Map(speakers)))).toBe(true);
  });

  it('computes the zip CRC-32 as zlib does', () => {
    for (const bytes of [new Uint8Array(0), te.encode('hello'), writeSpeakers(speakers)]) expect(crc32(bytes)).toBe(zlibCrc32(bytes));
  });
});

describe('readSpeakers refuses what it cannot read safely', () => {
  /** The Chelsie pickle with one byte range replaced. */
  function patched(from: Uint8Array, to: Uint8Array): Uint8Array {
    const pickle = chelsiePickle('FloatStorage');
    const text = (b: Uint8Array) => Buffer.from(b).toString('latin1');
    const at = text(pickle).indexOf(text(from));
    expect(at).toBeGreaterThan(0);
    return Uint8Array.from([...pickle.subarray(0, at), ...to, ...pickle.subarray(at + from.length)]);
  }

  it('never runs an arbitrary global', () => {
    const evil = patched(Uint8Array.from(global('collections', 'OrderedDict')), Uint8Array.from(global('os', 'system')));
    expectError(() => readSpeakers(chelsieFile({ pickle: evil, refMelBf16: false })), 'BAD_HEADER', /refusing global os\.system/);
  });

  it('refuses storage types it does not decode', () => {
    const double = patched(Uint8Array.from(global('torch', 'FloatStorage')), Uint8Array.from(global('torch', 'DoubleStorage')));
    expectError(() => readSpeakers(chelsieFile({ pickle: double, refMelBf16: false })), 'BAD_HEADER', /refusing global torch\.DoubleStorage/);
  });

  it('refuses opcodes outside the subset torch.save emits', () => {
    // STACK_GLOBAL (0x93) is how protocol 4 names globals; this reader does not take it.
    const stackGlobal = patched(Uint8Array.from(global('collections', 'OrderedDict')), Uint8Array.from([...str('collections'), ...str('OrderedDict'), 0x93]));
    expectError(() => readSpeakers(chelsieFile({ pickle: stackGlobal, refMelBf16: false })), 'BAD_HEADER', /opcode 0x93/);
  });

  it('refuses a tensor that reads past its storage', () => {
    const wide = patched(Uint8Array.from([BININT1, 4, TUPLE1]), Uint8Array.from([BININT1, 5, TUPLE1]));
    expectError(() => readSpeakers(chelsieFile({ pickle: wide, refMelBf16: false })), 'SHAPE_MISMATCH', /reads element 4 of storage 0, which has 4/);
  });

  it('refuses a storage whose record has the wrong length', () => {
    const bytes = torchZip([['archive/data.pkl', chelsiePickle('FloatStorage')], ['archive/data/0', new Uint8Array(12)], ['archive/data/1', new Uint8Array(24)]]);
    expectError(() => readSpeakers(bytes), 'SHAPE_MISMATCH', /storage 0 is 4 torch\.FloatStorage elements \(16 bytes\) but data\/0 holds 12 bytes/);
  });

  it('refuses a missing storage record', () => {
    const bytes = torchZip([['archive/data.pkl', chelsiePickle('FloatStorage')], ['archive/data/0', new Uint8Array(COND.buffer.slice(0))]]);
    expectError(() => readSpeakers(bytes), 'BAD_HEADER', /no data\/1 record/);
  });

  it('refuses a truncated file, a broken CRC and a compressed entry', () => {
    const good = chelsieFile();
    expectError(() => readSpeakers(good.subarray(0, 10)), 'TRUNCATED', /truncated/);
    expectError(() => readSpeakers(good.subarray(0, good.length - 30)), 'BAD_HEADER', /no end-of-central-directory record/);
    const flipped = good.slice();
    flipped[64 + 10] ^= 1; // a byte inside data.pkl, the first entry's data
    expectError(() => readSpeakers(flipped), 'BAD_HEADER', /archive\/data\.pkl fails its CRC-32 check/);
    const deflated = good.slice();
    const directory = Buffer.from(deflated).indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
    deflated[directory + 10] = 8;
    expectError(() => readSpeakers(deflated), 'BAD_HEADER', /archive\/data\.pkl is compressed \(method 8\)/);
  });

  it('refuses a pickle cut short and a pickle that is not a speaker dict', () => {
    const cut = chelsiePickle('FloatStorage').subarray(0, 40);
    expectError(() => readSpeakers(chelsieFile({ pickle: cut, refMelBf16: false })), 'TRUNCATED', /the pickle ends inside/);
    const notSpeakers = Uint8Array.from([PROTO, 2, EMPTY_DICT, BINPUT, 0, ...str('Chelsie'), BINPUT, 1, BININT1, 7, SETITEM, STOP]);
    expectError(() => readSpeakers(chelsieFile({ pickle: notSpeakers })), 'BAD_HEADER', /speaker Chelsie is not a dict/);
  });

  it('rejects wrong arguments with BAD_INPUT', () => {
    expectError(() => readSpeakers('spk_dict.pt' as never), 'BAD_INPUT', /readSpeakers takes the bytes/);
    expectError(() => writeSpeakers(new Map()), 'BAD_INPUT', /non-empty Map/);
    const cond = f32([2], Float32Array.of(1, 2));
    expectError(() => writeSpeakers(new Map([['A', { cond, refMel: cond, bosToken: -1 }]])), 'BAD_INPUT', /bosToken -1/);
    expectError(() => writeSpeakers(new Map([['A', { cond, refMel: { dtype: 'i32', shape: [1], data: Int32Array.of(1) }, bosToken: 1 }]])), 'BAD_INPUT', /A\.refMel must be an f32 HostArray/);
    expectError(() => writeSpeakers(new Map([['A', { cond: f32([3], Float32Array.of(1, 2)), refMel: cond, bosToken: 1 }]])), 'SHAPE_MISMATCH', /shape \[3\] but 2 values/);
  });
});
