/** Memory-bandwidth and SIMD compute floors of this machine, measured in the calling run. */
export interface Roofline {
  /** Streaming read bandwidth, GB/s, per thread count. */
  readGBps: Record<number, number>;
  /** Peak SIMD multiply/add throughput, GFLOP/s, per thread count. */
  peakGflops: Record<number, number>;
}

interface ProbeModule {
  _roofline_alloc(n: number): number;
  _roofline_free(p: number): void;
  /** Milliseconds, timed inside the probe from all threads ready to all done. */
  _roofline_read(p: number, n: number, threads: number): number;
  _roofline_fma(iters: number, threads: number): number;
}

export async function measureRoofline(
  load: () => Promise<ProbeModule>, threads: number[],
): Promise<Roofline> {
  const m = await load();
  const n = 64 * 1024 * 1024; // 256 MB: far beyond every cache level
  const p = m._roofline_alloc(n);
  const readGBps: Record<number, number> = {};
  const peakGflops: Record<number, number> = {};
  for (const t of threads) {
    let best = Infinity;
    for (let r = 0; r < 5; r++) best = Math.min(best, m._roofline_read(p, n, t));
    readGBps[t] = (n * 4) / best / 1e6;
    const iters = 10_000_000;
    let bestFma = Infinity;
    for (let r = 0; r < 3; r++) bestFma = Math.min(bestFma, m._roofline_fma(iters, t));
    peakGflops[t] = (iters * 24 * 4 * t) / bestFma / 1e6; // 24 SIMD ops × 4 lanes per iteration per thread
  }
  m._roofline_free(p);
  return { readGBps, peakGflops };
}
