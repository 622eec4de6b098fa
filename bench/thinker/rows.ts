/** Table rows of the Thinker benchmark: one per (target, weights, threads, phase). */
import type { Row } from '../lib/report.js';
import type { ComputePeaks } from '../lib/computePeak.js';
import type { Roofline } from '../lib/roofline.js';
import { decodeFloors, prefillFloors, type ThinkerResult, type TokenWork } from './suite.js';

/** llama.cpp (wllama) figures on the same weights: tok/s per phase label ('prefill 512', 'decode @512', …). */
export type PeerFigures = Record<string, number>;

export interface TargetResult {
  target: string;
  weights: string;
  threads: number;
  result: ThinkerResult;
  work: TokenWork;
  /** The floors that judge this target (measured in the same process or page): read bandwidth from `roofline`, compute from `peaks`. */
  roofline: Roofline;
  peaks: ComputePeaks;
  /** wasm targets: the kernel build that ran (its q4 GEMV uses relaxed SIMD's 8-bit dot in 'relaxed'). */
  wasmSimd?: 'relaxed' | 'baseline';
  /** wasm relaxed build: whether its 8-bit dot took bytes above 127 (BackendInfo.wasmDotBytes). */
  wasmDotBytes?: 'unsigned' | 'portable';
  /** A correctness device (SwiftShader): no floors. */
  recordOnly?: boolean;
  prefillPassRows: number;
  peer?: { label: string; figures: PeerFigures } | null;
}

/** The floors of a run in one log line (the f32 peak is peak.c's: roofline.c's 24 accumulators spill, so its figure is not used). */
export const floorsLine = (where: string, f: { roofline: Roofline; peaks: ComputePeaks }) =>
  `floors (${where}): read ${JSON.stringify(f.roofline.readGBps)} GB/s; peaks f32 ${JSON.stringify(f.peaks.f32Gflops)} GFLOP/s, i16 dot ${JSON.stringify(f.peaks.dotGops)} Gop/s`
  + (f.peaks.relaxedDotGops ? `, relaxed 8-bit dot ${JSON.stringify(f.peaks.relaxedDotGops)} Gop/s` : '');

const ctxLabel = (c: number) => (c >= 1024 && c % 1024 === 0 ? `${c / 1024}k` : String(c));
export const decodeLabel = (c: number) => `decode @${ctxLabel(c)}`;

export function thinkerRows(t: TargetResult): Row[] {
  const bw = t.roofline.readGBps[t.threads];
  // The arithmetic the format's kernels can use at best: f32 multiply/add, 16-bit integer dots
  // for q8/q4, or relaxed SIMD's 8-bit dots for q4 in the relaxed build.
  const relaxedQ4 = t.weights === 'q4' && t.wasmSimd === 'relaxed';
  if (relaxedQ4 && !t.peaks.relaxedDotGops) throw new Error(`${t.target}: a relaxed-SIMD q4 run without a measured relaxed dot peak`);
  const peak = (relaxedQ4 ? t.peaks.relaxedDotGops! : t.weights === 'q8' || t.weights === 'q4' ? t.peaks.dotGops : t.peaks.f32Gflops)[t.threads];
  const rows: Row[] = [];
  const row = (phase: string, tokPerS: number, f: { bytes: number; flops: number; memoryMs: number; computeMs: number }, perToken: number) => {
    const memCeil = 1000 / (f.memoryMs / perToken);
    const cmpCeil = 1000 / (f.computeMs / perToken);
    const peerTps = t.peer?.figures[phase] ?? null;
    const floors = !t.recordOnly;
    rows.push({
      target: t.target, weights: t.weights, threads: t.threads, phase,
      'tok/s': tokPerS,
      'MB/token': f.bytes / perToken / 1e6,
      'GFLOP/token': f.flops / perToken / 1e9,
      'mem floor tok/s': floors ? memCeil : null,
      'compute floor tok/s': floors ? cmpCeil : null,
      'of roofline': floors ? tokPerS / Math.min(memCeil, cmpCeil) : null,
      'llama.cpp tok/s': peerTps,
      'vs llama.cpp': peerTps ? tokPerS / peerTps : null,
    });
  };
  const p = t.result.prefill;
  if (p) row(`prefill ${p.tokens}`, p.tokPerS, prefillFloors(t.work, p.tokens, t.prefillPassRows, bw, peak), p.tokens);
  for (const d of t.result.decode) row(decodeLabel(d.context), d.tokPerS, decodeFloors(t.work, d.context, bw, peak), 1);
  return rows;
}
