import type { ElementType, LinearPart, Tensor, UnaryFunction, Weight } from './backend.js';
import { OmniError } from './errors.js';

/** Argument checks that run before any work is queued; messages name the op and the values. */

export function fmt(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

export function checkShape(op: string, shape: unknown): readonly number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new OmniError('BAD_INPUT', `${op}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  return shape as number[];
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

export function checkInt(op: string, name: string, value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `≥ ${min}` : `in [${min}, ${max}]`;
    throw new OmniError('BAD_INPUT', `${op}: ${name} must be an integer ${range}, got ${String(value)}`);
  }
  return value;
}

export function checkFinite(op: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new OmniError('BAD_INPUT', `${op}: ${name} must be a finite number, got ${String(value)}`);
  }
  return value;
}

export function checkDtype(op: string, name: string, t: Tensor, dtype: ElementType): void {
  if (t.dtype !== dtype) throw new OmniError('WRONG_DTYPE', `${op}: ${name} must be ${dtype}, got ${t.dtype}`);
}

export function checkRank(op: string, name: string, t: Tensor, rank: number, what: string): void {
  if (t.shape.length !== rank) {
    throw new OmniError('SHAPE_MISMATCH', `${op}: ${name} must be ${what}, got ${fmt(t.shape)}`);
  }
}

/** Last dimension of a tensor viewed as rows (a rank-0 tensor is one row of one element). */
export function lastDim(t: Tensor): number {
  return t.shape.length === 0 ? 1 : t.shape[t.shape.length - 1];
}

/** linear's result shape, once x's last dim is the weight's width and a bias holds one value per row. */
export function linearShape(op: string, x: Tensor, w: Weight, bias: Tensor | null): number[] {
  if (x.shape.length < 1 || lastDim(x) !== w.cols) {
    throw new OmniError('SHAPE_MISMATCH', `${op}: x ${fmt(x.shape)} has last dim ${lastDim(x)}, weight is [${w.rows}, ${w.cols}]`);
  }
  if (bias && bias.size !== w.rows) throw new OmniError('SHAPE_MISMATCH', `${op}: bias ${fmt(bias.shape)} should have ${w.rows} elements`);
  return [...x.shape.slice(0, -1), w.rows];
}

/**
 * linears' parts: a non-empty array, each part with a weight and an out that no other part
 * writes or reads. Returns, for each part, the tensors its out must not share storage with
 * (x, every bias, the other outs); the backend's own linear checks do the rest.
 */
export function checkLinearParts(op: string, x: Tensor, parts: readonly LinearPart[]): (Tensor | null)[][] {
  if (!Array.isArray(parts) || parts.length === 0) throw new OmniError('BAD_INPUT', `${op}: parts must be a non-empty array`);
  parts.forEach((p, i) => {
    if (p === null || typeof p !== 'object' || !p.w || !p.out) throw new OmniError('BAD_INPUT', `${op}: parts[${i}] needs a weight w and an out`);
  });
  const biases = parts.map((p) => p.bias ?? null);
  return parts.map((p) => [x, ...biases, ...parts.filter((q) => q !== p).map((q) => q.out)]);
}

/** Host index array: Int32Array with every value in [0, limit). */
export function checkHostIndices(op: string, name: string, ids: Int32Array, limit: number): void {
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < 0 || ids[i] >= limit) {
      throw new OmniError('BAD_INPUT', `${op}: ${name}[${i}] = ${ids[i]} is outside [0, ${limit})`);
    }
  }
}

/** Kernel numbering of the unary functions, shared by unary.wgsl and omni_unary (kernels/wasm). */
const UNARY_CODES = { relu: 0, sigmoid: 1, tanh: 2, silu: 3, sqrt: 4, clamp: 5, affine: 6 } as const;

/** The unary kernels' function number and two parameters for `fn`, checked (clamp bounds may be ±Infinity). */
export function unaryParams(op: string, fn: UnaryFunction): { kind: number; p0: number; p1: number } {
  const kind = fn !== null && typeof fn === 'object' && Object.hasOwn(UNARY_CODES, fn.kind) ? UNARY_CODES[fn.kind] : undefined;
  if (kind === undefined) throw new OmniError('BAD_INPUT', `${op}: unknown function ${JSON.stringify((fn as { kind?: unknown } | null)?.kind)}`);
  if (fn.kind === 'clamp') {
    const { min, max } = fn;
    if (typeof min !== 'number' || typeof max !== 'number' || Number.isNaN(min) || Number.isNaN(max) || min > max) {
      throw new OmniError('BAD_INPUT', `${op}: clamp bounds [${String(min)}, ${String(max)}] must be numbers with min ≤ max`);
    }
    return { kind, p0: min, p1: max };
  }
  if (fn.kind === 'affine') return { kind, p0: checkFinite(op, 'scale', fn.scale), p1: checkFinite(op, 'shift', fn.shift) };
  return { kind, p0: 0, p1: 0 };
}
