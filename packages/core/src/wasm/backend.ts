import type {
  AttentionOptions, Backend, BackendInfo, Conv1dOptions, ElementType, HostMatrix, KV8, KV8Ops, LinearPart, ResampleFilters, RopeSpec,
  Tensor, UnaryFunction, Weight, WeightFormat,
} from '../backend.js';
import { OmniError } from '../errors.js';
import { firstNonFiniteHalf, paddedCols } from '../quant.js';
import {
  checkDtype, checkFinite, checkHostIndices, checkInt, checkLinearParts, checkRank, checkShape, fmt, lastDim, linearShape, sameShape, shapeSize,
  unaryParams,
} from '../checks.js';
import type { KernelExports } from './module.js';
import type { QuantizedActivations } from './index.js';

/** Heap storage of a tensor; reshape views share it. */
interface Storage {
  readonly ptr: number;
  disposed: boolean;
}

export class WasmTensor implements Tensor {
  readonly backend = 'wasm' as const;
  readonly size: number;
  constructor(
    readonly owner: object,
    readonly storage: Storage,
    readonly shape: readonly number[],
    readonly dtype: ElementType,
  ) {
    this.size = shapeSize(shape);
  }
}

/** Weight format numbers of kernels/wasm/omni.h. */
const FORMAT_CODES: Record<WeightFormat, number> = { f32: 0, f16: 1, q8: 2, q4: 3 };

export class WasmWeight implements Weight {
  readonly backend = 'wasm' as const;
  disposed = false;
  constructor(
    readonly owner: object,
    readonly rows: number,
    readonly cols: number,
    readonly format: WeightFormat,
    readonly byteSize: number,
    /** The matrix; q8/q4 as row blocks with their group scales (kernels/wasm/linear.c). */
    readonly data: number,
    readonly scaleF16: boolean,
  ) {}
}

/** An 8-bit KV cache layer in the heap (kernels/wasm/attention.c, kv8_t). */
export class WasmKV8 implements KV8 {
  readonly backend = 'wasm' as const;
  disposed = false;
  constructor(
    readonly owner: object,
    readonly rows: number,
    readonly heads: number,
    readonly headDim: number,
    readonly byteSize: number,
    readonly ptr: number,
  ) {}
}

const MASK_CODES = { none: 0, causal: 1, segments: 2, blockWindow: 3 } as const;
/** 4-byte fields of one omni_linears part (linear.c's linear_part: weight_t, bias, y). */
const LINEAR_FIELDS = 7;
/** The wasm32 heap's ceiling: 4 GiB less one page; every tensor of one backend lives in it. */
export const WASM_HEAP_BYTES = 2 ** 32 - 65536;
/** One allocation must stay under 2 GiB: emscripten's sbrk takes a signed 32-bit increment. */
const ALLOCATION_LIMIT = 2 ** 31 - 2 ** 20;

interface HeapViews {
  buffer: ArrayBuffer | SharedArrayBuffer;
  u8: Uint8Array;
  i32: Int32Array;
  f32: Float32Array;
}

/**
 * The Backend over the emscripten SIMD kernels. Tensors live in the wasm heap; ops check
 * their arguments, then call one kernel export with heap pointers and return when it is
 * done (work is never queued, so `sync` has nothing to wait for).
 */
export class WasmBackendImpl implements Backend {
  readonly info: BackendInfo;
  private readonly kernels: KernelExports;
  private views: HeapViews | null = null;
  private alive = true;
  /** Reused heap space for small per-call host arrays (ids, rope tables, segment bounds). */
  private staging = { ptr: 0, bytes: 0 };
  /** linearsKernel's part fields, grown as needed. */
  private linearFields = new Int32Array(LINEAR_FIELDS * 4);
  readonly kv8: KV8Ops = {
    create: (rows, heads, headDim) => this.kv8Create(rows, heads, headDim),
    write: (k, v, dst, row) => this.kv8Write(k, v, dst, row),
    read: (src, row, k, v) => this.kv8Read(src, row, k, v),
    attention: (q, kv, opts, out) => this.kv8Attention(q, kv, opts, out),
    dispose: (kv) => this.kv8Dispose(kv),
  };

  constructor(kernels: KernelExports, threads: number, quantizedActivations: QuantizedActivations, relaxed: boolean, unsignedDotBytes: boolean) {
    this.kernels = kernels;
    const simd = relaxed ? `relaxed simd, ${unsignedDotBytes ? 'unsigned' : 'portable'} dot bytes` : 'simd128';
    const name = `wasm ${simd} (${threads} thread${threads === 1 ? '' : 's'}, ${quantizedActivations} q8/q4 GEMV activations)`;
    this.info = {
      kind: 'wasm', name, shaderF16: false, maxBufferBytes: ALLOCATION_LIMIT, threads, wasmSimd: relaxed ? 'relaxed' : 'baseline',
      ...(relaxed ? { wasmDotBytes: unsignedDotBytes ? 'unsigned' : 'portable' } as const : {}),
    };
  }

  // ---- memory

  tensor(data: Float32Array | Int32Array, shape: readonly number[]): Tensor {
    this.assertAlive();
    const dims = checkShape('tensor', shape);
    const dtype: ElementType | null = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : null;
    if (dtype === null) throw new OmniError('WRONG_DTYPE', 'tensor: data must be a Float32Array or an Int32Array');
    if (shapeSize(dims) !== data.length) {
      throw new OmniError('SHAPE_MISMATCH', `tensor: ${data.length} values do not fill shape ${fmt(dims)}`);
    }
    const ptr = this.allocate(data.length * 4, `a ${fmt(dims)} tensor`);
    const heap = this.heap();
    (dtype === 'f32' ? heap.f32 : heap.i32).set(data, ptr / 4);
    return new WasmTensor(this, { ptr, disposed: false }, [...dims], dtype);
  }

