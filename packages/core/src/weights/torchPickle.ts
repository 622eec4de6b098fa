/**
 * torch.save files (PyTorch ≥ 1.6 zip format) holding dicts of strings, ints
 * and float tensors: read without executing anything, and written the same way.
 *
 * Layout: a zip of stored entries under one top folder (`archive/` when saved
 * to a stream, the file's base name in some older versions):
 *   <top>/data.pkl    the object, pickled (protocol 2 by default); each tensor's
 *                     storage is a persistent id ('storage', torch.<Type>Storage, key, location, numel)
 *   <top>/byteorder   "little" (PyTorch ≥ 2.1)
 *   <top>/data/<key>  raw little-endian bytes of each storage
 *   <top>/version     the format version, "3\n"
 *
 * The unpickler is a small stack machine that knows only the opcodes the
 * pickler emits for such objects and only three callables (tensor rebuild,
 * empty OrderedDict, storage types), each interpreted here, never looked up:
 * any other global is refused, so a hostile file cannot run code.
 */
import { OmniError } from '../errors.js';
import { decodeFloat, encodeFloat, type FloatDtype } from './dtypes.js';
import { readStoredZip, writeStoredZip } from './zip.js';

/** A float tensor: `dtype` is its storage type in the file; values are widened to f32, C order. */
export interface TorchTensor {
  readonly kind: 'tensor';
  readonly dtype: FloatDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/** What a torch file read here can hold. Tuples are arrays; dicts are Maps in insertion order. */
export type TorchValue = null | boolean | number | string | TorchTensor | readonly TorchValue[] | ReadonlyMap<string | number, TorchValue>;

/** The storage classes a persistent id may name, and their element types. */
const STORAGE_TYPES: Record<string, FloatDtype> = { FloatStorage: 'F32', BFloat16Storage: 'BF16', HalfStorage: 'F16' };
const STORAGE_CLASS: Record<FloatDtype, string> = { F32: 'FloatStorage', BF16: 'BFloat16Storage', F16: 'HalfStorage' };
const ELEMENT_BYTES: Record<FloatDtype, number> = { F32: 4, BF16: 2, F16: 2 };

/** A global the unpickler accepts, named by `module.name`; nothing is imported or called. */
class Global {
  constructor(readonly qualifiedName: string) {}
}

/** A storage loaded from `data/<key>`, decoded to f32 once. */
class Storage {
  constructor(readonly key: string, readonly dtype: FloatDtype, readonly values: Float32Array) {}
}

const REBUILD_TENSOR = 'torch._utils._rebuild_tensor_v2';
const ORDERED_DICT = 'collections.OrderedDict';
const ALLOWED_GLOBALS = new Set([REBUILD_TENSOR, ORDERED_DICT, ...Object.keys(STORAGE_TYPES).map((t) => `torch.${t}`)]);

/** What the unpickler's stack holds: values, plus globals and storages that only calls and persistent ids consume. */
type Item = TorchValue | Global | Storage | readonly Item[];

const OP = {
  PROTO: 0x80, FRAME: 0x95, STOP: 0x2e, MARK: 0x28,
  EMPTY_DICT: 0x7d, EMPTY_TUPLE: 0x29, TUPLE: 0x74, TUPLE1: 0x85, TUPLE2: 0x86, TUPLE3: 0x87,
  SETITEM: 0x73, SETITEMS: 0x75,
  BINUNICODE: 0x58, SHORT_BINUNICODE: 0x8c, BININT: 0x4a, BININT1: 0x4b, BININT2: 0x4d, LONG1: 0x8a, BINFLOAT: 0x47,
  NONE: 0x4e, NEWTRUE: 0x88, NEWFALSE: 0x89,
  BINPUT: 0x71, LONG_BINPUT: 0x72, MEMOIZE: 0x94, BINGET: 0x68, LONG_BINGET: 0x6a,
  GLOBAL: 0x63, BINPERSID: 0x51, REDUCE: 0x52,
} as const;

function bad(file: string, what: string): OmniError {
  return new OmniError('BAD_HEADER', `${file}: ${what}`);
}

function describe(item: Item): string {
  if (item instanceof Global) return `global ${item.qualifiedName}`;
  if (item instanceof Storage) return `storage ${item.key}`;
  if (item instanceof Map) return 'a dict';
  if (Array.isArray(item)) return `a ${item.length}-tuple`;
  if (item !== null && typeof item === 'object') return 'a tensor';
  return JSON.stringify(item);
}

function isInt(v: Item | undefined): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v);
}

