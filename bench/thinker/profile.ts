/**
 * Per-op time of a decode step. The wasm backend runs each op to completion before it
 * returns, so wrapping its methods and reading the clock around each call attributes the
 * step's time to ops (and matrix products to the weights they read). Recording is off
 * unless `start()` is called, and then costs one closure call per op.
 */
import type { Backend, Weight } from '@omniweb/core';

export interface OpProfiler {
  /** The backend to load the model with (forwards every call). */
  backend: Backend;
  start(): void;
  stop(): void;
  /** Milliseconds per key, summed since start(). */
  totals(): Map<string, { ms: number; calls: number }>;
}

/** Names a linear by its weight's shape, in the Thinker's terms. */
export function thinkerMatrixNames(hidden: number, qRows: number, kvRows: number, intermediate: number, vocab: number) {
  return (w: Weight): string => {
    const shape = `${w.rows}x${w.cols}`;
    if (w.rows === vocab) return `lm_head ${shape}`;
    if (w.rows === intermediate) return `gate/up ${shape}`;
    if (w.cols === intermediate) return `down ${shape}`;
    if (w.rows === kvRows) return `k/v ${shape}`;
    if (w.rows === qRows && w.cols === hidden) return `q/o ${shape}`;
    return shape;
  };
}

export function profileOps(inner: Backend, nameLinear: (w: Weight) => string, now: () => number = () => performance.now()): OpProfiler {
  let on = false;
  const totals = new Map<string, { ms: number; calls: number }>();
  const wrapped = new Map<PropertyKey, unknown>();
  const add = (key: string, ms: number) => {
    const t = totals.get(key) ?? { ms: 0, calls: 0 };
    t.ms += ms;
    t.calls++;
    totals.set(key, t);
  };
  const timed = <T extends (...args: never[]) => unknown>(key: string, method: T, self: unknown): T => ((...args: Parameters<T>) => {
    if (!on) return method.apply(self, args);
    const t0 = now();
    const result = method.apply(self, args);
    add(key, now() - t0);
    return result;
  }) as T;
  // The 8-bit KV cache's ops, under their own names ('kv8.attention', …).
  const kv8 = inner.kv8 && Object.fromEntries(Object.entries(inner.kv8).map(([name, method]) => [name, timed(`kv8.${name}`, method, inner.kv8)]));
  const backend = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'kv8') return kv8;
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      let fn = wrapped.get(prop);
      if (!fn) {
        const method = value as (...args: unknown[]) => unknown;
        fn = (...args: unknown[]) => {
          if (!on) return method.apply(target, args);
          const t0 = now();
          const result = method.apply(target, args);
          const key = prop === 'linear' ? `linear ${nameLinear(args[1] as Weight)}`
            : prop === 'linears' ? `linears ${(args[1] as { w: Weight }[]).map((p) => nameLinear(p.w)).join(' + ')}`
            : String(prop);
          add(key, now() - t0);
          return result;
        };
        wrapped.set(prop, fn);
      }
      return fn;
    },
  });
  return {
    backend,
    start() { totals.clear(); on = true; },
    stop() { on = false; },
    totals: () => new Map(totals),
  };
}
