/**
 * The kernel benchmark, the same in Node and in Chromium: our GEMV (f32, q8, q4) and
 * matmul against the peer op (tfjs `matMul` on the matching tfjs backend) on the same
 * shapes, and against the machine's floors measured in the same run.
 */
import type { Backend, Weight } from '@omniweb/core';
import { quantize } from '@omniweb/core';
import { median, type Row } from '../lib/report.js';
import type { Roofline } from '../lib/roofline.js';

export interface Shape { label: string; m: number; n: number; k: number }

/** GEMV rows: one token through a layer (M = 1). Matmul rows: a prefill chunk or a square product. */
export const GEMV_SHAPES: Shape[] = [
  { label: '4096x4096', m: 1, n: 4096, k: 4096 },
  { label: '0.5B q/o 896x896', m: 1, n: 896, k: 896 },
  { label: '0.5B gate/up 4864x896', m: 1, n: 4864, k: 896 },
  { label: '0.5B down 896x4864', m: 1, n: 896, k: 4864 },
  { label: '3B gate/up 11008x2048', m: 1, n: 11008, k: 2048 },
  { label: '3B down 2048x11008', m: 1, n: 2048, k: 11008 },
];
export const MATMUL_SHAPES: Shape[] = [
  { label: '1024^3', m: 1024, n: 1024, k: 1024 },
  { label: '0.5B prefill 512 tok gate 4864x896', m: 512, n: 4864, k: 896 },
];

/** A peer's matmul: returns a function that runs a[M,K]·b[K,N] once and waits for the result. */
export interface Peer {
  name: string;
  prepare(shape: Shape, a: Float32Array, b: Float32Array): Promise<{ run(): Promise<void>; dispose(): void }>;
}

export interface BenchTarget {
  /** e.g. "wasm (Node, 2 threads)". */
  name: string;
  backend: Backend;
  peer: Peer | null;
  /** Thread count whose roofline judges this target (SwiftShader runs on the CPU threads too). */
  rooflineThreads: number;
  formats: Array<'f32' | 'f16' | 'q8' | 'q4'>;
  /** Slow correctness devices get fewer/smaller shapes. */
  shapes?: { gemv: Shape[]; matmul: Shape[] };
  reps: number;
}

function random(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

function weightBytes(format: string, n: number, k: number): number {
  const kp = Math.ceil(k / 32) * 32;
  switch (format) {
    case 'f32': return 4 * n * k;
    case 'f16': return 2 * n * k;
    case 'q8': return n * kp + 4 * n * (kp / 32);
    default: return (n * kp) / 2 + 4 * n * (kp / 32);
  }
}

async function timeIt(run: () => Promise<void>, reps: number, now: () => number): Promise<number> {
  await run(); // warm-up: pipeline compilation, first-touch of pages
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    await run();
    times.push(now() - t0);
  }
  return median(times);
}

export async function runKernelBench(
  targets: BenchTarget[], roofline: Roofline, now: () => number = () => performance.now(),
  log: (line: string) => void = () => {},
): Promise<Row[]> {
  const rows: Row[] = [];
  for (const target of targets) {
    const b = target.backend;
    const shapes = target.shapes ?? { gemv: GEMV_SHAPES, matmul: MATMUL_SHAPES };
    const bw = roofline.readGBps[target.rooflineThreads];
    const peak = roofline.peakGflops[target.rooflineThreads];
    for (const [op, list] of [['gemv', shapes.gemv], ['matmul', shapes.matmul]] as const) {
      for (const shape of list) {
        const wData = random(shape.n * shape.k, 1);
        const xData = random(shape.m * shape.k, 2);
        // The peer multiplies x[M,K] by W^T[K,N]: the same FLOPs and weight bytes as our linear.
        let peerMs: number | null = null;
        if (target.peer) {
          const wt = new Float32Array(shape.k * shape.n);
          for (let i = 0; i < shape.n; i++) for (let j = 0; j < shape.k; j++) wt[j * shape.n + i] = wData[i * shape.k + j];
          const p = await target.peer.prepare(shape, xData, wt);
          peerMs = await timeIt(p.run, target.reps, now);
          p.dispose();
        }
        for (const format of target.formats) {
          const host = format === 'f32' ? { format, rows: shape.n, cols: shape.k, data: wData } as const
            : format === 'f16' ? null : quantize(wData, shape.n, shape.k, format);
          if (!host) continue;
          const w: Weight = b.weight(host);
          const x = b.tensor(xData, [shape.m, shape.k]);
          const y = b.empty([shape.m, shape.n]);
          // Both sides read the result back, as tfjs's `data()` must.
          const ms = await timeIt(async () => { b.linear(x, w, null, y); await b.read(y); }, target.reps, now);
          const bytes = weightBytes(format, shape.n, shape.k) + 4 * shape.m * (shape.k + shape.n);
          const gflops = (2 * shape.m * shape.n * shape.k) / ms / 1e6;
          const gbps = bytes / ms / 1e6;
          // The floor is whichever of memory and compute takes longer for this shape.
          const floorMs = Math.max(bytes / bw / 1e6, (2 * shape.m * shape.n * shape.k) / peak / 1e6);
          rows.push({
            target: target.name, op, shape: shape.label, weights: format,
            ms, 'GB/s': gbps, 'GFLOP/s': gflops,
            'floor ms': floorMs, 'of roofline': floorMs / ms,
            'peer ms (f32)': peerMs, 'speedup vs peer': peerMs === null ? null : peerMs / ms,
          });
          log(`${target.name} ${op} ${shape.label} ${format}: ${ms.toFixed(3)} ms`);
          b.dispose(x); b.dispose(y); b.dispose(w);
        }
      }
    }
  }
  return rows;
}