/** Throws unless `item` is a plain value all the way down (no global or storage left unconsumed). */
function plainValue(item: Item, file: string, what: string): TorchValue {
  if (item instanceof Global || item instanceof Storage) throw bad(file, `${what} is ${describe(item)}, which is not a value`);
  if (Array.isArray(item)) item.forEach((v, i) => plainValue(v, file, `${what}[${i}]`));
  return item as TorchValue;
}

/** Runs a pickle program; `loadStorage` resolves persistent ids. */
function unpickle(bytes: Uint8Array, file: string, loadStorage: (pid: readonly Item[]) => Storage): TorchValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const stack: Item[] = [];
  /** Stack heights at each open MARK. */
  const marks: number[] = [];
  const memo = new Map<number, Item>();
  let at = 0;

  const take = (length: number, what: string) => {
    if (at + length > bytes.length) throw new OmniError('TRUNCATED', `${file}: the pickle ends inside ${what} at byte ${at}; the file is truncated`);
    const start = at;
    at += length;
    return start;
  };
  const floor = () => (marks.length > 0 ? marks[marks.length - 1] : 0);
  const top = (): Item => {
    if (stack.length <= floor()) throw bad(file, `pickle stack underflow at byte ${at - 1}`);
    return stack[stack.length - 1];
  };
  const pop = (): Item => {
    top();
    return stack.pop()!;
  };
  const popMark = (): Item[] => {
    const mark = marks.pop();
    if (mark === undefined) throw bad(file, `pickle opcode at byte ${at - 1} needs a MARK and there is none`);
    return stack.splice(mark);
  };
  const setItems = (items: Item[]) => {
    const dict = top();
    if (!(dict instanceof Map)) throw bad(file, `SETITEM(S) on ${describe(dict)}, not a dict`);
    if (items.length % 2 !== 0) throw bad(file, 'SETITEMS with an odd number of keys and values');
    for (let i = 0; i < items.length; i += 2) {
      const key = items[i];
      if (typeof key !== 'string' && !isInt(key)) throw bad(file, `dict key ${describe(key)} is not a string or an integer`);
      (dict as Map<string | number, TorchValue>).set(key, plainValue(items[i + 1], file, `the value of key ${JSON.stringify(key)}`));
    }
  };
  const memoGet = (index: number): Item => {
    if (!memo.has(index)) throw bad(file, `pickle refers to memo entry ${index}, which was never stored`);
    return memo.get(index)!;
  };
  const text = (length: number) => {
    const start = take(length, 'a string');
    try {
      return utf8.decode(bytes.subarray(start, start + length));
    } catch {
      throw bad(file, `string at byte ${start} is not UTF-8`);
    }
  };

  for (;;) {
    const opcode = bytes[take(1, 'an opcode')];
    switch (opcode) {
      case OP.PROTO: {
        const protocol = bytes[take(1, 'PROTO')];
        if (protocol > 5) throw bad(file, `pickle protocol ${protocol} is newer than any Python writes`);
        break;
      }
      case OP.FRAME: take(8, 'FRAME'); break; // protocol 4 framing: only a length hint
      case OP.STOP:
        if (stack.length !== 1 || marks.length > 0) throw bad(file, `pickle stops with ${stack.length} values on the stack and ${marks.length} open marks, not 1 value`);
        return plainValue(stack[0], file, 'the pickled object');
      case OP.MARK: marks.push(stack.length); break;
      case OP.EMPTY_DICT: stack.push(new Map()); break;
      case OP.EMPTY_TUPLE: stack.push([]); break;
      case OP.TUPLE: stack.push(popMark()); break;
      case OP.TUPLE1: case OP.TUPLE2: case OP.TUPLE3:
        stack.push(Array.from({ length: opcode - OP.TUPLE1 + 1 }, pop).reverse());
        break;
      case OP.SETITEM: { const v = pop(); const k = pop(); setItems([k, v]); break; }
      case OP.SETITEMS: setItems(popMark()); break;
      case OP.BINUNICODE: stack.push(text(view.getUint32(take(4, 'BINUNICODE'), true))); break;
      case OP.SHORT_BINUNICODE: stack.push(text(bytes[take(1, 'SHORT_BINUNICODE')])); break;
      case OP.BININT: stack.push(view.getInt32(take(4, 'BININT'), true)); break;
      case OP.BININT1: stack.push(bytes[take(1, 'BININT1')]); break;
      case OP.BININT2: stack.push(view.getUint16(take(2, 'BININT2'), true)); break;
      case OP.LONG1: {
        const n = bytes[take(1, 'LONG1')];
        const start = take(n, 'LONG1');
        let v = 0n;
        for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[start + i]);
        if (n > 0 && bytes[start + n - 1] & 0x80) v -= 1n << BigInt(8 * n); // two's complement
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) throw bad(file, `integer ${v} is outside the range this reader holds exactly`);
        stack.push(Number(v));
        break;
      }
      case OP.BINFLOAT: stack.push(view.getFloat64(take(8, 'BINFLOAT'), false)); break;
      case OP.NONE: stack.push(null); break;
      case OP.NEWTRUE: stack.push(true); break;
      case OP.NEWFALSE: stack.push(false); break;
      case OP.BINPUT: memo.set(bytes[take(1, 'BINPUT')], top()); break;
      case OP.LONG_BINPUT: memo.set(view.getUint32(take(4, 'LONG_BINPUT'), true), top()); break;
      case OP.MEMOIZE: memo.set(memo.size, top()); break;
      case OP.BINGET: stack.push(memoGet(bytes[take(1, 'BINGET')])); break;
      case OP.LONG_BINGET: stack.push(memoGet(view.getUint32(take(4, 'LONG_BINGET'), true))); break;
      case OP.GLOBAL: {
        const lines: string[] = [];
        for (let k = 0; k < 2; k++) {
          const end = bytes.indexOf(0x0a, at);
          if (end < 0) throw new OmniError('TRUNCATED', `${file}: the pickle ends inside a GLOBAL at byte ${at}`);
          lines.push(latin1.decode(bytes.subarray(at, end)));
          at = end + 1;
        }
        const qualifiedName = `${lines[0]}.${lines[1]}`;
        if (!ALLOWED_GLOBALS.has(qualifiedName)) {
          throw bad(file, `refusing global ${qualifiedName}: only tensor storages, torch._utils._rebuild_tensor_v2 and collections.OrderedDict are accepted, and nothing is ever executed`);
        }
        stack.push(new Global(qualifiedName));
        break;
      }
      case OP.BINPERSID: {
        const pid = pop();
        if (!Array.isArray(pid)) throw bad(file, `persistent id is ${describe(pid)}, not a tuple`);
        stack.push(loadStorage(pid));
        break;
      }
      case OP.REDUCE: {
        const args = pop();
        const callable = pop();
        if (!(callable instanceof Global) || !Array.isArray(args)) throw bad(file, `REDUCE of ${describe(callable)} with ${describe(args)}`);
        stack.push(call(callable.qualifiedName, args, file));
        break;
      }
      default:
        throw bad(file, `pickle opcode 0x${opcode.toString(16).padStart(2, '0')} at byte ${at - 1} is not one torch.save emits for dicts of strings, ints and tensors`);
    }
  }
}

