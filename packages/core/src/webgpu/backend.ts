import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import type {
  AttentionOptions, Backend, BackendInfo, Conv1dOptions, ElementType, HostMatrix, LinearPart, ResampleFilters, RopeSpec, Tensor,
  UnaryFunction, Weight,
} from '../backend.js';
import { OmniError } from '../errors.js';
import {
  checkDtype, checkFinite, checkHostIndices, checkInt, checkLinearParts, checkRank, checkShape, fmt, lastDim, linearShape, sameShape, shapeSize,
  unaryParams,
} from '../checks.js';
import { f32, GpuRuntime, type F32 } from './runtime.js';
import { tfTensorOnDevice } from './tf.js';
import type { Tuning } from './tuning.js';
import { GpuWeight, uploadWeight, weightModules, type WeightPart } from './weights.js';

/** Device storage of a tensor; reshape views share it. */
interface TensorStorage {
  readonly buffer: GPUBuffer;
  disposed: boolean;
}

export class GpuTensor implements Tensor {
  readonly backend = 'webgpu' as const;
  readonly size: number;
  constructor(
    readonly owner: object,
    readonly storage: TensorStorage,
    readonly shape: readonly number[],
    readonly dtype: ElementType,
  ) {
    this.size = shapeSize(shape);
  }
}

/** The WebGPU Backend plus what only a GPU backend has. */
export interface WebGPUBackend extends Backend {
  readonly device: GPUDevice;
  /** Resolves when the device is lost (or destroyed); every later call throws DEVICE_LOST. */
  readonly lost: Promise<GPUDeviceLostInfo>;
  /** The GPUBuffer behind a tensor (its first `size` elements), for interop. */
  gpuBuffer(t: Tensor): GPUBuffer;
  /**
   * The tensor as a tfjs tensor over the same GPUBuffer, without a copy. On first use this
   * registers a tfjs-backend-webgpu backend built on our device as tfjs's 'webgpu' backend and
   * makes it current. The tfjs tensor aliases our storage: dispose ours only after the tfjs
   * tensor is no longer used (disposing the tfjs tensor leaves our buffer alone).
   */
  toTf(t: Tensor): Promise<TfTensor>;
}

type RowsInput = Int32Array | Tensor;

const ROPE_STYLES = ['half', 'interleaved'];
/** Largest finite f32: clamp bounds stand in for ±Infinity, which WGSL code may assume absent. */
const F32_MAX = 3.4028234663852886e38;

const MASK_KINDS = { none: 0, causal: 1, segments: 2, blockWindow: 3 } as const;

export class WebGPUBackendImpl implements WebGPUBackend {
  readonly info: BackendInfo;
  readonly device: GPUDevice;
  readonly lost: Promise<GPUDeviceLostInfo>;
  private readonly rt: GpuRuntime;
  private readonly tuning: Tuning;
  private readonly adapterInfo: GPUAdapterInfo | undefined;
  private readonly ownsDevice: boolean;
  /** Bound where a kernel's optional operand (bias, weight, bounds) is absent. */
  private readonly placeholder: GPUBuffer;
  private readonly ropeTables = new WeakMap<RopeSpec, { invFreq: GPUBuffer; stream: GPUBuffer }>();
  /** attention_decode's per-chunk results, grown on demand and reused. */
  private attentionScratch: GPUBuffer | null = null;

  constructor(
    device: GPUDevice, adapterInfo: GPUAdapterInfo | undefined, ownsDevice: boolean,
    name: string, maxBufferBytes: number, tuning: Tuning,
  ) {
    this.device = device;
    this.adapterInfo = adapterInfo;
    this.ownsDevice = ownsDevice;
    this.lost = device.lost;
    this.tuning = tuning;
    this.rt = new GpuRuntime(device, maxBufferBytes, tuning.dispatchesPerSubmit);
    this.info = { kind: 'webgpu', name, shaderF16: device.features.has('shader-f16'), maxBufferBytes, threads: 1 };
    this.placeholder = this.rt.createBuffer(16, 'a placeholder binding');
  }

  // ---- memory

