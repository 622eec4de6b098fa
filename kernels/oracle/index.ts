/**
 * The JS oracle: every op of `Backend` written the plain way, for tests and golden
 * checks of model code. Storage is f32 like the real backends; every sum, norm and
 * exponent is taken in f64 and each result element is rounded to f32 once, so the
 * oracle's own error is a half ulp of f32 and kernel errors show up undiluted.
 *
 * It checks arguments the way a device backend must (shapes, dtypes, ranges,
 * foreign or disposed tensors, outputs aliasing inputs) so model code that passes
 * here does not trip a device backend's validation later.
 */
import {
  OmniError, dequantize, f16ToF32, paddedCols,
  type AttentionMask, type AttentionOptions, type Backend, type BackendInfo, type Conv1dOptions,
  type ElementType, type HostMatrix, type KV8, type KV8Ops, type ResampleFilters, type RopeSpec, type Tensor, type UnaryFunction,
  type Weight, type WeightFormat,
} from '@omniweb/core';
import { erf } from './erf.js';

/** Storage shared by a tensor and its reshaped views. */
interface Storage {
  data: Float32Array | Int32Array;
  freed: boolean;
}

class OracleTensor implements Tensor {
  readonly backend = 'oracle' as const;
  readonly size: number;
  constructor(readonly shape: readonly number[], readonly dtype: ElementType, readonly storage: Storage) {
    this.size = storage.data.length;
  }
}

class OracleWeight implements Weight {
  readonly backend = 'oracle' as const;
  freed = false;
  constructor(
    readonly rows: number, readonly cols: number, readonly format: WeightFormat,
    readonly byteSize: number,
    /** Row-major [rows, cols] values exactly as the device would dequantize them. */
    readonly values: Float32Array,
  ) {}
}

/** An 8-bit KV cache layer: codes and scales per row and head, as the wasm kernels keep them (kernels/wasm/attention.c). */
class OracleKV8 implements KV8 {
  readonly backend = 'oracle' as const;
  freed = false;
  readonly byteSize: number;
  /** [rows, heads, headDim] codes in −127..127. */
  readonly keys: Int8Array;
  readonly values: Int8Array;
  /** [rows, heads]. */
  readonly keyScales: Float32Array;
  readonly valueScales: Float32Array;
  constructor(readonly rows: number, readonly heads: number, readonly headDim: number) {
    this.keys = new Int8Array(rows * heads * headDim);
    this.values = new Int8Array(rows * heads * headDim);
    this.keyScales = new Float32Array(rows * heads);
    this.valueScales = new Float32Array(rows * heads);
    this.byteSize = 2 * this.keys.length + 8 * rows * heads;
  }
}

/** Round half to even, as f32.nearest. */
function nearestEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * x → codes round(x · (127 / m)) (f32 arithmetic) with m = max|x|; returns the scale m / 127:
 * 0 for a zero vector, NaN (codes 0) when x holds Inf or NaN.
 */
function quantizeVector(x: ArrayLike<number>, codes: Int8Array): number {
  let m = 0;
  for (let d = 0; d < x.length; d++) m = Math.max(m, Math.abs(x[d]));
  codes.fill(0);
  if (!Number.isFinite(m)) return NaN;
  if (m === 0) return 0;
  const inv = Math.fround(127 / m);
  for (let d = 0; d < x.length; d++) codes[d] = nearestEven(Math.fround(x[d] * inv));
  return Math.fround(m / 127);
}

const INFO: BackendInfo = {
  kind: 'oracle',
  name: 'js oracle (f64 accumulation)',
  shaderF16: false,
  maxBufferBytes: 2 ** 31 - 1,
  threads: 1,
};

// ---------------------------------------------------------------- validation