/** The only calls a pickle may make here: an empty OrderedDict, or a tensor view of a storage. */
function call(qualifiedName: string, args: readonly Item[], file: string): TorchValue {
  if (qualifiedName === ORDERED_DICT) {
    if (args.length !== 0) throw bad(file, 'collections.OrderedDict is called with arguments; only an empty one is accepted');
    return new Map();
  }
  if (qualifiedName !== REBUILD_TENSOR) throw bad(file, `${qualifiedName} is not callable`);
  // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  const [storage, offset, size, stride, requiresGrad, hooks, metadata] = args;
  const ints = (v: Item | undefined): v is number[] => Array.isArray(v) && v.every((d) => isInt(d) && d >= 0);
  const emptyMap = (v: Item | undefined) => v === undefined || v === null || (v instanceof Map && v.size === 0);
  if (!(storage instanceof Storage) || !isInt(offset) || offset < 0 || !ints(size) || !ints(stride) || size.length !== stride.length
    || typeof requiresGrad !== 'boolean' || !(hooks instanceof Map) || hooks.size > 0 || !emptyMap(metadata) || args.length > 7) {
    throw bad(file, `_rebuild_tensor_v2 called with (${args.map(describe).join(', ')}); expected (storage, offset, size, stride, requires_grad, {} [, {}])`);
  }
  const count = size.reduce((a, b) => a * b, 1);
  // The farthest element the view touches must lie inside its storage.
  const last = offset + size.reduce((sum, d, i) => sum + (d > 0 ? (d - 1) * stride[i] : 0), 0);
  if (count > 0 && last >= storage.values.length) {
    throw new OmniError('SHAPE_MISMATCH', `${file}: a tensor [${size.join(', ')}] with strides [${stride.join(', ')}] at offset ${offset} reads element ${last} of storage ${storage.key}, which has ${storage.values.length}`);
  }
  const data = new Float32Array(count);
  const index = new Array<number>(size.length).fill(0);
  for (let i = 0; i < count; i++) {
    let source = offset;
    for (let d = 0; d < size.length; d++) source += index[d] * stride[d];
    data[i] = storage.values[source];
    for (let d = size.length - 1; d >= 0; d--) {
      if (++index[d] < size[d]) break;
      index[d] = 0;
    }
  }
  return { kind: 'tensor', dtype: storage.dtype, shape: size, data };
}