  tensor(data: Float32Array | Int32Array, shape: readonly number[]): Tensor {
    this.rt.assertAlive();
    const dims = checkShape('tensor', shape);
    const dtype: ElementType | null = data instanceof Float32Array ? 'f32' : data instanceof Int32Array ? 'i32' : null;
    if (dtype === null) throw new OmniError('WRONG_DTYPE', 'tensor: data must be a Float32Array or an Int32Array');
    if (shapeSize(dims) !== data.length) {
      throw new OmniError('SHAPE_MISMATCH', `tensor: ${data.length} values do not fill shape ${fmt(dims)}`);
    }
    const buffer = this.rt.upload(data, `a ${fmt(dims)} tensor`);
    return new GpuTensor(this, { buffer, disposed: false }, [...dims], dtype);
  }

  empty(shape: readonly number[], dtype: ElementType = 'f32'): Tensor {
    this.rt.assertAlive();
    const dims = checkShape('empty', shape);
    if (dtype !== 'f32' && dtype !== 'i32') throw new OmniError('WRONG_DTYPE', `empty: dtype must be f32 or i32, got ${String(dtype)}`);
    // WebGPU zero-fills new buffers.
    const buffer = this.rt.createBuffer(shapeSize(dims) * 4, `a ${fmt(dims)} tensor`);
    return new GpuTensor(this, { buffer, disposed: false }, [...dims], dtype);
  }

  weight(matrix: HostMatrix): Weight {
    this.rt.assertAlive();
    return uploadWeight(this.rt, this, matrix);
  }

  async read(t: Tensor, range?: { offset: number; count: number }): Promise<Float32Array | Int32Array> {
    const src = this.own('read', 't', t);
    const offset = range ? checkInt('read', 'range.offset', range.offset, 0, src.size) : 0;
    const count = range ? checkInt('read', 'range.count', range.count, 0, src.size - offset) : src.size;
    const bytes = await this.rt.read(src.storage.buffer, offset * 4, count * 4);
    return src.dtype === 'f32' ? new Float32Array(bytes) : new Int32Array(bytes);
  }

  async sync(): Promise<void> {
    this.rt.assertAlive();
    await this.rt.sync();
  }

  dispose(t: Tensor | Weight): void {
    if (t instanceof GpuTensor && t.owner === this) {
      if (t.storage.disposed) return;
      t.storage.disposed = true;
      this.rt.release(t.storage.buffer);
    } else if (t instanceof GpuWeight && t.owner === this) {
      if (t.disposed) return;
      t.disposed = true;
      for (const part of t.parts) {
        this.rt.release(part.data);
        if (part.scales) this.rt.release(part.scales);
      }
    } else {
      throw new OmniError('BAD_INPUT', 'dispose: not a tensor or weight of this WebGPU backend');
    }
  }

  copy(src: Tensor, dst: Tensor, srcOffset: number, dstOffset: number, count: number): void {
    const s = this.own('copy', 'src', src);
    const d = this.own('copy', 'dst', dst);
    if (s.dtype !== d.dtype) throw new OmniError('WRONG_DTYPE', `copy: src is ${s.dtype}, dst is ${d.dtype}`);
    checkInt('copy', 'count', count, 0);
    checkInt('copy', 'srcOffset', srcOffset, 0, s.size - count);
    checkInt('copy', 'dstOffset', dstOffset, 0, d.size - count);
    if (s.storage === d.storage) {
      // A buffer cannot be both copy source and destination: go through a temporary,
      // which also makes overlapping ranges behave like memmove.
      const tmp = this.rt.createBuffer(count * 4, 'a copy staging buffer');
      this.rt.copy(s.storage.buffer, srcOffset * 4, tmp, 0, count * 4);
      this.rt.copy(tmp, 0, d.storage.buffer, dstOffset * 4, count * 4);
      this.rt.release(tmp);
    } else {
      this.rt.copy(s.storage.buffer, srcOffset * 4, d.storage.buffer, dstOffset * 4, count * 4);
    }
  }

  reshape(t: Tensor, shape: readonly number[]): Tensor {
    const x = this.own('reshape', 't', t);
    const dims = checkShape('reshape', shape);
    if (shapeSize(dims) !== x.size) {
      throw new OmniError('SHAPE_MISMATCH', `reshape: ${fmt(x.shape)} (${x.size} elements) cannot become ${fmt(dims)}`);
    }
    return new GpuTensor(this, x.storage, [...dims], x.dtype);
  }

  destroy(): void {
    this.rt.destroy();
    if (this.ownsDevice) this.device.destroy();
  }

  gpuBuffer(t: Tensor): GPUBuffer {
    return this.own('gpuBuffer', 't', t).storage.buffer;
  }