  empty(shape: readonly number[], dtype: ElementType = 'f32'): Tensor {
    this.assertAlive();
    const dims = checkShape('empty', shape);
    if (dtype !== 'f32' && dtype !== 'i32') throw new OmniError('WRONG_DTYPE', `empty: dtype must be f32 or i32, got ${String(dtype)}`);
    const size = shapeSize(dims);
    const ptr = this.allocate(size * 4, `a ${fmt(dims)} tensor`);
    // Zero-filled like a fresh WebGPU buffer, so both backends agree on never-written elements.
    this.heap().u8.fill(0, ptr, ptr + size * 4);
    return new WasmTensor(this, { ptr, disposed: false }, [...dims], dtype);
  }

  weight(matrix: HostMatrix): Weight {
    this.assertAlive();
    if (matrix === null || typeof matrix !== 'object') throw new OmniError('BAD_INPUT', 'weight: expected a host matrix');
    const { format } = matrix;
    if (!(format in FORMAT_CODES)) throw new OmniError('WRONG_DTYPE', `weight: format must be f32, f16, q8 or q4, got ${String(format)}`);
    const rows = checkInt('weight', 'rows', matrix.rows, 1);
    const cols = checkInt('weight', 'cols', matrix.cols, 1);
    const expect = (name: string, actual: number, wanted: number) => {
      if (actual !== wanted) {
        throw new OmniError('SHAPE_MISMATCH', `weight (${format} [${rows}, ${cols}]): ${name} holds ${actual} elements, expected ${wanted}`);
      }
    };
    const what = `a ${format} [${rows}, ${cols}] weight`;
    if (matrix.format === 'f32' || matrix.format === 'f16') {
      const wanted = matrix.format === 'f32' ? Float32Array : Uint16Array;
      if (!(matrix.data instanceof wanted)) {
        throw new OmniError('WRONG_DTYPE', `weight ${format}: data must be a ${matrix.format === 'f32' ? 'Float32Array' : 'Uint16Array of half bits'}`);
      }
      expect('data', matrix.data.length, rows * cols);
      if (matrix.format === 'f16') {
        refuseNonFiniteHalves(matrix.data, cols, (r, c) => `weight f16 [${rows}, ${cols}]: element [${r}, ${c}] is Inf or NaN; store this matrix as f32`);
      }
      const bytes = matrix.data.byteLength;
      const ptr = this.allocate(bytes, what);
      this.heap().u8.set(new Uint8Array(matrix.data.buffer, matrix.data.byteOffset, bytes), ptr);
      return new WasmWeight(this, rows, cols, format, bytes, ptr, false);
    }
    expect('paddedCols', matrix.paddedCols, paddedCols(cols));
    if (!(matrix.data instanceof Uint8Array)) throw new OmniError('WRONG_DTYPE', `weight ${format}: data must be a Uint8Array`);
    const { scales } = matrix;
    if (!(scales instanceof Float32Array || scales instanceof Uint16Array)) {
      throw new OmniError('WRONG_DTYPE', `weight ${format}: scales must be a Float32Array or f16 bits in a Uint16Array`);
    }
    const pc = matrix.paddedCols;
    expect('data', matrix.data.length, format === 'q8' ? rows * pc : (rows * pc) / 2);
    expect('scales', scales.length, (rows * pc) / 32);
    if (scales instanceof Uint16Array) {
      refuseNonFiniteHalves(scales, pc / 32, (r, g) =>
        `weight ${format} [${rows}, ${cols}]: the f16 scale of row ${r}, group ${g} is Inf or NaN; quantize this matrix with f32 scales`);
    }
    // The kernels read 4-row blocks, each group's scales beside its data (kernels/wasm/linear.c):
    // the rows, padded to a multiple of 4 with zero scales, go in after room for the scales,
    // and the repack interleaves them in place from a copy of the scales that it then frees.
    const paddedRows = Math.ceil(rows / 4) * 4;
    const dataBytes = (matrix.data.byteLength / rows) * paddedRows;
    const scaleBytes = (scales.byteLength / rows) * paddedRows;
    const weight = this.allocate(dataBytes + scaleBytes, what);
    let scalesPtr: number;
    try {
      scalesPtr = this.allocate(scaleBytes, `the scales of ${what}`);
    } catch (e) {
      this.kernels._omni_free(weight);
      throw e;
    }
    const heap = this.heap();
    heap.u8.set(matrix.data, weight + scaleBytes);
    heap.u8.fill(0, weight + scaleBytes + matrix.data.byteLength, weight + scaleBytes + dataBytes);
    heap.u8.set(new Uint8Array(scales.buffer, scales.byteOffset, scales.byteLength), scalesPtr);
    heap.u8.fill(0, scalesPtr + scales.byteLength, scalesPtr + scaleBytes);
    const scaleF16 = scales instanceof Uint16Array;
    const status = this.kernels._omni_block_quantized(weight, scalesPtr, rows, cols, FORMAT_CODES[format], Number(scaleF16));
    this.kernels._omni_free(scalesPtr);
    if (status !== 0) {
      this.kernels._omni_free(weight);
      throw new OmniError('OUT_OF_MEMORY', `weight: no wasm memory left to repack ${what}`);
    }
    return new WasmWeight(this, rows, cols, format, dataBytes + scaleBytes, weight, scaleF16);
  }

  async read(t: Tensor, range?: { offset: number; count: number }): Promise<Float32Array | Int32Array> {
    const src = this.own('read', 't', t);
    const offset = range ? checkInt('read', 'range.offset', range.offset, 0, src.size) : 0;
    const count = range ? checkInt('read', 'range.count', range.count, 0, src.size - offset) : src.size;
    const heap = this.heap();
    const start = src.storage.ptr / 4 + offset;
    // slice() copies out of the heap (into an unshared buffer for the pthread build).
    return (src.dtype === 'f32' ? heap.f32 : heap.i32).slice(start, start + count);
  }