/** The top folder every entry lives under, and the entries by their path below it. */
function archiveRecords(bytes: Uint8Array, file: string): Map<string, Uint8Array> {
  const entries = readStoredZip(bytes, file);
  const first = entries.keys().next().value;
  const top = first?.split('/')[0];
  if (top === undefined || first === top) throw bad(file, 'the zip has no top folder; torch.save puts every record under one');
  const records = new Map<string, Uint8Array>();
  for (const [name, data] of entries) {
    if (!name.startsWith(`${top}/`)) throw bad(file, `entry ${name} is outside the archive folder ${top}/`);
    records.set(name.slice(top.length + 1), data);
  }
  return records;
}

/** Reads a torch.save zip file of dicts, strings, numbers and float tensors (CPU storages). */
export function loadTorchFile(bytes: Uint8Array, file = 'torch file'): TorchValue {
  const records = archiveRecords(bytes, file);
  const pickle = records.get('data.pkl');
  if (!pickle) throw bad(file, 'no data.pkl record; this is not a torch.save zip file (legacy pre-1.6 files are not read)');
  const byteOrder = records.get('byteorder');
  if (byteOrder && new TextDecoder().decode(byteOrder) !== 'little') {
    throw new OmniError('UNSUPPORTED_DTYPE', `${file} was saved on a big-endian machine; re-save it on a little-endian one`);
  }
  const storages = new Map<string, Storage>();
  return unpickle(pickle, file, (pid) => {
    const [tag, type, key, location, numel] = pid;
    if (pid.length !== 5 || tag !== 'storage' || !(type instanceof Global) || typeof key !== 'string' || typeof location !== 'string' || !isInt(numel)) {
      throw bad(file, `persistent id (${pid.map((v) => describe(v)).join(', ')}) is not ('storage', type, key, location, numel)`);
    }
    const dtype = STORAGE_TYPES[type.qualifiedName.slice('torch.'.length)];
    if (!type.qualifiedName.startsWith('torch.') || !dtype) throw bad(file, `persistent id names ${type.qualifiedName}, not a storage type`);
    const known = storages.get(key);
    if (known) return known;
    const raw = records.get(`data/${key}`);
    if (!raw) throw bad(file, `storage ${key} is used but there is no data/${key} record`);
    if (raw.length !== numel * ELEMENT_BYTES[dtype]) {
      throw new OmniError('SHAPE_MISMATCH', `${file}: storage ${key} is ${numel} ${type.qualifiedName} elements (${numel * ELEMENT_BYTES[dtype]} bytes) but data/${key} holds ${raw.length} bytes`);
    }
    // decodeFloat views the bytes in place; a copy gives it an aligned buffer of its own.
    const storage = new Storage(key, dtype, decodeFloat(dtype, raw.slice(), `storage ${key}`).slice());
    storages.set(key, storage);
    return storage;
  });
}

