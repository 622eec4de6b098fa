/**
 * The model benchmarks' pieces without Node imports, so benchmark pages run them too: seeded
 * inputs, and timing one pass through the op-profiling backend with its layer loop marked.
 */
import type { OpProfile, OpStat } from './opProfile.js';

export interface PassTiming {
  /** Whole pass, ms. */
  ms: number;
  /** Between the first and last layer marks, ms. */
  layersMs: number;
  profile: Map<string, Map<string, OpStat>>;
}

/**
 * Runs `pass` once with the profile recording; `pass` gets a `mark(phase)` to call when the
 * layer loop starts ('layers') and ends ('outside'). `sync` is awaited at each mark so a
 * queueing backend (WebGPU) has finished the work before the clock is read.
 */
export async function timePass(
  prof: OpProfile, sync: () => Promise<void>, timedOps: boolean,
  pass: (mark: (phase: 'layers' | 'outside') => Promise<void>) => Promise<void>,
): Promise<PassTiming> {
  prof.reset();
  prof.setPhase('outside');
  prof.start({ timed: timedOps });
  let layersStart = 0;
  let layersMs = 0;
  const t0 = performance.now();
  await pass(async (phase) => {
    await sync();
    if (phase === 'layers') layersStart = performance.now();
    else layersMs += performance.now() - layersStart;
    prof.setPhase(phase);
  });
  await sync();
  const ms = performance.now() - t0;
  prof.stop();
  return { ms, layersMs, profile: prof.stats() };
}

/** Seeded uniform values in [-scale, scale). */
export function noise(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}
