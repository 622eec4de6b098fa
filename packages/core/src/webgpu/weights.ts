import type { HostMatrix, Weight, WeightFormat } from '../backend.js';
import { OmniError } from '../errors.js';
import { QUANT_GROUP, paddedCols } from '../quant.js';
import type { GpuRuntime } from './runtime.js';

/** Rows [rowStart, rowStart + rows) of a weight, in buffers of at most maxBufferBytes. */
export interface WeightPart {
  rowStart: number;
  rows: number;
  data: GPUBuffer;
  /** q8/q4 group scales of these rows. */
  scales: GPUBuffer | null;
}

export class GpuWeight implements Weight {
  readonly backend = 'webgpu' as const;
  disposed = false;
  constructor(
    readonly owner: object,
    readonly rows: number,
    readonly cols: number,
    readonly format: WeightFormat,
    /** Row stride on the device in elements: cols padded to 8 (f32/f16) or to the quant group (q8/q4). */
    readonly stride: number,
    readonly scaleF16: boolean,
    readonly parts: readonly WeightPart[],
    readonly byteSize: number,
  ) {}
}

/** WGSL modules that implement `load_w8` for a weight format (see weight_common.wgsl). */
export function weightModules(format: WeightFormat): string[] {
  switch (format) {
    case 'f32': return ['weight_common', 'weight_f32'];
    case 'f16': return ['weight_common', 'weight_f16'];
    case 'q8': return ['weight_common', 'weight_scales', 'weight_q8'];
    case 'q4': return ['weight_common', 'weight_scales', 'weight_q4'];
  }
}

function bad(message: string): never {
  throw new OmniError('BAD_INPUT', `weight: ${message}`);
}

function checkHostMatrix(m: HostMatrix): void {
  if (m === null || typeof m !== 'object') bad('expected a HostMatrix object');
  if (!Number.isInteger(m.rows) || m.rows < 1 || !Number.isInteger(m.cols) || m.cols < 1) {
    bad(`rows and cols must be positive integers, got [${m.rows}, ${m.cols}]`);
  }
  const shape = `[${m.rows}, ${m.cols}]`;
  switch (m.format) {
    case 'f32':
      if (!(m.data instanceof Float32Array)) bad('f32 data must be a Float32Array');
      if (m.data.length !== m.rows * m.cols) throw new OmniError('SHAPE_MISMATCH', `weight: ${m.data.length} f32 values for ${shape}`);
      return;
    case 'f16':
      if (!(m.data instanceof Uint16Array)) bad('f16 data must be a Uint16Array of half bits');
      if (m.data.length !== m.rows * m.cols) throw new OmniError('SHAPE_MISMATCH', `weight: ${m.data.length} f16 values for ${shape}`);
      return;
    case 'q8':
    case 'q4': {
      if (m.paddedCols !== paddedCols(m.cols)) bad(`paddedCols ${m.paddedCols} should be ${paddedCols(m.cols)} for ${m.cols} cols`);
      if (!(m.data instanceof Uint8Array)) bad(`${m.format} data must be a Uint8Array`);
      const bytes = m.format === 'q8' ? m.rows * m.paddedCols : (m.rows * m.paddedCols) / 2;
      if (m.data.length !== bytes) throw new OmniError('SHAPE_MISMATCH', `weight: ${m.data.length} ${m.format} bytes for ${shape}, expected ${bytes}`);
      if (!(m.scales instanceof Float32Array || m.scales instanceof Uint16Array)) bad('scales must be a Float32Array or a Uint16Array of f16 bits');
      const groups = m.rows * (m.paddedCols / QUANT_GROUP);
      if (m.scales.length !== groups) throw new OmniError('SHAPE_MISMATCH', `weight: ${m.scales.length} scales for ${shape}, expected ${groups}`);
      return;
    }
    default:
      throw new OmniError('UNSUPPORTED_DTYPE', `weight: unknown format ${String((m as { format: unknown }).format)}`);
  }
}

/**
 * Upload a host matrix. f32/f16 rows are padded to a multiple of 8 columns so every kernel can
 * load 8 aligned elements at a time; rows are split across buffers when the weight exceeds the
 * runtime's buffer limit.
 */
export function uploadWeight(rt: GpuRuntime, owner: object, m: HostMatrix): GpuWeight {
  checkHostMatrix(m);
  const quantized = m.format === 'q8' || m.format === 'q4';
  const stride = quantized ? m.paddedCols : Math.ceil(m.cols / 8) * 8;
  const elementBytes = { f32: 4, f16: 2, q8: 1, q4: 0.5 }[m.format];
  const rowBytes = stride * elementBytes;
  const groupsPerRow = stride / QUANT_GROUP;
  const scaleF16 = quantized && m.scales instanceof Uint16Array;
  const scaleRowBytes = quantized ? groupsPerRow * (scaleF16 ? 2 : 4) : 0;
  const rowsPerPart = Math.floor(rt.maxBufferBytes / Math.max(rowBytes, scaleRowBytes));
  if (rowsPerPart < 1) {
    throw new OmniError('OUT_OF_MEMORY', `weight: one row of ${m.cols} ${m.format} values (${rowBytes} bytes) exceeds the ${rt.maxBufferBytes}-byte buffer limit`);
  }
  const parts: WeightPart[] = [];
  let byteSize = 0;
  try {
    for (let rowStart = 0; rowStart < m.rows; rowStart += rowsPerPart) {
      const rows = Math.min(rowsPerPart, m.rows - rowStart);
      const what = `a [${rows}, ${m.cols}] ${m.format} weight part`;
      let data: GPUBuffer;
      let scales: GPUBuffer | null = null;
      if (m.format === 'f32' || m.format === 'f16') {
        const host = m.format === 'f32' ? new Float32Array(rows * stride) : new Uint16Array(rows * stride);
        if (stride === m.cols) host.set(m.data.subarray(rowStart * m.cols, (rowStart + rows) * m.cols));
        else for (let r = 0; r < rows; r++) host.set(m.data.subarray((rowStart + r) * m.cols, (rowStart + r + 1) * m.cols), r * stride);
        data = rt.upload(host, what);
      } else {
        data = rt.upload(m.data.subarray(rowStart * rowBytes, (rowStart + rows) * rowBytes), what);
        scales = rt.upload(m.scales.subarray(rowStart * groupsPerRow, (rowStart + rows) * groupsPerRow), `${what}'s scales`);
      }
      parts.push({ rowStart, rows, data, scales });
      byteSize += data.size + (scales?.size ?? 0);
    }
  } catch (e) {
    for (const part of parts) {
      rt.release(part.data);
      if (part.scales) rt.release(part.scales);
    }
    throw e;
  }
  return new GpuWeight(owner, m.rows, m.cols, m.format, stride, scaleF16, parts, byteSize);
}
