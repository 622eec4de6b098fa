/**
 * The WebGPU rows of `pnpm bench:speech`: Dawn in Node (the `webgpu` package) on SwiftShader,
 * Vulkan on this machine's CPU. SwiftShader is a correctness device that reaches ~0.1–1 GFLOP/s,
 * so a full DiT chunk (~3.9 TFLOP) would take hours; each part runs scaled down and is
 * extrapolated, and its "ran" column says how:
 *
 * - DiT: 1 of the 22 blocks, 1 evaluation (both guidance branches) of a streaming window; the
 *   chunk = the evaluation scaled to every block (the rest of the forward once) × the solver's
 *   evaluations (36 rk4, 18 midpoint, 9 euler: each evaluation does the same work).
 * - BigVGAN: two short pieces (default 4 and 12 of the streaming piece's 112 mel frames), fitted
 *   as a + b·frames and read at 112: its FLOPs are linear in frames, but on SwiftShader a large
 *   part of the time is not.
 * - Talker: the decode loop of two shallow stacks (default 1 and 2 of 24 layers), a few codes
 *   each, fitted as a + b·layers and read at 24.
 *
 * Queued ops have no per-op times, so these rows list no top ops.
 */
import * as core from '@omniweb/core';
import type { DitConfig, OmniConfig, Speaker, WeightSource } from '@omniweb/core';
import { BigVgan, solverEvaluations, type DitSolver } from '@omniweb/vocoder';
import { profileBackend, totals, type OpProfile, type OpStat } from '../lib/opProfile.js';
import { median } from '../lib/report.js';
import { medianBy, noise, timePass, type PassTiming } from '../lib/towerBench.js';
import { ditEvaluations, streamWindows } from './ditPass.js';
import { fromRuns, talkerDecode, type Result } from './measure.js';

export const WEBGPU_TARGET = 'webgpu Node (SwiftShader)';

export interface WebGpuSpeechOptions {
  checkpoint: WeightSource;
  config: OmniConfig;
  voice: Speaker;
  solvers: readonly DitSolver[];
  /** DiT blocks run (of 22). */
  ditLayers: number;
  /** The two piece lengths (mel frames, of 112) BigVGAN's time is fitted through. */
  bigvganFrames: readonly number[];
  /** The two Talker depths the per-code time is fitted through; [] skips the Talker. */
  talkerLayers: readonly number[];
  talkerCodes: number;
  /** Codes per second the Talker makes (the first-PCM rows' code arrivals). */
  codeRate: number;
  reps: number;
  log: (line: string) => void;
}

/** A chunk per solver from evaluations of `ran` blocks: each scaled to every block, × the solver's evaluations. */
export function ditRows(target: string, runs: PassTiming[], config: DitConfig, ran: number, solvers: readonly DitSolver[]): Result[] {
  const w = streamWindows(config);
  return solvers.map((solver) => {
    const evals = solverEvaluations(solver, 10);
    return fromRuns({
      target, weights: 'f32', audioSeconds: w.chunk / 100,
      what: `DiT chunk (${solver}, ${evals} evals × batch 2): ${w.chunk} new frames in a ${w.past + w.chunk + w.future}-frame window`,
      ran: `${ran} of ${config.layers} blocks × 1 of ${evals} evals (scaled)`,
    }, runs, ran, config.layers, evals);
  });
}

