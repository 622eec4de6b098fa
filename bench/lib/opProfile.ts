/**
 * A Backend that forwards every call to a real one and, while recording, counts the
 * matrix FLOPs each op issues (linear, matmul, conv1d, attention: 2 per multiply-add, as
 * the calls are made, zero taps and masked-out keys excluded) and, on a backend whose ops
 * return when done (wasm), the wall time of each op. Models load and run through it
 * unchanged, so a benchmark's FLOP count is the one the model really issued.
 */
import type { AttentionOptions, Backend, Tensor, Weight } from '@omniweb/core';

export interface OpStat {
  calls: number;
  ms: number;
  flops: number;
  /** Bytes of matrix weights the op read (linear, conv1d, embedding rows excluded). */
  weightBytes: number;
}

export interface OpProfile {
  /** The wrapping backend: load and run models through this. */
  backend: Backend;
  /** Count FLOPs (and time ops when `timed`) until `stop()`. */
  start(options?: { timed?: boolean }): void;
  stop(): void;
  /** Moves later ops into another bucket (e.g. "blocks" vs "outside"). */
  setPhase(phase: string): void;
  /** Per phase, per op label. */
  stats(): Map<string, Map<string, OpStat>>;
  reset(): void;
}

/** Keys each query row sees under the mask, summed over query rows. */
function keysSeen(q: Tensor, k: Tensor, opts: AttentionOptions): number {
  const t = q.shape[0];
  const s = opts.kvLength ?? k.shape[0];
  const mask = opts.mask;
  switch (mask.kind) {
    case 'none': return t * s;
    case 'causal': {
      let sum = 0;
      for (let i = 0; i < t; i++) sum += Math.min(s, mask.queryStart + i + 1);
      return sum;
    }
    case 'segments': {
      let sum = 0;
      for (let i = 1; i < mask.bounds.length; i++) sum += (mask.bounds[i] - mask.bounds[i - 1]) ** 2;
      return sum;
    }
    case 'blockWindow': {
      let sum = 0;
      const blocks = Math.ceil(s / mask.blockSize);
      for (let i = 0; i < t; i++) {
        const qb = Math.floor(i / mask.blockSize);
        const lo = Math.max(0, qb - mask.back) * mask.blockSize;
        const hi = Math.min(blocks, qb + mask.ahead + 1) * mask.blockSize;
        sum += Math.min(hi, s) - lo;
      }
      return sum;
    }
  }
}

function rowsOf(x: Tensor): number {
  return x.size / x.shape[x.shape.length - 1];
}

/** Label and FLOPs of one call. */
function classify(op: string, args: unknown[], result: unknown): { label: string; flops: number; weightBytes?: number } {
  switch (op) {
    case 'linear': {
      const [x, w] = args as [Tensor, Weight];
      const m = rowsOf(x);
      return { label: m === 1 ? `linear M=1 (${w.format})` : `linear (${w.format})`, flops: 2 * m * w.rows * w.cols, weightBytes: w.byteSize };
    }
    case 'matmul': {
      const [a, b, opts] = args as [Tensor, Tensor, { transposeB?: boolean } | undefined];
      const n = opts?.transposeB ? b.shape[0] : b.shape[1];
      return { label: 'matmul', flops: 2 * rowsOf(a) * a.shape[a.shape.length - 1] * n };
    }
    case 'conv1d': {
      const [, w] = args as [Tensor, Weight];
      const out = result as Tensor;
      return { label: `conv1d (${w.format})`, flops: 2 * out.shape[0] * w.rows * w.cols, weightBytes: w.byteSize };
    }
    case 'attention': {
      const [q, k, , opts] = args as [Tensor, Tensor, Tensor, AttentionOptions];
      const heads = q.shape[1];
      const d = q.shape[2];
      return { label: `attention (${opts.mask.kind})`, flops: 4 * heads * d * keysSeen(q, k, opts) };
    }
    default:
      return { label: op, flops: 0 };
  }
}

/** Calls that are bookkeeping, not work. */
const UNCOUNTED = new Set(['reshape', 'dispose', 'destroy', 'info']);

export function profileBackend(inner: Backend): OpProfile {
  let recording = false;
  let timed = false;
  let phase = 'all';
  let table = new Map<string, Map<string, OpStat>>();
  const record = (label: string, flops: number, weightBytes: number, ms: number) => {
    let ops = table.get(phase);
    if (!ops) table.set(phase, ops = new Map());
    const s = ops.get(label) ?? { calls: 0, ms: 0, flops: 0, weightBytes: 0 };
    s.calls++;
    s.ms += ms;
    s.flops += flops;
    s.weightBytes += weightBytes;
    ops.set(label, s);
  };
  const cache = new Map<PropertyKey, unknown>();
  const backend = new Proxy(inner, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      let wrapped = cache.get(prop);
      if (!wrapped) {
        const op = String(prop);
        const fn = value as (...a: unknown[]) => unknown;
        wrapped = (...args: unknown[]) => {
          if (!recording || UNCOUNTED.has(op)) return fn.apply(target, args);
          const t0 = timed ? performance.now() : 0;
          const result = fn.apply(target, args);
          const { label, flops, weightBytes = 0 } = classify(op, args, result);
          if (result instanceof Promise) {
            return result.then((r) => {
              record(label, flops, weightBytes, timed ? performance.now() - t0 : 0);
              return r;
            });
          }
          record(label, flops, weightBytes, timed ? performance.now() - t0 : 0);
          return result;
        };
        cache.set(prop, wrapped);
      }
      return wrapped;
    },
  });
  return {
    backend,
    start(options = {}) {
      recording = true;
      timed = options.timed ?? false;
    },
    stop() {
      recording = false;
    },
    setPhase(p) {
      phase = p;
    },
    stats: () => table,
    reset() {
      table = new Map();
      phase = 'all';
    },
  };
}

/** Sum over phases (or one phase) of an op table. */
export function totals(stats: Map<string, Map<string, OpStat>>, phases?: string[]): { flops: number; ms: number; weightBytes: number; ops: Map<string, OpStat> } {
  const ops = new Map<string, OpStat>();
  let flops = 0;
  let ms = 0;
  let weightBytes = 0;
  for (const [p, table] of stats) {
    if (phases && !phases.includes(p)) continue;
    for (const [label, s] of table) {
      const into = ops.get(label) ?? { calls: 0, ms: 0, flops: 0, weightBytes: 0 };
      into.calls += s.calls;
      into.ms += s.ms;
      into.flops += s.flops;
      into.weightBytes += s.weightBytes;
      ops.set(label, into);
      flops += s.flops;
      ms += s.ms;
      weightBytes += s.weightBytes;
    }
  }
  return { flops, ms, weightBytes, ops };
}

/** "linear (f32) 71%, attention (segments) 12%, …": ops by share of timed op time. */
export function topOps(ops: Map<string, OpStat>, count = 4): string {
  const total = [...ops.values()].reduce((a, s) => a + s.ms, 0);
  if (total <= 0) return '—';
  return [...ops.entries()]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, count)
    .map(([label, s]) => `${label} ${Math.round((100 * s.ms) / total)}%`)
    .join(', ');
}
