/**
 * The machine's SIMD compute peak on N threads, for the compute floors of the model
 * benchmarks: bench/.build/peak.wasm (bench/lib/peak.c, `node lib/buildPeak.mjs`) runs in N
 * worker threads released together; GFLOP/s = N × iterations × FLOPs per iteration ÷ the
 * wall time from the first start to the last finish. Best of `reps`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

const here = fileURLToPath(new URL('.', import.meta.url));

const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const instance = new WebAssembly.Instance(new WebAssembly.Module(workerData.wasm), {});
const flag = new Int32Array(workerData.flag);
parentPort.on('message', (iters) => {
  Atomics.add(flag, 1, 1);
  while (Atomics.load(flag, 0) === 0) Atomics.wait(flag, 0, 0, 5);
  const t0 = performance.timeOrigin + performance.now();
  instance.exports.peak_loop(iters);
  const t1 = performance.timeOrigin + performance.now();
  parentPort.postMessage([t0, t1]);
});
`;

export interface SimdPeak {
  /** GFLOP/s now (best of the reps). */
  measure(reps?: number): Promise<number>;
  close(): Promise<void>;
}

export async function simdPeak(threads: number, iters = 20_000_000): Promise<SimdPeak> {
  const wasm = readFileSync(`${here}../.build/peak.wasm`);
  const probe = new WebAssembly.Instance(new WebAssembly.Module(wasm), {});
  const flopsPerIter = (probe.exports.peak_flops_per_iter as () => number)();
  const flagBuffer = new SharedArrayBuffer(8);
  const flag = new Int32Array(flagBuffer);
  const workers = Array.from({ length: threads }, () => new Worker(WORKER, { eval: true, workerData: { wasm, flag: flagBuffer } }));
  const once = async (): Promise<number> => {
    Atomics.store(flag, 0, 0);
    Atomics.store(flag, 1, 0);
    const done = workers.map((w) => new Promise<[number, number]>((resolve) => w.once('message', resolve)));
    for (const w of workers) w.postMessage(iters);
    while (Atomics.load(flag, 1) < threads) await new Promise((resolve) => setTimeout(resolve, 1));
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
    const spans = await Promise.all(done);
    const wall = Math.max(...spans.map((s) => s[1])) - Math.min(...spans.map((s) => s[0]));
    return (threads * iters * flopsPerIter) / wall / 1e6;
  };
  await once(); // compile and warm the workers
  return {
    async measure(reps = 3) {
      let best = 0;
      for (let r = 0; r < reps; r++) best = Math.max(best, await once());
      return best;
    },
    async close() {
      await Promise.all(workers.map((w) => w.terminate()));
    },
  };
}
