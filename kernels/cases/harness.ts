/**
 * What every kernel case is built from: seeded data, host weights in each format,
 * NaN-poisoned outputs, a disposal scope, and one error measure.
 */
import {
  quantize, toF16Array, dequantize, f16ToF32,
  type Backend, type BackendInfo, type ElementType, type HostMatrix, type Tensor, type Weight, type WeightFormat,
} from '@omniweb/core';

export interface CaseResult {
  /** Largest error over the compared elements, in the case's own measure (see `compare`). */
  maxRelErr: number;
  bound: number;
}

export interface KernelCase {
  name: string;
  /** The Backend method under test (the meta-test perturbs it), or 'validation' for the argument checks. */
  op: OpName | 'validation';
  run(backend: Backend, oracle: Backend): Promise<CaseResult>;
}

export type OpName = Exclude<keyof Backend, 'info'>;

/** A bound that may loosen where the backend is allowed half-precision arithmetic. */
export type Bound = number | ((info: BackendInfo) => number);

/**
 * Defines a case: `body` gets both backends wrapped in disposal scopes and returns the
 * error it measured. Everything the body creates is disposed when it ends, pass or fail.
 */
export function defineCase(
  name: string, op: KernelCase['op'], bound: Bound,
  body: (backend: Backend, oracle: Backend) => Promise<number>,
): KernelCase {
  return {
    name,
    op,
    async run(backend, oracle) {
      const backendScope = scope(backend);
      const oracleScope = scope(oracle);
      try {
        const maxRelErr = await body(backendScope.backend, oracleScope.backend);
        return { maxRelErr, bound: typeof bound === 'number' ? bound : bound(backend.info) };
      } finally {
        backendScope.close();
        oracleScope.close();
      }
    },
  };
}

function isResource(value: unknown): value is Tensor | Weight {
  return typeof value === 'object' && value !== null && 'backend' in value && ('shape' in value || 'rows' in value);
}

/** A view of `backend` that remembers every tensor and weight it hands out, to dispose them at close. */
function scope(backend: Backend): { backend: Backend; close(): void } {
  const created = new Set<Tensor | Weight>();
  const wrapped = new Proxy(backend, {
    get(target, prop) {
      // The target as receiver: a class backend's getters may read private fields.
      const value = Reflect.get(target, prop);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        const out = value.apply(target, args);
        // A reshape shares its source's storage: disposing the source frees both.
        if (prop !== 'reshape' && isResource(out)) created.add(out);
        return out;
      };
    },
  });
  return {
    backend: wrapped,
    close() {
      for (const resource of created) backend.dispose(resource);
      created.clear();
    },
  };
}

// ---------------------------------------------------------------- data

/** mulberry32: small, fast, and the same sequence on every platform. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** A seed derived from a case name, so each case draws its own data. */
export function seedOf(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Uniform values in [-scale, scale) (optionally shifted by `offset`). */
export function uniform(random: () => number, count: number, scale = 1, offset = 0): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = offset + scale * (2 * random() - 1);
  return out;
}

export function integers(random: () => number, count: number, limit: number): Int32Array {
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.floor(random() * limit);
  return out;
}

export type WeightVariant = { format: WeightFormat; scales?: 'f32' | 'f16' };

/** Every weight format the loader produces: f32, f16, q8 and q4, the quantized ones with f32 or f16 scales. */
export const WEIGHT_VARIANTS: readonly WeightVariant[] = [
  { format: 'f32' }, { format: 'f16' },
  { format: 'q8', scales: 'f32' }, { format: 'q8', scales: 'f16' },
  { format: 'q4', scales: 'f32' }, { format: 'q4', scales: 'f16' },
];

export function variantName(v: WeightVariant): string {
  return v.scales ? `${v.format} (${v.scales} scales)` : v.format;
}

/** `values` [rows, cols] in the host form of `variant`. */
export function hostMatrix(values: Float32Array, rows: number, cols: number, variant: WeightVariant): HostMatrix {
  switch (variant.format) {
    case 'f32': return { format: 'f32', rows, cols, data: values };
    case 'f16': return { format: 'f16', rows, cols, data: toF16Array(values) };
    default: return quantize(values, rows, cols, variant.format, variant.scales);
  }
}

/** The values a host matrix stands for, as f32 — what a correct kernel multiplies by. */
export function matrixValues(m: HostMatrix): Float32Array {
  if (m.format === 'f32') return m.data;
  if (m.format === 'f16') return Float32Array.from(m.data, f16ToF32);
  return dequantize(m);
}

/** Quantized and f16 weights may be dequantized in half precision where the adapter has shader-f16. */
export function weightBound(format: WeightFormat, f32Bound: number): Bound {
  // An f16 product q·scale carries a relative error of 2^-11 per weight.
  return format === 'f32' ? f32Bound : (info) => (info.shaderF16 ? Math.max(f32Bound, 2 ** -11) : f32Bound);
}

// ---------------------------------------------------------------- outputs

/** An output tensor filled with NaN (or INT32_MIN), so elements a kernel skips show up. */
export function poisoned(backend: Backend, shape: readonly number[], dtype: ElementType = 'f32'): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const fill = dtype === 'f32' ? new Float32Array(size).fill(NaN) : new Int32Array(size).fill(-0x80000000);
  return backend.tensor(fill, shape);
}

/**
 * max_i |actual_i − expected_i| / max(|expected_i|, floor_i).
 * `floor` is the scale below which an error is judged absolutely: for a dot product,
 * Σ|x||w| (an f32 sum is accurate to that scale, not to a cancelled result); for an
 * exact op, 1, so any difference counts. A NaN, an infinity or a length mismatch is
 * an infinite error.
 */
export function compare(
  actual: Float32Array | Int32Array, expected: Float32Array | Int32Array,
  floor: number | Float32Array | Float64Array = 0,
): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i];
    if (!Number.isFinite(a) && a !== expected[i]) return Infinity;
    const diff = Math.abs(a - expected[i]);
    if (diff === 0) continue;
    const f = typeof floor === 'number' ? floor : floor[i];
    worst = Math.max(worst, diff / Math.max(Math.abs(expected[i]), f, Number.MIN_VALUE));
  }
  return worst;
}

export function absolute(values: Float32Array): Float32Array {
  return values.map(Math.abs);
}