  async toTf(t: Tensor): Promise<TfTensor> {
    const x = this.own('toTf', 't', t);
    // tfjs submits on its own; our queued writes to this buffer must reach the queue first.
    this.rt.flush();
    return tfTensorOnDevice(this.device, this.adapterInfo, x.storage.buffer, x.shape, x.dtype);
  }

  // ---- linear algebra

  linear(x: Tensor, w: Weight, bias?: Tensor | null, out?: Tensor): Tensor {
    const op = 'linear';
    const input = this.f32(op, 'x', x);
    const part = this.linearPart(op, input, w, bias, out, [input]);
    this.runLinear(input, part);
    return part.y;
  }

  linears(x: Tensor, parts: readonly LinearPart[]): Tensor[] {
    const op = 'linears';
    const others = checkLinearParts(op, x, parts);
    const input = this.f32(op, 'x', x);
    const resolved = parts.map((p, i) => this.linearPart(op, input, p.w, p.bias, p.out, others[i].map((t) => t && this.own(op, 'an input', t))));
    for (const part of resolved) this.runLinear(input, part);
    return resolved.map((p) => p.y);
  }

  /** One weight's operands of linear(s), checked; `out` must not share storage with `inputs`. */
  private linearPart(op: string, input: GpuTensor, w: Weight, bias: Tensor | null | undefined, out: Tensor | undefined,
    inputs: readonly (GpuTensor | null)[]): { weight: GpuWeight; b: GpuTensor | null; y: GpuTensor } {
    const weight = this.ownWeight(op, w);
    const b = bias ? this.f32(op, 'bias', bias) : null;
    const y = this.output(op, out, linearShape(op, input, weight, b), 'f32', [...inputs, b]);
    return { weight, b, y };
  }

  private runLinear(input: GpuTensor, { weight, b, y }: { weight: GpuWeight; b: GpuTensor | null; y: GpuTensor }): void {
    const rows = input.size / weight.cols;
    for (const part of weight.parts) {
      this.matmulPart(weightModules(weight.format), 'input_rows', this.weightBindings(part), {
        M: rows, N: part.rows, K: weight.cols, outStride: weight.rows, outOffset: part.rowStart,
        wStride: weight.stride, wKStride: 1, scaleF16: weight.scaleF16,
      }, input, b, y);
    }
  }