export async function webgpuRows(o: WebGpuSpeechOptions): Promise<Result[]> {
  const results: Result[] = [];
  const t2w = o.config.token2wav!;
  const w = streamWindows(t2w.dit);
  const melDim = t2w.dit.melDim;
  const prof = profileBackend(await core.createWebGPUBackend());
  const b = prof.backend;
  try {
    // ---- DiT: one evaluation of `ditLayers` blocks on a steady-state window.
    const chunks: Result[] = [];
    {
      const ran = Math.min(o.ditLayers, t2w.dit.layers);
      o.log(`${WEBGPU_TARGET}:`);
      chunks.push(...ditRows(WEBGPU_TARGET, await ditEvaluations(prof, o.checkpoint, t2w.dit, o.voice, ran, o.reps, o.log), t2w.dit, ran, o.solvers));
      results.push(...chunks);
    }
    // ---- BigVGAN: two short pieces, fitted in frames (SwiftShader's time has a large part that
    // does not grow with frames: single runs here took 171 s at 4 frames and 185 s at 8).
    {
      const total = w.overlap + w.chunk;
      const t0 = performance.now();
      const bigvgan = await BigVgan.load(b, o.checkpoint, t2w.bigvgan);
      o.log(`${WEBGPU_TARGET} BigVGAN: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const points: FitPoint[] = [];
      for (const [k, frames] of o.bigvganFrames.entries()) {
        const mel = b.tensor(noise(frames * melDim, 6, 3).map((v) => v - 5), [frames, melDim]);
        const runs: PassTiming[] = [];
        // One warm-up (pipeline compiles) before the first size only.
        for (let r = k === 0 ? 0 : 1; r <= o.reps; r++) {
          const t = await timePass(prof, () => b.sync(), false, async () => {
            const wave = await bigvgan.forward(mel);
            await b.read(wave, { offset: 0, count: 1 });
            b.dispose(wave);
          });
          o.log(`  BigVGAN on ${frames} frames, run ${r}: ${t.ms.toFixed(0)} ms${r === 0 ? ' — warm-up' : ''}`);
          if (r > 0) runs.push(t);
        }
        b.dispose(mel);
        const run = medianBy(runs, (t) => t.ms);
        points.push({ x: frames, ms: run.ms, ops: totals(run.profile).ops });
      }
      bigvgan.dispose();
      const [lo, hi] = points;
      const piece: Result = {
        target: WEBGPU_TARGET, weights: 'f32', audioSeconds: w.chunk / 100,
        what: `BigVGAN: ${w.overlap} overlap + ${w.chunk} new frames in, ${w.chunk} frames kept`,
        ran: `${lo.x} and ${hi.x} of ${total} frames, linear fit`,
        ...linearFit(lo, hi, total),
        extra: { 'fit points ms': `${lo.ms.toFixed(0)} @${lo.x}, ${hi.ms.toFixed(0)} @${hi.x}` },
        runsMs: [lo.ms, hi.ms],
      };
      results.push(piece, ...chunks.map((chunk, i) => firstPcmRow(chunk, piece, o.solvers[i], t2w.dit, o.codeRate)));
    }
  } finally {
    b.destroy();
  }
  if (o.talkerLayers.length === 2) results.push(await talkerRow(o));
  return results;
}

/**
 * First code → first PCM sample, added up from the parts (a stream on SwiftShader would take
 * hours): the codes chunk 0 waits for, arriving at the Talker's rate, then one DiT chunk and one
 * BigVGAN piece. Chunk 0 has no past frames, so its DiT window is smaller than the steady-state
 * one measured: the sum is an upper bound.
 */
function firstPcmRow(chunk: Result, piece: Result, solver: DitSolver, dit: DitConfig, codeRate: number): Result {
  const w = streamWindows(dit);
  const firstChunkCodes = (w.chunk + w.future) / dit.repeats;
  const arrivals = (1000 * (firstChunkCodes - 1)) / codeRate;
  const both = totals(new Map([['dit', chunk.ops], ['bigvgan', piece.ops]]));
  const compute = chunk.ms + piece.ms;
  return {
    target: WEBGPU_TARGET, weights: 'f32', audioSeconds: null,
    what: `stream (${solver}): first code → first PCM (codes at ${codeRate}/s; chunk 0 needs ${firstChunkCodes} codes)`,
    ran: 'sum of the DiT chunk and BigVGAN rows above (upper bound)',
    ms: arrivals + compute, flops: both.flops, weightBytes: both.weightBytes, ops: both.ops,
    extra: { 'code arrivals ms': arrivals, 'compute ms': compute },
    runsMs: [arrivals + compute],
  };
}

interface FitPoint {
  /** Frames or layers of the measured pass. */
  x: number;
  ms: number;
  ops: Map<string, OpStat>;
}

/** A pass's time and per-op work as a + b·x through two measured points, read at `at`. */
function linearFit(lo: FitPoint, hi: FitPoint, at: number): Pick<Result, 'ms' | 'flops' | 'weightBytes' | 'ops'> {
  const line = (a: number, z: number) => a + ((z - a) / (hi.x - lo.x)) * (at - lo.x);
  const ops = new Map<string, OpStat>();
  for (const label of new Set([...lo.ops.keys(), ...hi.ops.keys()])) {
    const [p, q] = [lo.ops.get(label), hi.ops.get(label)];
    const fit = (key: keyof OpStat) => line(p?.[key] ?? 0, q?.[key] ?? 0);
    ops.set(label, { calls: fit('calls'), ms: fit('ms'), flops: fit('flops'), weightBytes: fit('weightBytes') });
  }
  const sum = (key: 'flops' | 'weightBytes') => [...ops.values()].reduce((a, s) => a + s[key], 0);
  return { ms: line(lo.ms, hi.ms), flops: sum('flops'), weightBytes: sum('weightBytes'), ops };
}

/**
 * Talker codes/s from two shallow stacks: per-code time and FLOPs are a + b·layers (the
 * embeddings, codec head and sampling once, each layer the same), read at the real depth.
 */
async function talkerRow(o: WebGpuSpeechOptions): Promise<Result> {
  const { Thinker } = await import('@omniweb/thinker');
  const { Talker } = await import('@omniweb/talker');
  const talkerConfig = o.config.talker!;
  // The Thinker's f32 token table (1.2 GB) is past SwiftShader's 1 GiB buffer limit: q8, as the wasm row.
  const format = 'q8';
  const prof: OpProfile = profileBackend(await core.createWebGPUBackend());
  const b = prof.backend;
  try {
    const thinker = await Thinker.load(b, o.checkpoint, { ...o.config.thinker, text: { ...o.config.thinker.text, layers: 1 } }, { format });
    try {
      const points: (FitPoint & { promptLength: number })[] = [];
      for (const layers of o.talkerLayers) {
        const t0 = performance.now();
        const talker = await Talker.load(thinker, o.checkpoint, { ...talkerConfig, layers }, { format });
        o.log(`${WEBGPU_TARGET} talker ${format}: ${layers} of ${talkerConfig.layers} layers loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        try {
          const d = await talkerDecode(prof, talker, talkerConfig, o.voice.bosToken, o.talkerCodes + 1, false);
          o.log(`  ${layers} layers: prefill ${d.prefillMs.toFixed(0)} ms, per code ${d.perCodeMs.map((m) => m.toFixed(0)).join(', ')} ms`);
          points.push({ x: layers, ms: median(d.perCodeMs), ops: d.opsPerCode, promptLength: d.promptLength });
        } finally {
          talker.dispose();
        }
      }
      const [lo, hi] = points;
      const fit = linearFit(lo, hi, talkerConfig.layers);
      return {
        target: WEBGPU_TARGET, what: `Talker decode (after a ${lo.promptLength}-row prefill)`, weights: format,
        ran: `${lo.x} and ${hi.x} of ${talkerConfig.layers} layers, ${o.talkerCodes} codes each, linear fit`,
        ...fit, audioSeconds: 1 / 50,
        extra: { 'codes/s': 1000 / fit.ms, 'fit points ms': `${lo.ms.toFixed(0)} @${lo.x}L, ${hi.ms.toFixed(0)} @${hi.x}L` },
        runsMs: [lo.ms, hi.ms],
      };
    } finally {
      thinker.dispose();
    }
  } finally {
    b.destroy();
  }
}