function shapeText(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function checkShape(shape: readonly number[], what: string): number {
  if (!Array.isArray(shape) || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new OmniError('BAD_INPUT', `${what}: shape ${JSON.stringify(shape)} must be a non-empty list of positive integers`);
  }
  return shape.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function lastDim(t: Tensor): number {
  return t.shape[t.shape.length - 1];
}

function checkInteger(value: number, min: number, what: string): void {
  if (!Number.isInteger(value) || value < min) {
    throw new OmniError('BAD_INPUT', `${what} is ${value}; it must be an integer ≥ ${min}`);
  }
}

export function createOracleBackend(): Backend {
  const live = new Set<Storage>();
  const liveWeights = new Set<OracleWeight>();

  function allocate(shape: readonly number[], dtype: ElementType): OracleTensor {
    const size = checkShape(shape, 'tensor');
    // Fresh memory is poisoned (NaN / INT32_MIN): device memory from a pool or a wasm
    // heap holds garbage, so code that reads what it never wrote must fail here too.
    const data = dtype === 'f32' ? new Float32Array(size).fill(NaN) : new Int32Array(size).fill(-0x80000000);
    const storage: Storage = { data, freed: false };
    live.add(storage);
    return new OracleTensor([...shape], dtype, storage);
  }

  function own(t: Tensor | null | undefined, what: string, dtype: ElementType | null = 'f32'): OracleTensor {
    if (!(t instanceof OracleTensor)) {
      throw new OmniError('BAD_INPUT', `${what}: expected a tensor of the oracle backend, got ${t === null || t === undefined ? String(t) : (t as Tensor).backend}`);
    }
    if (t.storage.freed) throw new OmniError('BAD_INPUT', `${what}: tensor was disposed`);
    if (dtype !== null && t.dtype !== dtype) {
      throw new OmniError('WRONG_DTYPE', `${what}: expected ${dtype}, got ${t.dtype}`);
    }
    return t;
  }

  function ownWeight(w: Weight, what: string): OracleWeight {
    if (!(w instanceof OracleWeight)) throw new OmniError('BAD_INPUT', `${what}: expected a weight of the oracle backend, got ${w?.backend}`);
    if (w.freed) throw new OmniError('BAD_INPUT', `${what}: weight was disposed`);
    return w;
  }

  function f32(t: Tensor, what: string): Float32Array {
    return own(t, what).storage.data as Float32Array;
  }

  /** Ids from a host array or an i32 tensor, each checked to lie in [0, limit). */
  function indices(ids: Int32Array | Tensor, limit: number, what: string): Int32Array {
    const values = ids instanceof Int32Array ? ids : (own(ids, what, 'i32').storage.data as Int32Array);
    if (values.length === 0) throw new OmniError('BAD_INPUT', `${what}: no indices`);
    for (let i = 0; i < values.length; i++) {
      if (!(values[i] >= 0 && values[i] < limit)) {
        throw new OmniError('BAD_INPUT', `${what}[${i}] = ${values[i]} is outside [0, ${limit})`);
      }
    }
    return values;
  }

  /** linear's operands, checked; `out` must not share storage with `inputs`. */
  function linearOperands(op: string, x: Tensor, w: Weight, bias: Tensor | null | undefined, out: Tensor | undefined,
    inputs: readonly (Tensor | null | undefined)[]) {
    const xv = f32(x, `${op} x`);
    const wt = ownWeight(w, `${op} w`);
    const K = lastDim(x);
    if (K !== wt.cols) throw new OmniError('SHAPE_MISMATCH', `${op}: x ${shapeText(x.shape)} has ${K} features, the weight [${wt.rows}, ${wt.cols}] takes ${wt.cols}`);
    const bv = bias ? f32(bias, `${op} bias`) : null;
    if (bias && !(bias.shape.length === 1 && bias.size === wt.rows)) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: bias ${shapeText(bias.shape)} should be [${wt.rows}]`);
    }
    const o = result(op, [...x.shape.slice(0, -1), wt.rows], 'f32', out, inputs);
    return { xv, wt, bv, o, M: x.size / K, K, N: wt.rows };
  }

  function linearProduct({ xv, wt, bv, o, M, K, N }: ReturnType<typeof linearOperands>): Tensor {
    const values = new Float64Array(M * N);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = bv ? bv[n] : 0;
        for (let k = 0; k < K; k++) sum += xv[m * K + k] * wt.values[n * K + k];
        values[m * N + n] = sum;
      }
    }
    return store(o, values);
  }

  /**
   * The tensor an op writes: `out` checked against the result's shape and dtype, or a
   * new one. `out` may not share storage with an input (a WebGPU dispatch cannot bind
   * one buffer as read and read-write) unless the op allows it (`inPlace`).
   */
  function result(
    op: string, shape: readonly number[], dtype: ElementType, out: Tensor | undefined,
    inputs: readonly (Tensor | null | undefined)[], inPlace: readonly Tensor[] = [],
  ): OracleTensor {
    if (out === undefined) return allocate(shape, dtype);
    const o = own(out, `${op} out`, null);
    if (o.dtype !== dtype) throw new OmniError('WRONG_DTYPE', `${op} out: expected ${dtype}, got ${o.dtype}`);
    if (!sameShape(o.shape, shape)) {
      throw new OmniError('SHAPE_MISMATCH', `${op} out is ${shapeText(o.shape)}, the result is ${shapeText(shape)}`);
    }
    for (const input of inputs) {
      if (input instanceof OracleTensor && input.storage === o.storage && !inPlace.includes(input)) {
        throw new OmniError('BAD_INPUT', `${op}: out shares storage with an input; this op does not run in place`);
      }
    }
    return o;
  }

  /** Writes f64 values into an f32 result, rounding each once. */
  function store(target: OracleTensor, values: Float64Array): OracleTensor {
    target.storage.data.set(values);
    return target;
  }

  function rowsOf(t: OracleTensor): { rows: number; cols: number } {
    const cols = lastDim(t);
    return { rows: t.size / cols, cols };
  }

  /** The broadcast rule of add/mul: b has a's shape, or is one row of a's last dimension. */
  function elementwise(op: string, a: Tensor, b: Tensor, out: Tensor | undefined, f: (x: number, y: number) => number): Tensor {
    const av = f32(a, `${op} a`);
    const bv = f32(b, `${op} b`);
    const rowLength = lastDim(a);
    const broadcast = !sameShape(a.shape, b.shape);
    if (broadcast && !(b.size === rowLength && lastDim(b) === rowLength)) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: b ${shapeText(b.shape)} is neither a's shape ${shapeText(a.shape)} nor one row [${rowLength}]`);
    }
    const o = result(op, a.shape, 'f32', out, [a, b]);
    const values = new Float64Array(a.size);
    for (let i = 0; i < a.size; i++) values[i] = f(av[i], bv[broadcast ? i % rowLength : i]);
    return store(o, values);
  }

  function checkMask(mask: AttentionMask, queries: number, kvLength: number): (i: number, j: number) => boolean {
    switch (mask.kind) {
      case 'none':
        return () => true;
      case 'causal':
        checkInteger(mask.queryStart, 0, 'attention causal queryStart');
        if (mask.queryStart + queries > kvLength) {
          throw new OmniError('SHAPE_MISMATCH', `attention: causal queryStart ${mask.queryStart} + ${queries} queries exceeds kvLength ${kvLength}`);
        }
        return (i, j) => j <= mask.queryStart + i;
      case 'segments': {
        const b = mask.bounds;
        if (queries !== kvLength) {
          throw new OmniError('SHAPE_MISMATCH', `attention: segments need as many queries as keys, got ${queries} and ${kvLength}`);
        }
        if (!(b instanceof Int32Array) || b.length < 2 || b[0] !== 0 || b[b.length - 1] !== queries || b.some((x, s) => s > 0 && x < b[s - 1])) {
          throw new OmniError('BAD_INPUT', `attention: segment bounds must rise from 0 to ${queries}, got [${Array.from(b ?? []).join(', ')}]`);
        }
        const segmentOf = new Int32Array(queries);
        for (let s = 0; s + 1 < b.length; s++) segmentOf.fill(s, b[s], b[s + 1]);
        return (i, j) => segmentOf[i] === segmentOf[j];
      }
      case 'blockWindow':
        checkInteger(mask.blockSize, 1, 'attention blockWindow blockSize');
        checkInteger(mask.back, 0, 'attention blockWindow back');
        checkInteger(mask.ahead, 0, 'attention blockWindow ahead');
        return (i, j) => {
          const qb = Math.floor(i / mask.blockSize);
          const kb = Math.floor(j / mask.blockSize);
          return kb >= qb - mask.back && kb <= qb + mask.ahead;
        };
      default:
        throw new OmniError('BAD_INPUT', `attention: unknown mask kind ${(mask as { kind: unknown }).kind}`);
    }
  }

  function ownKV8(kv: KV8, what: string): OracleKV8 {
    if (!(kv instanceof OracleKV8)) throw new OmniError('BAD_INPUT', `${what}: expected an 8-bit KV cache layer of the oracle backend`);
    if (kv.freed) throw new OmniError('BAD_INPUT', `${what}: the 8-bit KV cache layer was disposed`);
    return kv;
  }

  /** k, v [n, heads, headDim] of kv's head shape at rows [row, row + n): returns n. */
  function kv8Rows(op: string, kv: OracleKV8, k: Tensor, v: Tensor, row: number): number {
    if (k.shape.length !== 3 || !sameShape(k.shape, v.shape) || k.shape[1] !== kv.heads || k.shape[2] !== kv.headDim) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: k ${shapeText(k.shape)} and v ${shapeText(v.shape)} must both be [n, ${kv.heads}, ${kv.headDim}]`);
    }
    checkInteger(row, 0, `${op} row`);
    if (row + k.shape[0] > kv.rows) throw new OmniError('BAD_INPUT', `${op}: rows [${row}, ${row + k.shape[0]}) run past the ${kv.rows} of the cache`);
    return k.shape[0];
  }

  const kv8: KV8Ops = {
    create(rows, heads, headDim) {
      checkInteger(rows, 1, 'kv8.create rows');
      checkInteger(heads, 1, 'kv8.create heads');
      checkInteger(headDim, 1, 'kv8.create headDim');
      return new OracleKV8(rows, heads, headDim);
    },

    write(k, v, dst, row) {
      const kv = ownKV8(dst, 'kv8.write');
      const kd = f32(k, 'kv8.write k');
      const vd = f32(v, 'kv8.write v');
      const n = kv8Rows('kv8.write', kv, k, v, row);
      const D = kv.headDim;
      for (let i = 0; i < n * kv.heads; i++) {
        const at = row * kv.heads + i;
        kv.keyScales[at] = quantizeVector(kd.subarray(i * D, (i + 1) * D), kv.keys.subarray(at * D, (at + 1) * D));
        kv.valueScales[at] = quantizeVector(vd.subarray(i * D, (i + 1) * D), kv.values.subarray(at * D, (at + 1) * D));
      }
    },

    read(src, row, k, v) {
      const kv = ownKV8(src, 'kv8.read');
      const ko = own(k, 'kv8.read k');
      const vo = own(v, 'kv8.read v');
      if (ko.storage === vo.storage) throw new OmniError('BAD_INPUT', 'kv8.read: k and v must not share storage');
      const n = kv8Rows('kv8.read', kv, k, v, row);
      const D = kv.headDim;
      for (let i = 0; i < n * kv.heads; i++) {
        const at = row * kv.heads + i;
        for (let d = 0; d < D; d++) {
          ko.storage.data[i * D + d] = Math.fround(kv.keys[at * D + d] * kv.keyScales[at]);
          vo.storage.data[i * D + d] = Math.fround(kv.values[at * D + d] * kv.valueScales[at]);
        }
      }
    },

    // The integer scheme of KV8Ops.attention, in f64 where the kernel rounds to f32.
    attention(q, cache, opts: AttentionOptions, out) {
      const kv = ownKV8(cache, 'kv8.attention');
      const qv = f32(q, 'kv8.attention q');
      if (q.shape.length !== 3 || q.shape[2] !== kv.headDim || q.shape[1] % kv.heads !== 0) {
        throw new OmniError('SHAPE_MISMATCH', `kv8.attention: q ${shapeText(q.shape)} should be [T, Hq, ${kv.headDim}] with Hq a multiple of ${kv.heads}`);
      }
      const [T, Hq, D] = q.shape;
      const kvLength = opts.kvLength ?? kv.rows;
      checkInteger(kvLength, 1, 'kv8.attention kvLength');
      if (kvLength > kv.rows) throw new OmniError('SHAPE_MISMATCH', `kv8.attention: kvLength ${kvLength} exceeds the ${kv.rows} rows of the cache`);
      const scale = opts.scale ?? 1 / Math.sqrt(D);
      const visible = checkMask(opts.mask, T, kvLength);
      const o = result('kv8.attention', q.shape, 'f32', out, [q]);
      const values = new Float64Array(q.size);
      const group = Hq / kv.heads;
      const qCodes = new Int8Array(D);
      const scores = new Float64Array(kvLength);
      const weights = new Float64Array(kvLength);
      for (let i = 0; i < T; i++) {
        for (let h = 0; h < Hq; h++) {
          const g = Math.floor(h / group);
          const base = (i * Hq + h) * D;
          const qScale = quantizeVector(qv.subarray(base, base + D), qCodes);
          let max = -Infinity;
          for (let j = 0; j < kvLength; j++) {
            scores[j] = -Infinity;
            if (!visible(i, j)) continue;
            const at = (j * kv.heads + g) * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += qCodes[d] * kv.keys[at + d];
            scores[j] = dot * qScale * scale * kv.keyScales[j * kv.heads + g];
            max = Math.max(max, scores[j]);
          }
          if (max === -Infinity) continue;
          let total = 0;
          for (let j = 0; j < kvLength; j++) {
            const e = scores[j] === -Infinity ? 0 : Math.exp(scores[j] - max);
            total += e;
            weights[j] = e * kv.valueScales[j * kv.heads + g];
          }
          for (let c = 0; c < kvLength; c += 128) {
            const end = Math.min(c + 128, kvLength);
            let top = 0;
            for (let j = c; j < end; j++) top = Math.max(top, weights[j]);
            if (!(top > 0)) {
              if (Number.isNaN(top) || weights.subarray(c, end).some(Number.isNaN)) values.fill(NaN, base, base + D);
              continue;
            }
            const step = top / 127;
            for (let j = c; j < end; j++) {
              const code = nearestEven(weights[j] * (127 / top));
              if (code === 0) continue;
              const at = (j * kv.heads + g) * D;
              for (let d = 0; d < D; d++) values[base + d] += step * code * kv.values[at + d];
            }
          }
          for (let d = 0; d < D; d++) values[base + d] /= total;
        }
      }
      return store(o, values);
    },

    dispose(cache) {
      if (!(cache instanceof OracleKV8)) throw new OmniError('BAD_INPUT', 'kv8.dispose: not an 8-bit KV cache layer of the oracle backend');
      cache.freed = true;
    },
  };

  const backend: Backend = {
    info: INFO,
    kv8,

    tensor(data, shape) {
      const size = checkShape(shape, 'tensor');
      if (!(data instanceof Float32Array || data instanceof Int32Array)) {
        throw new OmniError('WRONG_DTYPE', 'tensor: data must be a Float32Array or an Int32Array');
      }
      if (data.length !== size) {
        throw new OmniError('SHAPE_MISMATCH', `tensor: ${data.length} values for shape ${shapeText(shape)}`);
      }
      const t = allocate(shape, data instanceof Float32Array ? 'f32' : 'i32');
      t.storage.data.set(data);
      return t;
    },

    empty(shape, dtype = 'f32') {
      if (dtype !== 'f32' && dtype !== 'i32') throw new OmniError('WRONG_DTYPE', `empty: unknown dtype ${dtype}`);
      return allocate(shape, dtype);
    },

    weight(matrix: HostMatrix) {
      const { rows, cols, format } = matrix;
      checkInteger(rows, 1, 'weight rows');
      checkInteger(cols, 1, 'weight cols');
      const expect = (name: string, actual: number, wanted: number) => {
        if (actual !== wanted) {
          throw new OmniError('SHAPE_MISMATCH', `weight (${format} [${rows}, ${cols}]): ${name} holds ${actual} elements, expected ${wanted}`);
        }
      };
      switch (format) {
        case 'f32':
          if (!(matrix.data instanceof Float32Array)) throw new OmniError('WRONG_DTYPE', 'weight f32: data must be a Float32Array');
          expect('data', matrix.data.length, rows * cols);
          return track(new OracleWeight(rows, cols, format, rows * cols * 4, Float32Array.from(matrix.data)));
        case 'f16': {
          if (!(matrix.data instanceof Uint16Array)) throw new OmniError('WRONG_DTYPE', 'weight f16: data must be a Uint16Array of half bits');
          expect('data', matrix.data.length, rows * cols);
          const values = new Float32Array(rows * cols);
          for (let i = 0; i < values.length; i++) values[i] = f16ToF32(matrix.data[i]);
          return track(new OracleWeight(rows, cols, format, rows * cols * 2, values));
        }
        case 'q8':
        case 'q4': {
          expect('paddedCols', matrix.paddedCols, paddedCols(cols));
          if (!(matrix.data instanceof Uint8Array)) throw new OmniError('WRONG_DTYPE', `weight ${format}: data must be a Uint8Array`);
          if (!(matrix.scales instanceof Float32Array || matrix.scales instanceof Uint16Array)) {
            throw new OmniError('WRONG_DTYPE', `weight ${format}: scales must be a Float32Array or f16 bits in a Uint16Array`);
          }
          expect('data', matrix.data.length, format === 'q8' ? rows * matrix.paddedCols : (rows * matrix.paddedCols) / 2);
          expect('scales', matrix.scales.length, (rows * matrix.paddedCols) / 32);
          const bytes = matrix.data.byteLength + matrix.scales.byteLength;
          return track(new OracleWeight(rows, cols, format, bytes, dequantize(matrix)));
        }
        default:
          throw new OmniError('WRONG_DTYPE', `weight: unknown format ${(matrix as { format: unknown }).format}`);
      }
    },

    async read(t, range) {
      const o = own(t, 'read', null);
      if (range === undefined) return o.storage.data.slice();
      const { offset, count } = range;
      checkInteger(offset, 0, 'read offset');
      checkInteger(count, 0, 'read count');
      if (offset + count > o.size) {
        throw new OmniError('SHAPE_MISMATCH', `read: range [${offset}, ${offset + count}) exceeds the tensor's ${o.size} elements`);
      }
      return o.storage.data.slice(offset, offset + count);
    },

    async sync() {},

    dispose(t) {
      if (t instanceof OracleWeight) {
        t.freed = true;
        liveWeights.delete(t);
      } else if (t instanceof OracleTensor) {
        t.storage.freed = true;
        live.delete(t.storage);
      } else {
        throw new OmniError('BAD_INPUT', 'dispose: not a tensor or weight of the oracle backend');
      }
    },

    copy(src, dst, srcOffset, dstOffset, count) {
      const s = own(src, 'copy src', null);
      const d = own(dst, 'copy dst', s.dtype);
      checkInteger(srcOffset, 0, 'copy srcOffset');
      checkInteger(dstOffset, 0, 'copy dstOffset');
      checkInteger(count, 0, 'copy count');
      if (srcOffset + count > s.size || dstOffset + count > d.size) {
        throw new OmniError('SHAPE_MISMATCH', `copy: ${count} elements from ${srcOffset} (of ${s.size}) to ${dstOffset} (of ${d.size}) run past an end`);
      }
      // slice() first so that overlapping ranges of one storage copy like memmove.
      d.storage.data.set(s.storage.data.slice(srcOffset, srcOffset + count), dstOffset);
    },

    reshape(t, shape) {
      const o = own(t, 'reshape', null);
      const size = checkShape(shape, 'reshape');
      if (size !== o.size) throw new OmniError('SHAPE_MISMATCH', `reshape: ${shapeText(o.shape)} has ${o.size} elements, ${shapeText(shape)} has ${size}`);
      return new OracleTensor([...shape], o.dtype, o.storage);
    },

    destroy() {
      for (const s of live) s.freed = true;
      for (const w of liveWeights) w.freed = true;
      live.clear();
      liveWeights.clear();
    },

    linear(x, w, bias, out) {
      return linearProduct(linearOperands('linear', x, w, bias, out, [x, bias]));
    },

    linears(x, parts) {
      if (!Array.isArray(parts) || parts.length === 0) throw new OmniError('BAD_INPUT', 'linears: parts must be a non-empty array');
      parts.forEach((p, i) => {
        if (p === null || typeof p !== 'object' || !p.w || !p.out) throw new OmniError('BAD_INPUT', `linears: parts[${i}] needs a weight w and an out`);
      });
      const operands = parts.map((p) =>
        linearOperands('linears', x, p.w, p.bias, p.out, [x, ...parts.map((q) => q.bias), ...parts.filter((q) => q !== p).map((q) => q.out)]));
      return operands.map(linearProduct);
    },

    matmul(a, b, opts, out) {
      const av = f32(a, 'matmul a');
      const bv = f32(b, 'matmul b');
      if (a.shape.length !== 2 || b.shape.length !== 2) {
        throw new OmniError('SHAPE_MISMATCH', `matmul: a ${shapeText(a.shape)} and b ${shapeText(b.shape)} must both be 2-D`);
      }
      const transposeB = opts?.transposeB ?? false;
      const [M, K] = a.shape;
      const [bK, N] = transposeB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
      if (bK !== K) throw new OmniError('SHAPE_MISMATCH', `matmul: a ${shapeText(a.shape)} and b ${shapeText(b.shape)}${transposeB ? 'ᵀ' : ''} do not chain`);
      const o = result('matmul', [M, N], 'f32', out, [a, b]);
      const values = new Float64Array(M * N);
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let sum = 0;
          for (let k = 0; k < K; k++) sum += av[m * K + k] * (transposeB ? bv[n * K + k] : bv[k * N + n]);
          values[m * N + n] = sum;
        }
      }
      return store(o, values);
    },

    rmsnorm(x, w, eps, out) {
      const xv = f32(x, 'rmsnorm x');
      const wv = f32(w, 'rmsnorm w');
      const { rows, cols } = rowsOf(own(x, 'rmsnorm x'));
      if (w.size !== cols) throw new OmniError('SHAPE_MISMATCH', `rmsnorm: w ${shapeText(w.shape)} should be [${cols}]`);
      const o = result('rmsnorm', x.shape, 'f32', out, [x, w]);
      const values = new Float64Array(x.size);
      for (let r = 0; r < rows; r++) {
        let squares = 0;
        for (let c = 0; c < cols; c++) squares += xv[r * cols + c] ** 2;
        const inv = 1 / Math.sqrt(squares / cols + eps);
        for (let c = 0; c < cols; c++) values[r * cols + c] = xv[r * cols + c] * inv * wv[c];
      }
      return store(o, values);
    },

    layernorm(x, w, b, eps, out) {
      const xv = f32(x, 'layernorm x');
      const { rows, cols } = rowsOf(own(x, 'layernorm x'));
      const wv = w ? f32(w, 'layernorm w') : null;
      const bv = b ? f32(b, 'layernorm b') : null;
      for (const [name, t] of [['w', w], ['b', b]] as const) {
        if (t && t.size !== cols) throw new OmniError('SHAPE_MISMATCH', `layernorm: ${name} ${shapeText(t.shape)} should be [${cols}]`);
      }
      const o = result('layernorm', x.shape, 'f32', out, [x, w, b]);
      const values = new Float64Array(x.size);
      for (let r = 0; r < rows; r++) {
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += xv[r * cols + c];
        const mean = sum / cols;
        let variance = 0;
        for (let c = 0; c < cols; c++) variance += (xv[r * cols + c] - mean) ** 2;
        const inv = 1 / Math.sqrt(variance / cols + eps);
        for (let c = 0; c < cols; c++) {
          values[r * cols + c] = (xv[r * cols + c] - mean) * inv * (wv ? wv[c] : 1) + (bv ? bv[c] : 0);
        }
      }
      return store(o, values);
    },

    softmax(x, out) {
      const xv = f32(x, 'softmax x');
      const { rows, cols } = rowsOf(own(x, 'softmax x'));
      const o = result('softmax', x.shape, 'f32', out, [x]);
      const values = new Float64Array(x.size);
      for (let r = 0; r < rows; r++) {
        let max = -Infinity;
        for (let c = 0; c < cols; c++) max = Math.max(max, xv[r * cols + c]);
        let sum = 0;
        for (let c = 0; c < cols; c++) sum += values[r * cols + c] = Math.exp(xv[r * cols + c] - max);
        for (let c = 0; c < cols; c++) values[r * cols + c] /= sum;
      }
      return store(o, values);
    },

    argmax(x, out) {
      const xv = f32(x, 'argmax x');
      const { rows, cols } = rowsOf(own(x, 'argmax x'));
      const o = result('argmax', [rows], 'i32', out, [x]);
      const best = new Int32Array(rows);
      for (let r = 0; r < rows; r++) {
        for (let c = 1; c < cols; c++) if (xv[r * cols + c] > xv[r * cols + best[r]]) best[r] = c;
      }
      o.storage.data.set(best);
      return o;
    },

    siluMul(gate, up, out) {
      const gv = f32(gate, 'siluMul gate');
      const uv = f32(up, 'siluMul up');
      if (!sameShape(gate.shape, up.shape)) {
        throw new OmniError('SHAPE_MISMATCH', `siluMul: gate ${shapeText(gate.shape)} and up ${shapeText(up.shape)} differ`);
      }
      const o = result('siluMul', gate.shape, 'f32', out, [gate, up]);
      const values = new Float64Array(gate.size);
      for (let i = 0; i < values.length; i++) values[i] = (gv[i] / (1 + Math.exp(-gv[i]))) * uv[i];
      return store(o, values);
    },

    gelu(x, mode, out) {
      const xv = f32(x, 'gelu x');
      if (mode !== 'erf' && mode !== 'tanh') throw new OmniError('BAD_INPUT', `gelu: unknown mode ${mode}`);
      const o = result('gelu', x.shape, 'f32', out, [x]);
      const values = new Float64Array(x.size);
      const c = Math.sqrt(2 / Math.PI);
      for (let i = 0; i < values.length; i++) {
        const v = xv[i];
        values[i] = mode === 'erf'
          ? 0.5 * v * (1 + erf(v / Math.SQRT2))
          : 0.5 * v * (1 + Math.tanh(c * (v + 0.044715 * v * v * v)));
      }
      return store(o, values);
    },

    add(a, b, out) {
      return elementwise('add', a, b, out, (x, y) => x + y);
    },

    mul(a, b, out) {
      return elementwise('mul', a, b, out, (x, y) => x * y);
    },

    embedding(table, ids, out) {
      const wt = ownWeight(table, 'embedding table');
      const rowsIds = indices(ids, wt.rows, 'embedding ids');
      const D = wt.cols;
      const o = result('embedding', [rowsIds.length, D], 'f32', out, [ids instanceof Int32Array ? null : ids]);
      for (let t = 0; t < rowsIds.length; t++) o.storage.data.set(wt.values.subarray(rowsIds[t] * D, (rowsIds[t] + 1) * D), t * D);
      return o;
    },

    rotary(x, positions, rope: RopeSpec, out) {
      const xv = f32(x, 'rotary x');
      const pv = own(positions, 'rotary positions', 'i32').storage.data as Int32Array;
      if (x.shape.length !== 3) throw new OmniError('SHAPE_MISMATCH', `rotary: x ${shapeText(x.shape)} should be [T, heads, headDim]`);
      const [T, H, D] = x.shape;
      if (positions.shape.length !== 2 || positions.shape[1] !== T) {
        throw new OmniError('SHAPE_MISMATCH', `rotary: positions ${shapeText(positions.shape)} should be [streams, ${T}]`);
      }
      const streams = positions.shape[0];
      const half = rope.invFreq.length;
      if (rope.stream.length !== half) throw new OmniError('BAD_INPUT', `rotary: ${rope.stream.length} stream entries for ${half} frequencies`);
      if (half === 0 || 2 * half > D) throw new OmniError('SHAPE_MISMATCH', `rotary: rotaryDim ${2 * half} does not fit headDim ${D}`);
      if (rope.style !== 'half' && rope.style !== 'interleaved') throw new OmniError('BAD_INPUT', `rotary: unknown style ${rope.style}`);
      for (const s of rope.stream) {
        if (!(s >= 0 && s < streams)) throw new OmniError('BAD_INPUT', `rotary: stream ${s} but positions have ${streams} streams`);
      }
      const heads = rope.heads ?? H;
      if (!(Number.isInteger(heads) && heads >= 0 && heads <= H)) throw new OmniError('BAD_INPUT', `rotary: heads ${heads} outside [0, ${H}]`);
      const o = result('rotary', x.shape, 'f32', out, [x, positions], [x]);
      const values = Float64Array.from(xv);
      for (let t = 0; t < T; t++) {
        for (let j = 0; j < half; j++) {
          // The reference forms the angle as one f32 product (position · inv_freq in
          // torch float32); matching that rounding matters at positions in the thousands.
          const angle = Math.fround(pv[rope.stream[j] * T + t] * rope.invFreq[j]);
          const cos = Math.cos(angle);
          const sin = Math.sin(angle);
          const [d1, d2] = rope.style === 'half' ? [j, j + half] : [2 * j, 2 * j + 1];
          for (let h = 0; h < heads; h++) {
            const base = (t * H + h) * D;
            const x1 = xv[base + d1];
            const x2 = xv[base + d2];
            values[base + d1] = x1 * cos - x2 * sin;
            values[base + d2] = x2 * cos + x1 * sin;
          }
        }
      }
      return store(o, values);
    },

    attention(q, k, v, opts: AttentionOptions, out) {
      const qv = f32(q, 'attention q');
      const kv = f32(k, 'attention k');
      const vv = f32(v, 'attention v');
      if (q.shape.length !== 3 || k.shape.length !== 3 || !sameShape(k.shape, v.shape)) {
        throw new OmniError('SHAPE_MISMATCH', `attention: q ${shapeText(q.shape)}, k ${shapeText(k.shape)}, v ${shapeText(v.shape)} should be [T, Hq, D], [S, Hkv, D], [S, Hkv, D]`);
      }
      const [T, Hq, D] = q.shape;
      const [S, Hkv, kD] = k.shape;
      if (kD !== D || Hq % Hkv !== 0) {
        throw new OmniError('SHAPE_MISMATCH', `attention: q ${shapeText(q.shape)} and k ${shapeText(k.shape)} need equal headDim and Hq a multiple of Hkv`);
      }
      const kvLength = opts.kvLength ?? S;
      checkInteger(kvLength, 1, 'attention kvLength');
      if (kvLength > S) throw new OmniError('SHAPE_MISMATCH', `attention: kvLength ${kvLength} exceeds the ${S} rows of k/v`);
      const scale = opts.scale ?? 1 / Math.sqrt(D);
      const visible = checkMask(opts.mask, T, kvLength);
      const o = result('attention', q.shape, 'f32', out, [q, k, v]);
      const values = new Float64Array(q.size);
      const groupSize = Hq / Hkv;
      const scores = new Float64Array(kvLength);
      for (let i = 0; i < T; i++) {
        for (let h = 0; h < Hq; h++) {
          const kvHead = Math.floor(h / groupSize);
          const qBase = (i * Hq + h) * D;
          let max = -Infinity;
          for (let j = 0; j < kvLength; j++) {
            if (!visible(i, j)) { scores[j] = -Infinity; continue; }
            let dot = 0;
            for (let d = 0; d < D; d++) dot += qv[qBase + d] * kv[(j * Hkv + kvHead) * D + d];
            scores[j] = dot * scale;
            max = Math.max(max, scores[j]);
          }
          // A query that sees no key gets zeros rather than 0/0.
          if (max === -Infinity) continue;
          let sum = 0;
          for (let j = 0; j < kvLength; j++) sum += scores[j] = Math.exp(scores[j] - max);
          for (let j = 0; j < kvLength; j++) {
            if (scores[j] === 0) continue;
            const p = scores[j] / sum;
            for (let d = 0; d < D; d++) values[qBase + d] += p * vv[(j * Hkv + kvHead) * D + d];
          }
        }
      }
      return store(o, values);
    },

    conv1d(x, w, bias, opts: Conv1dOptions, out) {
      const xv = f32(x, 'conv1d x');
      const wt = ownWeight(w, 'conv1d w');
      const bv = bias ? f32(bias, 'conv1d bias') : null;
      const { kernel, stride = 1, padding = 0, dilation = 1, padMode = 'zeros' } = opts;
      checkInteger(kernel, 1, 'conv1d kernel');
      checkInteger(stride, 1, 'conv1d stride');
      checkInteger(padding, 0, 'conv1d padding');
      checkInteger(dilation, 1, 'conv1d dilation');
      if (padMode !== 'zeros' && padMode !== 'reflect') throw new OmniError('BAD_INPUT', `conv1d: unknown padMode ${padMode}`);
      if (x.shape.length !== 2) throw new OmniError('SHAPE_MISMATCH', `conv1d: x ${shapeText(x.shape)} should be [L, Cin]`);
      const [L, Cin] = x.shape;
      const Cout = wt.rows;
      if (wt.cols !== Cin * kernel) {
        throw new OmniError('SHAPE_MISMATCH', `conv1d: weight [${wt.rows}, ${wt.cols}] should be [Cout, ${Cin}·${kernel}]`);
      }
      if (bias && !(bias.shape.length === 1 && bias.size === Cout)) throw new OmniError('SHAPE_MISMATCH', `conv1d: bias ${shapeText(bias.shape)} should be [${Cout}]`);
      // torch's reflect padding mirrors without repeating the edge, so it needs padding < L.
      if (padMode === 'reflect' && padding >= L) throw new OmniError('BAD_INPUT', `conv1d: reflect padding ${padding} needs at least ${padding + 1} input rows, got ${L}`);
      const Lout = Math.floor((L + 2 * padding - dilation * (kernel - 1) - 1) / stride) + 1;
      if (Lout < 1) throw new OmniError('SHAPE_MISMATCH', `conv1d: ${L} rows are too few for kernel ${kernel}, dilation ${dilation}, padding ${padding}`);
      const o = result('conv1d', [Lout, Cout], 'f32', out, [x, bias]);
      const values = new Float64Array(Lout * Cout);
      for (let t = 0; t < Lout; t++) {
        for (let tap = 0; tap < kernel; tap++) {
          let src = t * stride + tap * dilation - padding;
          if (src < 0 || src >= L) {
            if (padMode === 'zeros') continue;
            src = src < 0 ? -src : 2 * (L - 1) - src;
          }
          for (let co = 0; co < Cout; co++) {
            let sum = 0;
            for (let ci = 0; ci < Cin; ci++) sum += xv[src * Cin + ci] * wt.values[co * Cin * kernel + ci * kernel + tap];
            values[t * Cout + co] += sum;
          }
        }
        if (bv) for (let co = 0; co < Cout; co++) values[t * Cout + co] += bv[co];
      }
      return store(o, values);
    },

    gatherRows(x, idx, out) {
      const xt = own(x, 'gatherRows x', null);
      const { rows, cols } = rowsOf(xt);
      const rowIds = indices(idx, rows, 'gatherRows idx');
      const o = result('gatherRows', [rowIds.length, cols], xt.dtype, out, [x, idx instanceof Int32Array ? null : idx]);
      for (let i = 0; i < rowIds.length; i++) o.storage.data.set(xt.storage.data.subarray(rowIds[i] * cols, (rowIds[i] + 1) * cols), i * cols);
      return o;
    },

    transpose(x, out) {
      const xt = own(x, 'transpose x', null);
      if (x.shape.length !== 2) throw new OmniError('SHAPE_MISMATCH', `transpose: x ${shapeText(x.shape)} should be 2-D`);
      const [M, N] = x.shape;
      const o = result('transpose', [N, M], xt.dtype, out, [x]);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) o.storage.data[n * M + m] = xt.storage.data[m * N + n];
      return o;
    },

    avgPoolRows(x, size, out) {
      const xv = f32(x, 'avgPoolRows x');
      checkInteger(size, 1, 'avgPoolRows size');
      if (x.shape.length !== 2) throw new OmniError('SHAPE_MISMATCH', `avgPoolRows: x ${shapeText(x.shape)} should be [L, C]`);
      const [L, C] = x.shape;
      const pooled = Math.floor(L / size);
      if (pooled < 1) throw new OmniError('SHAPE_MISMATCH', `avgPoolRows: ${L} rows hold no window of ${size}`);
      const o = result('avgPoolRows', [pooled, C], 'f32', out, [x]);
      const values = new Float64Array(pooled * C);
      for (let p = 0; p < pooled; p++) {
        for (let r = p * size; r < (p + 1) * size; r++) for (let c = 0; c < C; c++) values[p * C + c] += xv[r * C + c];
      }
      for (let i = 0; i < values.length; i++) values[i] /= size;
      return store(o, values);
    },

    unary(x, fn, out) {
      const xv = f32(x, 'unary x');
      const f = unaryMap(fn);
      const o = result('unary', x.shape, 'f32', out, [x]);
      const values = new Float64Array(x.size);
      for (let i = 0; i < values.length; i++) values[i] = f(xv[i]);
      return store(o, values);
    },

    snakeBeta(x, alphaLog, betaLog, filters: ResampleFilters, out) {
      const xv = f32(x, 'snakeBeta x');
      if (x.shape.length !== 2) throw new OmniError('SHAPE_MISMATCH', `snakeBeta: x ${shapeText(x.shape)} should be [L, C]`);
      const [L, C] = x.shape;
      const av = f32(alphaLog, 'snakeBeta alphaLog');
      const bv = f32(betaLog, 'snakeBeta betaLog');
      for (const [name, t] of [['alphaLog', alphaLog], ['betaLog', betaLog]] as const) {
        if (t.size !== C) throw new OmniError('SHAPE_MISMATCH', `snakeBeta: ${name} ${shapeText(t.shape)} should be [${C}]`);
      }
      if (filters === null || typeof filters !== 'object') throw new OmniError('BAD_INPUT', 'snakeBeta: filters { up, down } are required');
      const up = f32(filters.up, 'snakeBeta filters.up');
      const down = f32(filters.down, 'snakeBeta filters.down');
      const Ku = up.length;
      const Kd = down.length;
      if (filters.up.shape.length !== 1 || Ku % 2 !== 0 || Ku < 4) throw new OmniError('SHAPE_MISMATCH', `snakeBeta: filters.up ${shapeText(filters.up.shape)} should be one even length ≥ 4`);
      if (filters.down.shape.length !== 1 || Kd % 2 !== 0) throw new OmniError('SHAPE_MISMATCH', `snakeBeta: filters.down ${shapeText(filters.down.shape)} should be one even length`);
      const o = result('snakeBeta', x.shape, 'f32', out, [x, alphaLog, betaLog, filters.up, filters.down]);
      const crop = (3 * Ku) / 2 - 3;
      const padUp = Ku / 2 - 1;
      const padDown = Kd / 2 - 1;
      const clamp = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);
      const values = new Float64Array(L * C);
      const snake = new Float64Array(2 * L);
      for (let c = 0; c < C; c++) {
        const alpha = Math.exp(av[c]);
        const inverseBeta = 1 / (Math.exp(bv[c]) + 1e-9);
        for (let n = 0; n < 2 * L; n++) {
          let u = 0;
          for (let k = (n + crop) % 2; k < Ku; k += 2) u += up[k] * xv[clamp((n + crop - k) / 2 - padUp, L) * C + c];
          u *= 2;
          snake[n] = u + inverseBeta * Math.sin(u * alpha) ** 2;
        }
        for (let t = 0; t < L; t++) {
          let y = 0;
          for (let k = 0; k < Kd; k++) y += down[k] * snake[clamp(2 * t + k - padDown, 2 * L)];
          values[t * C + c] = y;
        }
      }
      return store(o, values);
    },
  };

  /** The scalar map of a `UnaryFunction`, its parameters checked. */
  function unaryMap(fn: UnaryFunction): (x: number) => number {
    const finite = (value: number, what: string) => {
      if (!Number.isFinite(value)) throw new OmniError('BAD_INPUT', `unary ${fn.kind}: ${what} is ${value}; it must be finite`);
    };
    switch (fn?.kind) {
      case 'relu': return (x) => Math.max(x, 0);
      case 'sigmoid': return (x) => 1 / (1 + Math.exp(-x));
      case 'tanh': return Math.tanh;
      case 'silu': return (x) => x / (1 + Math.exp(-x));
      case 'sqrt': return Math.sqrt;
      case 'clamp': {
        const { min, max } = fn;
        if (typeof min !== 'number' || typeof max !== 'number' || Number.isNaN(min) || Number.isNaN(max) || min > max) {
          throw new OmniError('BAD_INPUT', `unary clamp: bounds [${min}, ${max}] must be numbers with min ≤ max`);
        }
        return (x) => Math.min(Math.max(x, min), max);
      }
      case 'affine':
        finite(fn.scale, 'scale');
        finite(fn.shift, 'shift');
        return (x) => fn.scale * x + fn.shift;
      default:
        throw new OmniError('BAD_INPUT', `unary: unknown function ${JSON.stringify((fn as { kind?: unknown })?.kind)}`);
    }
  }

  function track(w: OracleWeight): OracleWeight {
    liveWeights.add(w);
    return w;
  }

  return backend;
}