  async sync(): Promise<void> {
    this.assertAlive();
  }

  dispose(t: Tensor | Weight): void {
    if (t instanceof WasmTensor && t.owner === this) {
      if (t.storage.disposed) return;
      t.storage.disposed = true;
      if (this.alive) this.kernels._omni_free(t.storage.ptr);
    } else if (t instanceof WasmWeight && t.owner === this) {
      if (t.disposed) return;
      t.disposed = true;
      if (!this.alive) return;
      this.kernels._omni_free(t.data);
    } else {
      throw new OmniError('BAD_INPUT', 'dispose: not a tensor or weight of this wasm backend');
    }
  }

  copy(src: Tensor, dst: Tensor, srcOffset: number, dstOffset: number, count: number): void {
    const s = this.own('copy', 'src', src);
    const d = this.own('copy', 'dst', dst);
    if (s.dtype !== d.dtype) throw new OmniError('WRONG_DTYPE', `copy: src is ${s.dtype}, dst is ${d.dtype}`);
    checkInt('copy', 'count', count, 0);
    checkInt('copy', 'srcOffset', srcOffset, 0, s.size - count);
    checkInt('copy', 'dstOffset', dstOffset, 0, d.size - count);
    // copyWithin moves like memmove, so overlapping ranges of one storage are fine.
    const from = s.storage.ptr + srcOffset * 4;
    this.heap().u8.copyWithin(d.storage.ptr + dstOffset * 4, from, from + count * 4);
  }

  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const x = this.own('reshape', 't', t);
    const dims = checkShape('reshape', shape);
    if (shapeSize(dims) !== x.size) {
      throw new OmniError('SHAPE_MISMATCH', `reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(dims)}`);
    }
    return new WasmTensor(this, x.storage, [...dims], x.dtype);
  }

  destroy(): void {
    if (!this.alive) return;
    this.alive = false;
    this.kernels._omni_pool_stop();
    this.kernels.terminateWorkers?.();
    this.views = null;
  }

  // ---- linear algebra

  linear(x: Tensor, w: Weight, bias?: Tensor | null, out?: Tensor): Tensor {
    const op = 'linear';
    const input = this.f32(op, 'x', x);
    const part = this.linearPart(op, input, w, bias, out, [input]);
    return this.run(op, part.y, out, () => this.linearsKernel(input, [part]));
  }

  linears(x: Tensor, parts: readonly LinearPart[]): Tensor[] {
    const op = 'linears';
    const others = checkLinearParts(op, x, parts);
    const input = this.f32(op, 'x', x);
    const resolved = parts.map((p, i) => this.linearPart(op, input, p.w, p.bias, p.out, others[i].map((t) => t && this.own(op, 'an input', t))));
    this.run(op, resolved[0].y, resolved[0].y, () => this.linearsKernel(input, resolved));
    return resolved.map((p) => p.y);
  }

  /** One weight's operands of linear(s), checked; `out` must not share storage with `inputs`. */
  private linearPart(op: string, input: WasmTensor, w: Weight, bias: Tensor | null | undefined, out: Tensor | undefined,
    inputs: readonly (WasmTensor | null)[]): { weight: WasmWeight; b: WasmTensor | null; y: WasmTensor } {
    const weight = this.ownWeight(op, w);
    const b = bias ? this.f32(op, 'bias', bias) : null;
    const y = this.output(op, out, linearShape(op, input, weight, b), 'f32', [...inputs, b]);
    return { weight, b, y };
  }

  /**
   * omni_linears over checked parts, each passed as its weight_t, bias and output (LINEAR_FIELDS 4-byte
   * fields, in a host array kept between calls: decode runs this ~170 times a token); the kernel's status.
   */
  private linearsKernel(input: WasmTensor, parts: readonly { weight: WasmWeight; b: WasmTensor | null; y: WasmTensor }[]): number {
    if (this.linearFields.length < LINEAR_FIELDS * parts.length) this.linearFields = new Int32Array(LINEAR_FIELDS * parts.length);
    const f = this.linearFields;
    parts.forEach(({ weight, b, y }, i) => {
      const at = LINEAR_FIELDS * i;
      f[at] = weight.data;
      f[at + 1] = weight.rows;
      f[at + 2] = weight.cols;
      f[at + 3] = FORMAT_CODES[weight.format];
      f[at + 4] = Number(weight.scaleF16);
      f[at + 5] = b?.storage.ptr ?? 0;
      f[at + 6] = y.storage.ptr;
    });
    return this.kernels._omni_linears(input.storage.ptr, input.size / parts[0].weight.cols, this.stage(f.subarray(0, LINEAR_FIELDS * parts.length)), parts.length);
  }

  matmul(a: Tensor, b: Tensor, opts?: { transposeB?: boolean }, out?: Tensor): Tensor {
    const op = 'matmul';
    const left = this.f32(op, 'a', a);
    const right = this.f32(op, 'b', b);
    const transposeB = opts?.transposeB === true;
    checkRank(op, 'a', left, 2, '[M, K]');
    checkRank(op, 'b', right, 2, transposeB ? '[N, K]' : '[K, N]');
    const [M, K] = left.shape;
    const [N, KB] = transposeB ? right.shape : [right.shape[1], right.shape[0]];
    if (KB !== K) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: a ${fmt(left.shape)} and b ${fmt(right.shape)}${transposeB ? 'ᵀ' : ''} do not chain`);
    }
    const y = this.output(op, out, [M, N], 'f32', [left, right]);
    return this.run(op, y, out, () => this.kernels._omni_matmul(left.storage.ptr, right.storage.ptr, M, K, N, Number(transposeB), y.storage.ptr));
  }

  // ---- row ops

  rmsnorm(x: Tensor, w: Tensor, eps: number, out?: Tensor): Tensor {
    const op = 'rmsnorm';
    const input = this.f32(op, 'x', x);
    const weight = this.f32(op, 'w', w);
    const cols = lastDim(input);
    if (weight.size !== cols) throw new OmniError('SHAPE_MISMATCH', `${op}: w ${fmt(weight.shape)} should have ${cols} elements`);
    checkFinite(op, 'eps', eps);
    const y = this.output(op, out, input.shape, 'f32', [input, weight]);
    this.kernels._omni_rmsnorm(input.storage.ptr, weight.storage.ptr, y.storage.ptr, rowCount(input), cols, eps);
    return y;
  }

  layernorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number, out?: Tensor): Tensor {
    const op = 'layernorm';
    const input = this.f32(op, 'x', x);
    const cols = lastDim(input);
    const weight = w ? this.f32(op, 'w', w) : null;
    const bias = b ? this.f32(op, 'b', b) : null;
    for (const [name, t] of [['w', weight], ['b', bias]] as const) {
      if (t && t.size !== cols) throw new OmniError('SHAPE_MISMATCH', `${op}: ${name} ${fmt(t.shape)} should have ${cols} elements`);
    }
    checkFinite(op, 'eps', eps);
    const y = this.output(op, out, input.shape, 'f32', [input, weight, bias]);
    this.kernels._omni_layernorm(input.storage.ptr, weight?.storage.ptr ?? 0, bias?.storage.ptr ?? 0, y.storage.ptr, rowCount(input), cols, eps);
    return y;
  }

  softmax(x: Tensor, out?: Tensor): Tensor {
    const input = this.f32('softmax', 'x', x);
    const y = this.output('softmax', out, input.shape, 'f32', [input]);
    this.kernels._omni_softmax(input.storage.ptr, y.storage.ptr, rowCount(input), lastDim(input));
    return y;
  }

  argmax(x: Tensor, out?: Tensor): Tensor {
    const input = this.f32('argmax', 'x', x);
    const cols = lastDim(input);
    if (cols === 0) throw new OmniError('SHAPE_MISMATCH', `argmax: rows of x ${fmt(input.shape)} are empty`);
    const rows = input.size / cols;
    const y = this.output('argmax', out, [rows], 'i32', [input]);
    this.kernels._omni_argmax(input.storage.ptr, y.storage.ptr, rows, cols);
    return y;
  }

  // ---- elementwise

  siluMul(gate: Tensor, up: Tensor, out?: Tensor): Tensor {
    const g = this.f32('siluMul', 'gate', gate);
    const u = this.f32('siluMul', 'up', up);
    if (!sameShape(g.shape, u.shape)) throw new OmniError('SHAPE_MISMATCH', `siluMul: gate ${fmt(g.shape)} vs up ${fmt(u.shape)}`);
    const y = this.output('siluMul', out, g.shape, 'f32', [g, u]);
    this.kernels._omni_silu_mul(g.storage.ptr, u.storage.ptr, y.storage.ptr, g.size);
    return y;
  }

  gelu(x: Tensor, mode: 'erf' | 'tanh', out?: Tensor): Tensor {
    const input = this.f32('gelu', 'x', x);
    if (mode !== 'erf' && mode !== 'tanh') throw new OmniError('BAD_INPUT', `gelu: mode must be 'erf' or 'tanh', got ${String(mode)}`);
    const y = this.output('gelu', out, input.shape, 'f32', [input]);
    this.kernels._omni_gelu(input.storage.ptr, y.storage.ptr, input.size, mode === 'tanh' ? 1 : 0);
    return y;
  }

  add(a: Tensor, b: Tensor, out?: Tensor): Tensor {
    return this.binary('add', 0, a, b, out);
  }

  mul(a: Tensor, b: Tensor, out?: Tensor): Tensor {
    return this.binary('mul', 1, a, b, out);
  }

  // ---- model-shaped ops

  embedding(table: Weight, ids: Int32Array | Tensor, out?: Tensor): Tensor {
    const op = 'embedding';
    const weight = this.ownWeight(op, table);
    const index = this.indices(op, 'ids', ids, weight.rows);
    const y = this.output(op, out, [index.count, weight.cols], 'f32', [index.tensor]);
    const idsPtr = index.tensor ? index.tensor.storage.ptr : this.stage(index.values);
    this.kernels._omni_embedding(weight.data, FORMAT_CODES[weight.format], Number(weight.scaleF16),
      weight.rows, weight.cols, idsPtr, index.count, y.storage.ptr);
    return y;
  }

  rotary(x: Tensor, positions: Tensor, rope: RopeSpec, out?: Tensor): Tensor {
    const op = 'rotary';
    const input = this.f32(op, 'x', x);
    checkRank(op, 'x', input, 3, '[T, H, D]');
    const [T, H, D] = input.shape;
    const pos = this.own(op, 'positions', positions);
    checkDtype(op, 'positions', pos, 'i32');
    if (pos.shape.length !== 2 || pos.shape[1] !== T) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: positions ${fmt(pos.shape)} should be [streams, ${T}]`);
    }
    const half = checkRope(op, rope, D, pos.shape[0]);
    const heads = rope.heads === undefined ? H : checkInt(op, 'rope.heads', rope.heads, 0, H);
    const inPlace = out === x;
    const y = inPlace ? input : this.output(op, out, input.shape, 'f32', [input, pos]);
    const tables = this.stage(rope.invFreq, rope.stream);
    this.kernels._omni_rotary(input.storage.ptr, y.storage.ptr, pos.storage.ptr, tables, tables + half * 4,
      T, H, D, half, heads, rope.style === 'interleaved' ? 1 : 0);
    return y;
  }

  attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, out?: Tensor): Tensor {
    const op = 'attention';
    const query = this.f32(op, 'q', q);
    const key = this.f32(op, 'k', k);
    const value = this.f32(op, 'v', v);
    checkRank(op, 'k', key, 3, '[S, Hkv, D]');
    if (!sameShape(key.shape, value.shape)) throw new OmniError('SHAPE_MISMATCH', `${op}: k ${fmt(key.shape)} vs v ${fmt(value.shape)}`);
    const [S, Hkv, D] = key.shape;
    const a = this.attentionFields(op, query, `k ${fmt(key.shape)}`, S, Hkv, D, opts);
    const y = this.output(op, out, query.shape, 'f32', [query, key, value]);
    if (y.size === 0) return y;
    const bounds = a.bounds ? this.stage(a.bounds) : 0;
    return this.run(op, y, out, () => this.kernels._omni_attention(
      query.storage.ptr, key.storage.ptr, value.storage.ptr, y.storage.ptr, ...a.fields, bounds, a.segments,
    ));
  }

  /**
   * The kernel fields [T, kvLength, Hq, Hkv, D, scale, mask kind, queryStart, blockSize, back, ahead]
   * of attention of q over S rows of Hkv heads of D elements, checked, with any segment bounds.
   */
  private attentionFields(op: string, query: WasmTensor, keysText: string, S: number, Hkv: number, D: number, opts: AttentionOptions):
    { fields: [number, number, number, number, number, number, number, number, number, number, number]; bounds: Int32Array | null; segments: number } {
    checkRank(op, 'q', query, 3, '[T, Hq, D]');
    const [T, Hq, DQ] = query.shape;
    if (DQ !== D || Hkv === 0 || Hq % Hkv !== 0) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: q ${fmt(query.shape)} and ${keysText}: head dims must match and Hq be a multiple of Hkv`);
    }
    if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', `${op}: opts with a mask are required`);
    const kvLength = opts.kvLength === undefined ? S : checkInt(op, 'kvLength', opts.kvLength, 0);
    if (kvLength > S) throw new OmniError('SHAPE_MISMATCH', `${op}: kvLength ${kvLength} exceeds the ${S} rows of k/v`);
    const scale = opts.scale === undefined ? 1 / Math.sqrt(D) : checkFinite(op, 'scale', opts.scale);
    const mask = maskFields(op, opts.mask, T, kvLength);
    return { fields: [T, kvLength, Hq, Hkv, D, scale, ...mask.fields], bounds: mask.bounds, segments: mask.bounds ? mask.bounds.length - 1 : 0 };
  }

  // ---- the 8-bit KV cache (kv8)

  private kv8Create(rows: number, heads: number, headDim: number): KV8 {
    this.assertAlive();
    const op = 'kv8.create';
    checkInt(op, 'rows', rows, 1);
    checkInt(op, 'heads', heads, 1);
    checkInt(op, 'headDim', headDim, 1);
    const bytes = this.kernels._omni_kv8_bytes(rows, heads, headDim) >>> 0;
    if (bytes === 0 || bytes > ALLOCATION_LIMIT) {
      throw new OmniError('OUT_OF_MEMORY', `${op}: ${rows} rows of ${heads} × ${headDim} need more than one wasm allocation holds (${ALLOCATION_LIMIT} bytes)`);
    }
    const ptr = this.allocate(bytes, `an 8-bit KV cache layer of ${rows} rows`);
    // Zero, so rows never written hold finite scales (attention reads a whole 4-row block).
    this.heap().u8.fill(0, ptr, ptr + bytes);
    return new WasmKV8(this, rows, heads, headDim, bytes, ptr);
  }

  private ownKV8(op: string, kv: KV8): WasmKV8 {
    this.assertAlive();
    if (!(kv instanceof WasmKV8) || kv.owner !== this) throw new OmniError('BAD_INPUT', `${op}: not an 8-bit KV cache layer of this wasm backend`);
    if (kv.disposed) throw new OmniError('BAD_INPUT', `${op}: the 8-bit KV cache layer was disposed`);
    return kv;
  }

  /** k and v, both [n, heads, headDim] of kv's heads; returns n after checking rows [row, row + n) lie in kv. */
  private kv8Rows(op: string, kv: WasmKV8, k: WasmTensor, v: WasmTensor, row: number): number {
    const want = `[n, ${kv.heads}, ${kv.headDim}]`;
    checkRank(op, 'k', k, 3, want);
    if (!sameShape(k.shape, v.shape) || k.shape[1] !== kv.heads || k.shape[2] !== kv.headDim) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: k ${fmt(k.shape)} and v ${fmt(v.shape)} must both be ${want}`);
    }
    const n = k.shape[0];
    checkInt(op, 'row', row, 0, kv.rows - n);
    return n;
  }

  private kv8Write(k: Tensor, v: Tensor, dst: KV8, row: number): void {
    const op = 'kv8.write';
    const kv = this.ownKV8(op, dst);
    const key = this.f32(op, 'k', k);
    const value = this.f32(op, 'v', v);
    const n = this.kv8Rows(op, kv, key, value, row);
    this.kernels._omni_kv8_write(kv.ptr, kv.rows, kv.heads, kv.headDim, key.storage.ptr, value.storage.ptr, row, n);
  }

  private kv8Read(src: KV8, row: number, k: Tensor, v: Tensor): void {
    const op = 'kv8.read';
    const kv = this.ownKV8(op, src);
    const key = this.f32(op, 'k', k);
    const value = this.f32(op, 'v', v);
    if (key.storage === value.storage) throw new OmniError('BAD_INPUT', `${op}: k and v must not share storage`);
    const n = this.kv8Rows(op, kv, key, value, row);
    this.kernels._omni_kv8_read(kv.ptr, kv.rows, kv.heads, kv.headDim, row, n, key.storage.ptr, value.storage.ptr);
  }

  private kv8Attention(q: Tensor, cache: KV8, opts: AttentionOptions, out?: Tensor): Tensor {
    const op = 'kv8.attention';
    const kv = this.ownKV8(op, cache);
    const query = this.f32(op, 'q', q);
    const a = this.attentionFields(op, query, `an 8-bit cache of ${kv.heads} × ${kv.headDim}`, kv.rows, kv.heads, kv.headDim, opts);
    const y = this.output(op, out, query.shape, 'f32', [query]);
    if (y.size === 0) return y;
    const bounds = a.bounds ? this.stage(a.bounds) : 0;
    return this.run(op, y, out, () => this.kernels._omni_attention_kv8(query.storage.ptr, kv.ptr, kv.rows, y.storage.ptr, ...a.fields, bounds, a.segments));
  }

  private kv8Dispose(kv: KV8): void {
    if (!(kv instanceof WasmKV8) || kv.owner !== this) throw new OmniError('BAD_INPUT', 'kv8.dispose: not an 8-bit KV cache layer of this wasm backend');
    if (kv.disposed) return;
    kv.disposed = true;
    if (this.alive) this.kernels._omni_free(kv.ptr);
  }

  conv1d(x: Tensor, w: Weight, bias: Tensor | null, opts: Conv1dOptions, out?: Tensor): Tensor {
    const op = 'conv1d';
    const input = this.f32(op, 'x', x);
    checkRank(op, 'x', input, 2, '[L, Cin] (time-major)');
    const weight = this.ownWeight(op, w);
    if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', `${op}: opts are required`);
    const [L, Cin] = input.shape;
    const kernel = checkInt(op, 'kernel', opts.kernel, 1);
    const stride = checkInt(op, 'stride', opts.stride ?? 1, 1);
    const padding = checkInt(op, 'padding', opts.padding ?? 0, 0);
    const dilation = checkInt(op, 'dilation', opts.dilation ?? 1, 1);
    const padMode = opts.padMode ?? 'zeros';
    if (padMode !== 'zeros' && padMode !== 'reflect') throw new OmniError('BAD_INPUT', `${op}: padMode must be 'zeros' or 'reflect', got ${String(padMode)}`);
    if (padMode === 'reflect' && padding >= L) {
      throw new OmniError('BAD_INPUT', `${op}: reflect padding ${padding} needs more than ${L} input frames`);
    }
    if (weight.cols !== Cin * kernel) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: weight [${weight.rows}, ${weight.cols}] should be [Cout, ${Cin} · ${kernel}]`);
    }
    const span = dilation * (kernel - 1) + 1;
    if (L + 2 * padding < span) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: ${L} frames padded by ${padding} are shorter than the kernel span ${span}`);
    }
    const outLen = Math.floor((L + 2 * padding - span) / stride) + 1;
    const b = bias ? this.f32(op, 'bias', bias) : null;
    if (b && b.size !== weight.rows) throw new OmniError('SHAPE_MISMATCH', `${op}: bias ${fmt(b.shape)} should have ${weight.rows} elements`);
    const y = this.output(op, out, [outLen, weight.rows], 'f32', [input, b]);
    return this.run(op, y, out, () => this.kernels._omni_conv1d(
      input.storage.ptr, L, Cin, weight.data, FORMAT_CODES[weight.format], Number(weight.scaleF16),
      weight.rows, kernel, stride, padding, dilation, padMode === 'reflect' ? 1 : 0, b?.storage.ptr ?? 0, y.storage.ptr, outLen,
    ));
  }

  gatherRows(x: Tensor, idx: Int32Array | Tensor, out?: Tensor): Tensor {
    const op = 'gatherRows';
    const input = this.own(op, 'x', x);
    checkRank(op, 'x', input, 2, '[R, C]');
    const [R, C] = input.shape;
    const index = this.indices(op, 'idx', idx, R);
    const y = this.output(op, out, [index.count, C], input.dtype, [input, index.tensor]);
    const idsPtr = index.tensor ? index.tensor.storage.ptr : this.stage(index.values);
    this.kernels._omni_gather_rows(input.storage.ptr, idsPtr, index.count, C, y.storage.ptr);
    return y;
  }

  transpose(x: Tensor, out?: Tensor): Tensor {
    const input = this.own('transpose', 'x', x);
    checkRank('transpose', 'x', input, 2, '[M, N]');
    const [M, N] = input.shape;
    const y = this.output('transpose', out, [N, M], input.dtype, [input]);
    this.kernels._omni_transpose(input.storage.ptr, y.storage.ptr, M, N);
    return y;
  }

  avgPoolRows(x: Tensor, size: number, out?: Tensor): Tensor {
    const input = this.f32('avgPoolRows', 'x', x);
    checkRank('avgPoolRows', 'x', input, 2, '[L, C]');
    checkInt('avgPoolRows', 'size', size, 1);
    const [L, C] = input.shape;
    const windows = Math.floor(L / size);
    const y = this.output('avgPoolRows', out, [windows, C], 'f32', [input]);
    this.kernels._omni_avg_pool_rows(input.storage.ptr, y.storage.ptr, windows, C, size);
    return y;
  }

  unary(x: Tensor, fn: UnaryFunction, out?: Tensor): Tensor {
    const op = 'unary';
    const input = this.f32(op, 'x', x);
    const { kind, p0, p1 } = unaryParams(op, fn);
    const y = this.output(op, out, input.shape, 'f32', [input]);
    this.kernels._omni_unary(input.storage.ptr, y.storage.ptr, input.size, kind, p0, p1);
    return y;
  }

  snakeBeta(x: Tensor, alphaLog: Tensor, betaLog: Tensor, filters: ResampleFilters, out?: Tensor): Tensor {
    const op = 'snakeBeta';
    const input = this.f32(op, 'x', x);
    checkRank(op, 'x', input, 2, '[L, C] (time-major)');
    const [L, C] = input.shape;
    const alpha = this.f32(op, 'alphaLog', alphaLog);
    const beta = this.f32(op, 'betaLog', betaLog);
    for (const [name, t] of [['alphaLog', alpha], ['betaLog', beta]] as const) {
      if (t.size !== C) throw new OmniError('SHAPE_MISMATCH', `${op}: ${name} ${fmt(t.shape)} should have ${C} elements (one per channel)`);
    }
    if (filters === null || typeof filters !== 'object') throw new OmniError('BAD_INPUT', `${op}: filters { up, down } are required`);
    const up = this.f32(op, 'filters.up', filters.up);
    const down = this.f32(op, 'filters.down', filters.down);
    if (up.shape.length !== 1 || up.size % 2 !== 0 || up.size < 4) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: filters.up ${fmt(up.shape)} should be one even length ≥ 4`);
    }
    if (down.shape.length !== 1 || down.size % 2 !== 0 || down.size < 2) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: filters.down ${fmt(down.shape)} should be one even length ≥ 2`);
    }
    const y = this.output(op, out, input.shape, 'f32', [input, alpha, beta, up, down]);
    if (y.size === 0) return y;
    return this.run(op, y, out, () => this.kernels._omni_snake_beta(
      input.storage.ptr, alpha.storage.ptr, beta.storage.ptr, up.storage.ptr, down.storage.ptr, y.storage.ptr, L, C, up.size, down.size,
    ));
  }

  // ---- helpers

  private assertAlive(): void {
    if (!this.alive) throw new OmniError('BAD_INPUT', 'wasm backend: used after destroy()');
  }

  /** Typed views of the heap, rebuilt when memory has grown (possibly from a pool thread). */
  private heap(): HeapViews {
    const buffer = this.kernels.heapBuffer();
    const views = this.views;
    if (views && views.buffer === buffer && views.u8.byteLength === buffer.byteLength) return views;
    this.views = {
      buffer,
      u8: new Uint8Array(buffer),
      i32: new Int32Array(buffer),
      f32: new Float32Array(buffer),
    };
    return this.views;
  }

  /** 64-byte aligned heap memory, or OUT_OF_MEMORY naming what it was for. */
  private allocate(bytes: number, what: string): number {
    if (bytes > ALLOCATION_LIMIT) {
      throw new OmniError('OUT_OF_MEMORY', `wasm backend: ${what} needs ${bytes} bytes; one wasm allocation holds at most ${ALLOCATION_LIMIT}`);
    }
    const ptr = this.kernels._omni_malloc(Math.max(bytes, 1)) >>> 0;
    if (ptr === 0) {
      throw new OmniError('OUT_OF_MEMORY', `wasm backend: no room for ${what} (${bytes} bytes); the heap holds ${this.heap().u8.byteLength} bytes and may grow to ${WASM_HEAP_BYTES}`);
    }
    return ptr;
  }

  /** Copies small host arrays back to back into the staging area; valid until the next call. */
  private stage(...arrays: (Int32Array | Float32Array)[]): number {
    const bytes = arrays.reduce((n, a) => n + a.byteLength, 0);
    if (this.staging.bytes < bytes) {
      if (this.staging.ptr) this.kernels._omni_free(this.staging.ptr);
      this.staging = { ptr: 0, bytes: 0 };
      this.staging = { ptr: this.allocate(bytes, 'staged call arguments'), bytes };
    }
    let at = this.staging.ptr;
    for (const a of arrays) {
      this.heap().u8.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), at);
      at += a.byteLength;
    }
    return this.staging.ptr;
  }

  /** Runs a kernel that returns −1 when its scratch memory could not be allocated. */
  private run(op: string, y: WasmTensor, out: Tensor | undefined, kernel: () => number): WasmTensor {
    if (kernel() !== 0) {
      if (out === undefined) this.dispose(y);
      throw new OmniError('OUT_OF_MEMORY', `${op}: the wasm heap has no room for the kernel's scratch memory`);
    }
    return y;
  }

  /** A live tensor of this backend. */
  private own(op: string, name: string, t: Tensor): WasmTensor {
    this.assertAlive();
    if (!(t instanceof WasmTensor) || t.owner !== this) {
      throw new OmniError('BAD_INPUT', `${op}: ${name} is not a tensor of this wasm backend`);
    }
    if (t.storage.disposed) throw new OmniError('BAD_INPUT', `${op}: ${name} ${fmt(t.shape)} was disposed`);
    return t;
  }

  private f32(op: string, name: string, t: Tensor): WasmTensor {
    const x = this.own(op, name, t);
    checkDtype(op, name, x, 'f32');
    return x;
  }

  private ownWeight(op: string, w: Weight): WasmWeight {
    this.assertAlive();
    if (!(w instanceof WasmWeight) || w.owner !== this) throw new OmniError('BAD_INPUT', `${op}: not a weight of this wasm backend`);
    if (w.disposed) throw new OmniError('BAD_INPUT', `${op}: the [${w.rows}, ${w.cols}] weight was disposed`);
    return w;
  }

  /** `out` checked against the result's shape and dtype, or a new tensor. */
  private output(op: string, out: Tensor | undefined, shape: readonly number[], dtype: ElementType,
    inputs: readonly (WasmTensor | null)[]): WasmTensor {
    if (out === undefined) return this.empty(shape, dtype) as WasmTensor;
    const y = this.own(op, 'out', out);
    if (!sameShape(y.shape, shape)) throw new OmniError('SHAPE_MISMATCH', `${op}: out is ${fmt(y.shape)}, the result is ${fmt(shape)}`);
    if (y.dtype !== dtype) throw new OmniError('WRONG_DTYPE', `${op}: out must be ${dtype}, got ${y.dtype}`);
    if (inputs.some((t) => t?.storage === y.storage)) {
      throw new OmniError('BAD_INPUT', `${op}: out must not share storage with an input`);
    }
    return y;
  }

  /** Row indices from the host or an i32 tensor, each checked to lie in [0, limit). */
  private indices(op: string, name: string, ids: Int32Array | Tensor, limit: number):
    { count: number; values: Int32Array; tensor: WasmTensor | null } {
    if (ids instanceof Int32Array) {
      checkHostIndices(op, name, ids, limit);
      return { count: ids.length, values: ids, tensor: null };
    }
    if (!(ids instanceof WasmTensor)) throw new OmniError('BAD_INPUT', `${op}: ${name} must be an Int32Array or an i32 tensor`);
    const t = this.own(op, name, ids);
    checkDtype(op, name, t, 'i32');
    const start = t.storage.ptr / 4;
    const values = this.heap().i32.subarray(start, start + t.size);
    checkHostIndices(op, name, values, limit);
    return { count: t.size, values, tensor: t };
  }

  private binary(op: 'add' | 'mul', code: number, a: Tensor, b: Tensor, out?: Tensor): Tensor {
    const left = this.f32(op, 'a', a);
    const right = this.f32(op, 'b', b);
    const rowBroadcast = right.shape.length === 1 && right.shape[0] === lastDim(left);
    if (!sameShape(left.shape, right.shape) && !rowBroadcast) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: b ${fmt(right.shape)} must equal a ${fmt(left.shape)} or be one row [${lastDim(left)}]`);
    }
    const y = this.output(op, out, left.shape, 'f32', [left, right]);
    if (left.size > 0) this.kernels._omni_binary(left.storage.ptr, right.storage.ptr, y.storage.ptr, left.size, right.size, code);
    return y;
  }
}

/**
 * The f16 GEMV and the q8/q4 kernels' f16 scales widen halves without an Inf/NaN case
 * (kernels/wasm/linear.c). `problem` names the half at [row, column] of `perRow` per row.
 */
function refuseNonFiniteHalves(halves: Uint16Array, perRow: number, problem: (row: number, col: number) => string): void {
  const i = firstNonFiniteHalf(halves);
  if (i >= 0) throw new OmniError('NUMERIC', problem(Math.floor(i / perRow), i % perRow));
}

function rowCount(t: WasmTensor): number {
  const cols = lastDim(t);
  return cols === 0 ? 0 : t.size / cols;
}

function checkRope(op: string, rope: RopeSpec, headDim: number, streams: number): number {
  if (rope === null || typeof rope !== 'object') throw new OmniError('BAD_INPUT', `${op}: rope must be a RopeSpec`);
  if (!(rope.invFreq instanceof Float32Array) || !(rope.stream instanceof Int32Array)) {
    throw new OmniError('BAD_INPUT', `${op}: rope.invFreq must be a Float32Array and rope.stream an Int32Array`);
  }
  const half = rope.invFreq.length;
  if (half < 1 || 2 * half > headDim) {
    throw new OmniError('SHAPE_MISMATCH', `${op}: ${half} frequencies rotate ${2 * half} dims, head dim is ${headDim}`);
  }
  if (rope.stream.length !== half) throw new OmniError('SHAPE_MISMATCH', `${op}: rope.stream has ${rope.stream.length} entries for ${half} frequencies`);
  checkHostIndices(op, 'rope.stream', rope.stream, streams);
  if (rope.style !== 'half' && rope.style !== 'interleaved') {
    throw new OmniError('BAD_INPUT', `${op}: rope.style must be 'half' or 'interleaved', got ${String(rope.style)}`);
  }
  return half;
}

/** [kind, queryStart, blockSize, back, ahead] and the segment bounds, checked. */
function maskFields(op: string, mask: AttentionOptions['mask'], T: number, kvLength: number):
  { fields: [number, number, number, number, number]; bounds: Int32Array | null } {
  const kind = mask && typeof mask === 'object' ? MASK_CODES[mask.kind] : undefined;
  if (kind === undefined) throw new OmniError('BAD_INPUT', `${op}: mask.kind must be none, causal, segments or blockWindow`);
  switch (mask.kind) {
    case 'none':
      return { fields: [kind, 0, 1, 0, 0], bounds: null };
    case 'causal':
      return { fields: [kind, checkInt(op, 'mask.queryStart', mask.queryStart, 0, 2 ** 31 - 1), 1, 0, 0], bounds: null };
    case 'segments': {
      const { bounds } = mask;
      if (!(bounds instanceof Int32Array) || bounds.length < 2) {
        throw new OmniError('BAD_INPUT', `${op}: mask.bounds must be an Int32Array [0, …, T]`);
      }
      if (T !== kvLength) throw new OmniError('SHAPE_MISMATCH', `${op}: segments need T == kvLength, got ${T} and ${kvLength}`);
      for (let i = 1; i < bounds.length; i++) {
        if (bounds[i] < bounds[i - 1]) throw new OmniError('BAD_INPUT', `${op}: mask.bounds must not decrease (index ${i})`);
      }
      if (bounds[0] !== 0 || bounds[bounds.length - 1] !== T) {
        throw new OmniError('BAD_INPUT', `${op}: mask.bounds must run from 0 to T = ${T}, got ${bounds[0]} … ${bounds[bounds.length - 1]}`);
      }
      return { fields: [kind, 0, 1, 0, 0], bounds };
    }
    case 'blockWindow':
      return {
        fields: [
          kind, 0, checkInt(op, 'mask.blockSize', mask.blockSize, 1, 2 ** 31 - 1),
          checkInt(op, 'mask.back', mask.back, 0, 2 ** 31 - 1), checkInt(op, 'mask.ahead', mask.ahead, 0, 2 ** 31 - 1),
        ],
        bounds: null,
      };
  }
}
