/**
 * Compute peaks measured with bench/thinker/peak.c (see there): f32x4 multiply/add without
 * register spills, and the integer dot (i32x4.dot_i16x8_s + add), per thread count.
 */
export interface ComputePeaks {
  /** f32 SIMD multiply and add, GFLOP/s (one FLOP per lane per instruction). */
  f32Gflops: Record<number, number>;
  /** 16-bit integer dot products, G multiply-adds/s × 2 (so comparable with FLOPs). */
  dotGops: Record<number, number>;
  /** Relaxed SIMD's 8-bit dot products, likewise; only from the relaxed-SIMD build of peak.c. */
  relaxedDotGops?: Record<number, number>;
}

/** Each returns the milliseconds its loops ran, timed inside the probe (bench/lib/timed_threads.h). */
interface PeakModule {
  _peak_f32(iters: number, threads: number): number;
  _peak_dot(iters: number, threads: number): number;
  _peak_relaxed_dot?(iters: number, threads: number): number;
}

export async function measureComputePeaks(
  load: () => Promise<PeakModule>, threads: number[],
): Promise<ComputePeaks> {
  const m = await load();
  const best = (run: () => number) => {
    let ms = Infinity;
    // Many short runs, the fastest kept: on shared cores that is the run least disturbed.
    for (let r = 0; r < 7; r++) ms = Math.min(ms, run());
    return ms;
  };
  const iters = 2_000_000;
  const f32Gflops: Record<number, number> = {};
  const dotGops: Record<number, number> = {};
  const relaxed = m._peak_relaxed_dot?.bind(m);
  const relaxedDotGops: Record<number, number> = {};
  for (const t of threads) {
    f32Gflops[t] = (iters * 48 * t) / best(() => m._peak_f32(iters, t)) / 1e6;
    dotGops[t] = (iters * 128 * t) / best(() => m._peak_dot(iters, t)) / 1e6;
    if (relaxed) relaxedDotGops[t] = (iters * 256 * t) / best(() => relaxed(iters, t)) / 1e6;
  }
  return relaxed ? { f32Gflops, dotGops, relaxedDotGops } : { f32Gflops, dotGops };
}

/** Keeps, per entry, the larger of two measurements of the same floors (e.g. the start and the end of a run). */
export function bestOf<T extends { [K in keyof T]: Record<number, number> }>(a: T, b: T): T {
  const out = {} as { [K in keyof T]: Record<number, number> };
  for (const key of Object.keys(a) as (keyof T)[]) {
    const entry: Record<number, number> = {};
    for (const t of Object.keys(a[key]).map(Number)) entry[t] = Math.max(a[key][t], b[key]?.[t] ?? 0);
    out[key] = entry;
  }
  return out as T;
}