/** Appends pickle opcodes the way CPython's protocol-2 pickler writes them (memo entries, smallest int opcodes). */
class Pickler {
  readonly parts: number[] = [];
  readonly #memo = new Map<string, number>();
  #memoCount = 0;
  readonly storages: { key: string; bytes: Uint8Array }[] = [];

  byte(...values: number[]): void { this.parts.push(...values); }

  #le(value: number, bytes: number): void {
    for (let i = 0; i < bytes; i++) this.parts.push(Math.floor(value / 2 ** (8 * i)) & 0xff);
  }

  /** BINPUT (LONG_BINPUT past 255) of the value just written. */
  memoize(key?: string): void {
    const index = this.#memoCount++;
    if (key !== undefined) this.#memo.set(key, index);
    if (index < 256) this.byte(OP.BINPUT, index);
    else { this.byte(OP.LONG_BINPUT); this.#le(index, 4); }
  }

  /** BINGET of a value memoized under `key`, if it was; true when written. */
  #fromMemo(key: string): boolean {
    const index = this.#memo.get(key);
    if (index === undefined) return false;
    if (index < 256) this.byte(OP.BINGET, index);
    else { this.byte(OP.LONG_BINGET); this.#le(index, 4); }
    return true;
  }

  int(value: number): void {
    if (value >= 0 && value <= 0xff) this.byte(OP.BININT1, value);
    else if (value >= 0 && value <= 0xffff) { this.byte(OP.BININT2); this.#le(value, 2); }
    else if (value >= -(2 ** 31) && value < 2 ** 31) { this.byte(OP.BININT); this.#le(value >>> 0, 4); }
    else throw new OmniError('BAD_INPUT', `torch file writer: integer ${value} is outside the 32-bit range it writes`);
  }

  string(value: string): void {
    if (this.#fromMemo(`s:${value}`)) return;
    const utf8 = new TextEncoder().encode(value);
    this.byte(OP.BINUNICODE);
    this.#le(utf8.length, 4);
    this.byte(...utf8);
    this.memoize(`s:${value}`);
  }

  global(module: string, name: string): void {
    if (this.#fromMemo(`g:${module}.${name}`)) return;
    this.byte(OP.GLOBAL, ...new TextEncoder().encode(`${module}\n${name}\n`));
    this.memoize(`g:${module}.${name}`);
  }

  /** A tuple of ints: TUPLE1-3 when short, else MARK … TUPLE; memoized like any tuple. */
  intTuple(values: readonly number[]): void {
    if (values.length === 0) { this.byte(OP.EMPTY_TUPLE); return; }
    if (values.length > 3) this.byte(OP.MARK);
    for (const v of values) this.int(v);
    this.byte(values.length > 3 ? OP.TUPLE : OP.TUPLE1 + values.length - 1);
    this.memoize();
  }

  /** `_rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())` over a fresh contiguous storage. */
  tensor(tensor: TorchTensor): void {
    const key = String(this.storages.length);
    this.storages.push({ key, bytes: encodeFloat(tensor.dtype, tensor.data) });
    this.global('torch._utils', '_rebuild_tensor_v2');
    this.byte(OP.MARK);
    // The persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel).
    this.byte(OP.MARK);
    this.string('storage');
    this.global('torch', STORAGE_CLASS[tensor.dtype]);
    this.string(key);
    this.string('cpu');
    this.int(tensor.data.length);
    this.byte(OP.TUPLE);
    this.memoize();
    this.byte(OP.BINPERSID);
    this.int(0);
    this.intTuple(tensor.shape);
    const strides = tensor.shape.map((_, i) => tensor.shape.slice(i + 1).reduce((a, b) => a * b, 1));
    this.intTuple(strides);
    this.byte(OP.NEWFALSE);
    this.global('collections', 'OrderedDict');
    this.byte(OP.EMPTY_TUPLE, OP.REDUCE);
    this.memoize();
    this.byte(OP.TUPLE);
    this.memoize();
    this.byte(OP.REDUCE);
    this.memoize();
  }

  value(value: TorchValue, path: string): void {
    if (value === null) this.byte(OP.NONE);
    else if (value === true || value === false) this.byte(value ? OP.NEWTRUE : OP.NEWFALSE);
    else if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new OmniError('BAD_INPUT', `torch file writer: ${path} is ${value}; only integers are written`);
      this.int(value);
    } else if (typeof value === 'string') this.string(value);
    else if (value instanceof Map) this.dict(value, path);
    else if (!Array.isArray(value) && (value as TorchTensor).kind === 'tensor') this.tensor(checkTensor(value as TorchTensor, path));
    else throw new OmniError('BAD_INPUT', `torch file writer: ${path} is not a string, integer, boolean, null, dict or tensor`);
  }

  /** EMPTY_DICT, then one SETITEM for a single entry or MARK … SETITEMS for more (batches of 1000, as CPython). */
  dict(dict: ReadonlyMap<string | number, TorchValue>, path: string): void {
    this.byte(OP.EMPTY_DICT);
    this.memoize();
    const entries = [...dict];
    for (let start = 0; start < entries.length; start += 1000) {
      const batch = entries.slice(start, start + 1000);
      if (batch.length > 1) this.byte(OP.MARK);
      for (const [key, item] of batch) {
        if (typeof key === 'string') this.string(key);
        else this.int(key);
        this.value(item, `${path}[${JSON.stringify(key)}]`);
      }
      this.byte(batch.length > 1 ? OP.SETITEMS : OP.SETITEM);
    }
  }
}

function checkTensor(tensor: TorchTensor, path: string): TorchTensor {
  const count = Array.isArray(tensor.shape) ? tensor.shape.reduce((a, b) => a * b, 1) : NaN;
  if (!(tensor.data instanceof Float32Array) || !Object.hasOwn(STORAGE_CLASS, tensor.dtype)) {
    throw new OmniError('BAD_INPUT', `torch file writer: tensor ${path} needs Float32Array data and dtype F32, BF16 or F16`);
  }
  if (!tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || count !== tensor.data.length) {
    throw new OmniError('SHAPE_MISMATCH', `torch file writer: tensor ${path} has shape ${JSON.stringify(tensor.shape)} but ${tensor.data.length} values`);
  }
  return tensor;
}

/**
 * Serializes a dict of strings, ints and float tensors as torch.save does:
 * protocol-2 pickle, records under `archive/` in torch's order (data.pkl,
 * byteorder, data/0…, version), entries stored and 64-byte aligned.
 */
export function saveTorchFile(value: ReadonlyMap<string | number, TorchValue>): Uint8Array<ArrayBuffer> {
  if (!(value instanceof Map)) throw new OmniError('BAD_INPUT', 'saveTorchFile takes a Map (the dict to save)');
  const pickler = new Pickler();
  pickler.byte(OP.PROTO, 2);
  pickler.dict(value, 'the dict');
  pickler.byte(OP.STOP);
  const text = new TextEncoder();
  return writeStoredZip([
    ['archive/data.pkl', Uint8Array.from(pickler.parts)],
    ['archive/byteorder', text.encode('little')],
    ...pickler.storages.map(({ key, bytes }): [string, Uint8Array] => [`archive/data/${key}`, bytes]),
    ['archive/version', text.encode('3\n')],
  ]);
}