  matmul(a: Tensor, b: Tensor, opts?: { transposeB?: boolean }, out?: Tensor): Tensor {
    const op = 'matmul';
    const left = this.f32(op, 'a', a);
    const right = this.f32(op, 'b', b);
    checkRank(op, 'a', left, 2, '[M, K]');
    checkRank(op, 'b', right, 2, opts?.transposeB ? '[N, K]' : '[K, N]');
    const [M, K] = left.shape;
    const transposeB = opts?.transposeB === true;
    const [N, KB] = transposeB ? right.shape : [right.shape[1], right.shape[0]];
    if (KB !== K) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: a ${fmt(left.shape)} and b ${fmt(right.shape)}${transposeB ? 'ᵀ' : ''} do not chain`);
    }
    const y = this.output(op, out, [M, N], 'f32', [left, right]);
    this.matmulPart(['weight_common', 'weight_dense'], 'input_rows', { 1: right.storage.buffer }, {
      M, N, K, outStride: N, outOffset: 0,
      wStride: transposeB ? K : 1, wKStride: transposeB ? 1 : N, scaleF16: false,
    }, left, null, y);
    return y;
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
    this.rowKernel('rmsnorm', cols, [input.size / Math.max(cols, 1), cols, f32(eps)], {
      1: input.storage.buffer, 2: weight.storage.buffer, 3: y.storage.buffer,
    });
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
    this.rowKernel('layernorm', cols, [input.size / Math.max(cols, 1), cols, f32(eps), weight ? 1 : 0, bias ? 1 : 0], {
      1: input.storage.buffer,
      2: weight?.storage.buffer ?? this.placeholder,
      3: bias?.storage.buffer ?? this.placeholder,
      4: y.storage.buffer,
    });
    return y;
  }

  softmax(x: Tensor, out?: Tensor): Tensor {
    const input = this.f32('softmax', 'x', x);
    const cols = lastDim(input);
    const y = this.output('softmax', out, input.shape, 'f32', [input]);
    this.rowKernel('softmax', cols, [input.size / Math.max(cols, 1), cols], { 1: input.storage.buffer, 2: y.storage.buffer });
    return y;
  }

  argmax(x: Tensor, out?: Tensor): Tensor {
    const input = this.f32('argmax', 'x', x);
    const cols = lastDim(input);
    if (cols === 0) throw new OmniError('SHAPE_MISMATCH', `argmax: rows of x ${fmt(input.shape)} are empty`);
    const rows = input.size / cols;
    const y = this.output('argmax', out, [rows], 'i32', [input]);
    const wg = this.tuning.rowWG(cols);
    this.rt.dispatch({ modules: ['argmax'], constants: { WG: wg } }, [rows, cols],
      { 1: input.storage.buffer, 2: y.storage.buffer }, this.rt.grid(rows));
    return y;
  }

  // ---- elementwise

  siluMul(gate: Tensor, up: Tensor, out?: Tensor): Tensor {
    const g = this.f32('siluMul', 'gate', gate);
    const u = this.f32('siluMul', 'up', up);
    if (!sameShape(g.shape, u.shape)) throw new OmniError('SHAPE_MISMATCH', `siluMul: gate ${fmt(g.shape)} vs up ${fmt(u.shape)}`);
    const y = this.output('siluMul', out, g.shape, 'f32', [g, u]);
    this.elementKernel('silu_mul', g.size, [g.size], { 1: g.storage.buffer, 2: u.storage.buffer, 3: y.storage.buffer });
    return y;
  }

  gelu(x: Tensor, mode: 'erf' | 'tanh', out?: Tensor): Tensor {
    const input = this.f32('gelu', 'x', x);
    if (mode !== 'erf' && mode !== 'tanh') throw new OmniError('BAD_INPUT', `gelu: mode must be 'erf' or 'tanh', got ${String(mode)}`);
    const y = this.output('gelu', out, input.shape, 'f32', [input]);
    this.elementKernel('gelu', input.size, [input.size, mode === 'tanh' ? 1 : 0], { 1: input.storage.buffer, 2: y.storage.buffer });
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
    const blocks = Math.ceil(weight.cols / 8);
    const wg = this.tuning.elementWG;
    weight.parts.forEach((part, i) => {
      this.rt.dispatch(
        { modules: ['elementwise_common', ...weightModules(weight.format), 'embedding'], constants: this.weightConstants(weight, { WG: wg }) },
        [index.count, weight.cols, part.rowStart, part.rows, weight.rows, i === 0 ? 1 : 0, weight.stride],
        { ...this.weightBindings(part), 3: index.buffer, 4: y.storage.buffer },
        this.rt.grid(Math.ceil((index.count * blocks) / wg)),
      );
    });
    index.release();
    return y;
  }

  rotary(x: Tensor, positions: Tensor, rope: RopeSpec, out?: Tensor): Tensor {
    const op = 'rotary';
    const input = this.f32(op, 'x', x);
    checkRank(op, 'x', input, 3, '[T, H, D]');
    const [T, H, D] = input.shape;
    const pos = this.own(op, 'positions', positions);
    checkDtype(op, 'positions', pos, 'i32');
    const streams = pos.shape.length === 1 ? 1 : pos.shape[0];
    if (pos.shape.length > 2 || pos.shape.at(-1) !== T) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: positions ${fmt(pos.shape)} should be [streams, ${T}]`);
    }
    const half = this.checkRope(op, rope, D, streams);
    const heads = rope.heads === undefined ? H : checkInt(op, 'rope.heads', rope.heads, 0, H);
    const inPlace = out === x;
    const y = inPlace ? input : this.output(op, out, input.shape, 'f32', [input, pos]);
    if (!inPlace) {
      if (y.storage === pos.storage) throw new OmniError('BAD_INPUT', `${op}: out must not share storage with positions`);
      this.rt.copy(input.storage.buffer, 0, y.storage.buffer, 0, input.size * 4);
    }
    const table = this.ropeTable(rope);
    this.elementKernel('rotary', T * heads * half, [T, H, D, heads, half, rope.style === 'interleaved' ? 1 : 0], {
      1: y.storage.buffer, 2: pos.storage.buffer, 3: table.invFreq, 4: table.stream,
    }, ['trig']);
    return y;
  }

  attention(q: Tensor, k: Tensor, v: Tensor, opts: AttentionOptions, out?: Tensor): Tensor {
    const op = 'attention';
    const query = this.f32(op, 'q', q);
    const key = this.f32(op, 'k', k);
    const value = this.f32(op, 'v', v);
    checkRank(op, 'q', query, 3, '[T, Hq, D]');
    checkRank(op, 'k', key, 3, '[S, Hkv, D]');
    if (!sameShape(key.shape, value.shape)) throw new OmniError('SHAPE_MISMATCH', `${op}: k ${fmt(key.shape)} vs v ${fmt(value.shape)}`);
    const [T, Hq, D] = query.shape;
    const [S, Hkv, DK] = key.shape;
    if (DK !== D || Hkv === 0 || Hq % Hkv !== 0) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: q ${fmt(query.shape)} and k ${fmt(key.shape)}: head dims must match and Hq be a multiple of Hkv`);
    }
    if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', `${op}: opts with a mask are required`);
    const kvLength = opts.kvLength === undefined ? S : checkInt(op, 'kvLength', opts.kvLength, 0);
    if (kvLength > S) throw new OmniError('SHAPE_MISMATCH', `${op}: kvLength ${kvLength} exceeds the ${S} rows of k/v`);
    const scale = opts.scale === undefined ? 1 / Math.sqrt(D) : checkFinite(op, 'scale', opts.scale);
    const mask = this.maskUniforms(op, opts.mask, T, kvLength);
    const y = this.output(op, out, query.shape, 'f32', [query, key, value]);
    if (T === 0 || D === 0 || Hq === 0) return y;

    const bounds = mask.bounds ? this.rt.upload(mask.bounds, 'segment bounds') : this.placeholder;
    const operands = { 1: query.storage.buffer, 2: key.storage.buffer, 3: value.storage.buffer, 4: bounds };
    const base = [T, kvLength, Hq, Hkv, D, f32(scale), ...mask.fields];
    if (T <= this.tuning.decodeMaxQueries) {
      const chunk = this.tuning.decodeChunk(kvLength, Hq, T);
      const chunks = Math.ceil(kvLength / chunk);
      const scratch = this.scratch(T * Hq * Math.max(chunks, 1) * (D + 2) * 4);
      const uniforms = [...base, chunk, chunks];
      this.rt.dispatch(
        { modules: ['attention_common', 'row_reduce', 'attention_decode'], constants: { WG: this.tuning.decodeWG, CHUNK: chunk } },
        uniforms, { ...operands, 5: scratch }, [chunks, Hq, T],
      );
      this.elementKernel('attention_combine', T * Hq * D, uniforms, { 5: scratch, 6: y.storage.buffer }, ['attention_common']);
    } else {
      const { blockQ, blockKV, threadsPerQuery } = this.tuning.prefill(D);
      this.rt.dispatch(
        {
          modules: ['attention_common', 'attention_prefill'],
          constants: { HEAD_DIM: D, BLOCK_Q: blockQ, BLOCK_KV: blockKV, THREADS_PER_QUERY: threadsPerQuery },
        },
        [...base, 0, 0], { ...operands, 5: y.storage.buffer }, [Math.ceil(T / blockQ), Hq],
      );
    }
    if (mask.bounds) this.rt.release(bounds);
    return y;
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
    const outLen = Math.floor((L + 2 * padding - span) / stride) + 1;
    if (L + 2 * padding < span) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: ${L} frames padded by ${padding} are shorter than the kernel span ${span}`);
    }
    const b = bias ? this.f32(op, 'bias', bias) : null;
    if (b && b.size !== weight.rows) throw new OmniError('SHAPE_MISMATCH', `${op}: bias ${fmt(b.shape)} should have ${weight.rows} elements`);
    const y = this.output(op, out, [outLen, weight.rows], 'f32', [input, b]);
    for (const part of weight.parts) {
      this.matmulPart(weightModules(weight.format), 'input_conv1d', this.weightBindings(part), {
        M: outLen, N: part.rows, K: weight.cols, outStride: weight.rows, outOffset: part.rowStart,
        wStride: weight.stride, wKStride: 1, scaleF16: weight.scaleF16,
        conv: [L, Cin, kernel, stride, padding, dilation, padMode === 'reflect' ? 1 : 0],
      }, input, b, y);
    }
    return y;
  }

  gatherRows(x: Tensor, idx: Int32Array | Tensor, out?: Tensor): Tensor {
    const op = 'gatherRows';
    const input = this.own(op, 'x', x);
    checkRank(op, 'x', input, 2, '[R, C]');
    const [R, C] = input.shape;
    const index = this.indices(op, 'idx', idx, R);
    const y = this.output(op, out, [index.count, C], input.dtype, [input, index.tensor]);
    this.elementKernel('gather_rows', index.count * C, [index.count, R, C], {
      1: input.storage.buffer, 2: index.buffer, 3: y.storage.buffer,
    });
    index.release();
    return y;
  }

  transpose(x: Tensor, out?: Tensor): Tensor {
    const input = this.own('transpose', 'x', x);
    checkRank('transpose', 'x', input, 2, '[M, N]');
    const [M, N] = input.shape;
    const y = this.output('transpose', out, [N, M], input.dtype, [input]);
    const tile = this.tuning.transposeTile;
    this.rt.dispatch({ modules: ['transpose'], constants: { TILE: tile } }, [M, N],
      { 1: input.storage.buffer, 2: y.storage.buffer }, [Math.ceil(N / tile), Math.ceil(M / tile)]);
    return y;
  }

  avgPoolRows(x: Tensor, size: number, out?: Tensor): Tensor {
    const input = this.f32('avgPoolRows', 'x', x);
    checkRank('avgPoolRows', 'x', input, 2, '[L, C]');
    checkInt('avgPoolRows', 'size', size, 1);
    const [L, C] = input.shape;
    const rows = Math.floor(L / size);
    const y = this.output('avgPoolRows', out, [rows, C], 'f32', [input]);
    this.elementKernel('avg_pool_rows', rows * C, [rows, C, size], { 1: input.storage.buffer, 2: y.storage.buffer });
    return y;
  }

  unary(x: Tensor, fn: UnaryFunction, out?: Tensor): Tensor {
    const op = 'unary';
    const input = this.f32(op, 'x', x);
    const params = unaryParams(op, fn);
    // WGSL may assume infinities absent: open clamp bounds become the largest finite f32.
    const { kind } = params;
    const [p0, p1] = fn.kind === 'clamp' ? [Math.max(params.p0, -F32_MAX), Math.min(params.p1, F32_MAX)] : [params.p0, params.p1];
    const y = this.output(op, out, input.shape, 'f32', [input]);
    if (input.size > 0) {
      const wg = this.tuning.elementWG;
      this.rt.dispatch({ modules: ['elementwise_common', 'unary'], constants: { WG: wg, KIND: kind } },
        [input.size, f32(p0), f32(p1)], { 1: input.storage.buffer, 2: y.storage.buffer }, this.rt.grid(Math.ceil(input.size / wg)));
    }
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
    this.elementKernel('snake_beta', L * C, [L, C, up.size, down.size], {
      1: input.storage.buffer, 2: alpha.storage.buffer, 3: beta.storage.buffer,
      4: up.storage.buffer, 5: down.storage.buffer, 6: y.storage.buffer,
    }, ['trig']);
    return y;
  }

  // ---- helpers

  /** A live tensor of this backend. */
  private own(op: string, name: string, t: Tensor): GpuTensor {
    this.rt.assertAlive();
    if (!(t instanceof GpuTensor) || t.owner !== this) {
      throw new OmniError('BAD_INPUT', `${op}: ${name} is not a tensor of this WebGPU backend`);
    }
    if (t.storage.disposed) throw new OmniError('BAD_INPUT', `${op}: ${name} ${fmt(t.shape)} was disposed`);
    return t;
  }

  private f32(op: string, name: string, t: Tensor): GpuTensor {
    const x = this.own(op, name, t);
    checkDtype(op, name, x, 'f32');
    return x;
  }

  private ownWeight(op: string, w: Weight): GpuWeight {
    this.rt.assertAlive();
    if (!(w instanceof GpuWeight) || w.owner !== this) throw new OmniError('BAD_INPUT', `${op}: not a weight of this WebGPU backend`);
    if (w.disposed) throw new OmniError('BAD_INPUT', `${op}: the [${w.rows}, ${w.cols}] weight was disposed`);
    return w;
  }

  /** `out` checked against the result's shape and dtype, or a new tensor. */
  private output(op: string, out: Tensor | undefined, shape: readonly number[], dtype: ElementType,
    inputs: readonly (GpuTensor | null)[]): GpuTensor {
    if (out === undefined) return this.empty(shape, dtype) as GpuTensor;
    const y = this.own(op, 'out', out);
    if (!sameShape(y.shape, shape)) throw new OmniError('SHAPE_MISMATCH', `${op}: out is ${fmt(y.shape)}, the result is ${fmt(shape)}`);
    if (y.dtype !== dtype) throw new OmniError('WRONG_DTYPE', `${op}: out must be ${dtype}, got ${y.dtype}`);
    if (inputs.some((t) => t?.storage === y.storage)) {
      throw new OmniError('BAD_INPUT', `${op}: out must not share storage with an input`);
    }
    return y;
  }

  /** Row indices from the host (checked, uploaded for this call) or an i32 device tensor. */
  private indices(op: string, name: string, ids: RowsInput, limit: number):
    { count: number; buffer: GPUBuffer; tensor: GpuTensor | null; release(): void } {
    if (ids instanceof Int32Array) {
      checkHostIndices(op, name, ids, limit);
      const buffer = this.rt.upload(ids, `${op} ${name}`);
      return { count: ids.length, buffer, tensor: null, release: () => this.rt.release(buffer) };
    }
    if (!(ids instanceof GpuTensor)) throw new OmniError('BAD_INPUT', `${op}: ${name} must be an Int32Array or an i32 tensor`);
    const t = this.own(op, name, ids);
    checkDtype(op, name, t, 'i32');
    // Device indices cannot be checked here; the kernels write zero rows for out-of-range ones.
    return { count: t.size, buffer: t.storage.buffer, tensor: t, release: () => {} };
  }

  private weightConstants(w: GpuWeight, constants: Record<string, number>): Record<string, number> {
    return w.format === 'q8' || w.format === 'q4' ? { ...constants, SCALE_F16: Number(w.scaleF16) } : constants;
  }

  private weightBindings(part: WeightPart): Record<number, GPUBuffer> {
    return part.scales ? { 1: part.data, 2: part.scales } : { 1: part.data };
  }

  /** One weight part (or a dense b) through the kernel tuning.matmulPlan picks for its shape. */
  private matmulPart(
    weightKernel: string[], inputKernel: 'input_rows' | 'input_conv1d', weightBuffers: Record<number, GPUBuffer>,
    shape: {
      M: number; N: number; K: number; outStride: number; outOffset: number; wStride: number; wKStride: number;
      scaleF16: boolean; conv?: number[];
    },
    x: GpuTensor, bias: GpuTensor | null, y: GpuTensor,
  ): void {
    const { M, N, K } = shape;
    if (M === 0 || N === 0) return;
    const uniforms: (number | F32)[] = [
      M, N, K, shape.outStride, shape.outOffset, shape.wStride, shape.wKStride, bias ? 1 : 0,
      ...(shape.conv ?? [0, 0, 0, 0, 0, 0, 0]),
    ];
    const buffers = { ...weightBuffers, 3: x.storage.buffer, 4: bias?.storage.buffer ?? this.placeholder, 5: y.storage.buffer };
    const quantized = weightKernel.includes('weight_scales');
    const modules = ['linear_common', ...weightKernel, inputKernel];
    const plan = this.tuning.matmulPlan(M, N, K, inputKernel === 'input_rows');
    const constants: Record<string, number> = quantized ? { SCALE_F16: Number(shape.scaleF16) } : {};
    if (plan.kind === 'gemv') {
      const { rowsPerWG, threadsPerRow } = plan;
      Object.assign(constants, { ROWS_PER_WG: rowsPerWG, THREADS_PER_ROW: threadsPerRow });
      this.rt.dispatch({ modules: [...modules, 'gemv'], constants }, uniforms, buffers, [...this.rt.grid(Math.ceil(N / rowsPerWG)), M]);
    } else if (plan.kind === 'direct') {
      const { wg, blockM, blockN } = plan;
      Object.assign(constants, { WG: wg, BLOCK_M: blockM, BLOCK_N: blockN });
      const threads = Math.ceil(M / blockM) * Math.ceil(N / blockN);
      this.rt.dispatch({ modules: [...modules, 'matmul_direct'], constants }, uniforms, buffers, this.rt.grid(Math.ceil(threads / wg)));
    } else {
      const { wgM, wgN, tileK } = plan;
      Object.assign(constants, { WG_M: wgM, WG_N: wgN, TILE_K: tileK });
      this.rt.dispatch({ modules: [...modules, 'matmul_tiled'], constants }, uniforms, buffers,
        [Math.ceil(N / (wgN * 4)), Math.ceil(M / (wgM * 4))]);
    }
  }

  private rowKernel(name: string, cols: number, uniforms: (number | F32)[], buffers: Record<number, GPUBuffer>): void {
    const rows = uniforms[0] as number;
    this.rt.dispatch({ modules: ['row_reduce', name], constants: { WG: this.tuning.rowWG(cols) } }, uniforms, buffers, this.rt.grid(rows));
  }

  private elementKernel(name: string, count: number, uniforms: (number | F32)[], buffers: Record<number, GPUBuffer>,
    before: string[] = []): void {
    const wg = this.tuning.elementWG;
    this.rt.dispatch({ modules: [...before, 'elementwise_common', name], constants: { WG: wg } }, uniforms, buffers,
      this.rt.grid(Math.ceil(count / wg)));
  }

  private binary(op: 'add' | 'mul', code: number, a: Tensor, b: Tensor, out?: Tensor): Tensor {
    const left = this.f32(op, 'a', a);
    const right = this.f32(op, 'b', b);
    const rowBroadcast = right.shape.length === 1 && right.shape[0] === lastDim(left);
    if (!sameShape(left.shape, right.shape) && !rowBroadcast) {
      throw new OmniError('SHAPE_MISMATCH', `${op}: b ${fmt(right.shape)} must equal a ${fmt(left.shape)} or be one row [${lastDim(left)}]`);
    }
    const y = this.output(op, out, left.shape, 'f32', [left, right]);
    if (left.size > 0) {
      this.rt.dispatch(
        { modules: ['elementwise_common', 'binary'], constants: { WG: this.tuning.elementWG, OP: code } },
        [left.size, right.size], { 1: left.storage.buffer, 2: right.storage.buffer, 3: y.storage.buffer },
        this.rt.grid(Math.ceil(left.size / this.tuning.elementWG)),
      );
    }
    return y;
  }

  private checkRope(op: string, rope: RopeSpec, headDim: number, streams: number): number {
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
    if (!ROPE_STYLES.includes(rope.style)) throw new OmniError('BAD_INPUT', `${op}: rope.style must be 'half' or 'interleaved', got ${String(rope.style)}`);
    return half;
  }

  /** A RopeSpec's tables, uploaded once: the spec is built once per model and not changed. */
  private ropeTable(rope: RopeSpec): { invFreq: GPUBuffer; stream: GPUBuffer } {
    let table = this.ropeTables.get(rope);
    if (!table) {
      table = { invFreq: this.rt.upload(rope.invFreq, 'rope.invFreq'), stream: this.rt.upload(rope.stream, 'rope.stream') };
      this.ropeTables.set(rope, table);
    }
    return table;
  }

  private maskUniforms(op: string, mask: AttentionOptions['mask'], T: number, kvLength: number):
    { fields: number[]; bounds: Int32Array | null } {
    const kind = mask && typeof mask === 'object' ? MASK_KINDS[mask.kind] : undefined;
    if (kind === undefined) throw new OmniError('BAD_INPUT', `${op}: mask.kind must be none, causal, segments or blockWindow`);
    // [kind, query_start, block_size, back, ahead, segments]
    switch (mask.kind) {
      case 'none':
        return { fields: [kind, 0, 1, 0, 0, 0], bounds: null };
      case 'causal':
        return { fields: [kind, checkInt(op, 'mask.queryStart', mask.queryStart, 0), 1, 0, 0, 0], bounds: null };
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
        return { fields: [kind, 0, 1, 0, 0, bounds.length - 1], bounds };
      }
      case 'blockWindow':
        return {
          fields: [
            kind, 0, checkInt(op, 'mask.blockSize', mask.blockSize, 1),
            checkInt(op, 'mask.back', mask.back, 0), checkInt(op, 'mask.ahead', mask.ahead, 0), 0,
          ],
          bounds: null,
        };
    }
  }

  private scratch(bytes: number): GPUBuffer {
    if (!this.attentionScratch || this.attentionScratch.size < bytes) {
      if (this.attentionScratch) this.rt.release(this.attentionScratch);
      this.attentionScratch = this.rt.createBuffer(bytes, 'attention split-K partial results');
    }
    return this.attentionScratch;
  }
}
