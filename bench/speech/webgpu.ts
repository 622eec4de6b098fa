/**
 * The WebGPU rows of `pnpm bench:speech`: Dawn in Node (the `webgpu` package) on SwiftShader,
 * Vulkan on this machine's CPU. SwiftShader is a correctness device that reaches ~0.1–1 GFLOP/s,
 * so a full DiT chunk (~3.9 TFLOP) would take hours; each part runs scaled down and is
 * extrapolated, and its "ran" column says how:
 *
 * - DiT: 1 of the 22 blocks, 1 evaluation (both guidance branches) of a streaming window; the
 *   chunk = the evaluation scaled to every block (the rest of the forward once) × the solver's
 *   evaluations (36 rk4, 18 midpoint, 9 euler: each evaluation does the same work).
 * - BigVGAN: a few of the streaming piece's mel frames (every op's work is linear in frames),
 *   scaled to the 112.
 * - Talker: the decode loop of two shallow stacks (default 1 and 2 of 24 layers), a few codes
 *   each, fitted as a + b·layers and read at 24.
 *
 * Queued ops have no per-op times, so these rows list no top ops.
 */
import * as core from '@omniweb/core';
import type { DitConfig, OmniConfig, Speaker, WeightSource } from '@omniweb/core';
import { BigVgan, solverEvaluations, type DitSolver } from '@omniweb/vocoder';
import { profileBackend, type OpProfile, type OpStat } from '../lib/opProfile.js';
import { median } from '../lib/report.js';
import { noise, timePass, type PassTiming } from '../lib/towerBench.js';
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
  /** Mel frames BigVGAN runs (of 112). */
  bigvganFrames: number;
  /** The two Talker depths the per-code time is fitted through; [] skips the Talker. */
  talkerLayers: readonly number[];
  talkerCodes: number;
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
    {
      const ran = Math.min(o.ditLayers, t2w.dit.layers);
      o.log(`${WEBGPU_TARGET}:`);
      results.push(...ditRows(WEBGPU_TARGET, await ditEvaluations(prof, o.checkpoint, t2w.dit, o.voice, ran, o.reps, o.log), t2w.dit, ran, o.solvers));
    }
    // ---- BigVGAN: `bigvganFrames` of the streaming piece's frames.
    {
      const total = w.overlap + w.chunk;
      const frames = Math.min(o.bigvganFrames, total);
      const t0 = performance.now();
      const bigvgan = await BigVgan.load(b, o.checkpoint, t2w.bigvgan);
      o.log(`${WEBGPU_TARGET} BigVGAN: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const mel = b.tensor(noise(frames * melDim, 6, 3).map((v) => v - 5), [frames, melDim]);
      const runs: PassTiming[] = [];
      for (let r = 0; r <= o.reps; r++) {
        const t = await timePass(prof, () => b.sync(), false, async (mark) => {
          await mark('layers');
          const wave = await bigvgan.forward(mel);
          await mark('outside');
          await b.read(wave, { offset: 0, count: 1 });
          b.dispose(wave);
        });
        o.log(`  BigVGAN on ${frames} frames, run ${r}: ${t.ms.toFixed(0)} ms${r === 0 ? ' — warm-up' : ''}`);
        if (r > 0) runs.push(t);
      }
      b.dispose(mel);
      bigvgan.dispose();
      const label = {
        target: WEBGPU_TARGET, weights: 'f32', audioSeconds: w.chunk / 100,
        what: `BigVGAN: ${w.overlap} overlap + ${w.chunk} new frames in, ${w.chunk} frames kept`,
        ran: `${frames} of ${total} frames (scaled)`,
      };
      // Work scales with frames; the weights are read once a pass whatever its length.
      results.push({ ...fromRuns(label, runs, frames, total), weightBytes: fromRuns(label, runs, 1, 1).weightBytes });
    }
  } finally {
    b.destroy();
  }
  if (o.talkerLayers.length === 2) results.push(await talkerRow(o));
  return results;
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
      const fits: { layers: number; ms: number; flops: number; weightBytes: number; ops: Map<string, OpStat>; promptLength: number }[] = [];
      for (const layers of o.talkerLayers) {
        const t0 = performance.now();
        const talker = await Talker.load(thinker, o.checkpoint, { ...talkerConfig, layers }, { format });
        o.log(`${WEBGPU_TARGET} talker ${format}: ${layers} of ${talkerConfig.layers} layers loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        try {
          const d = await talkerDecode(prof, talker, talkerConfig, o.voice.bosToken, o.talkerCodes + 1, false);
          o.log(`  ${layers} layers: prefill ${d.prefillMs.toFixed(0)} ms, per code ${d.perCodeMs.map((m) => m.toFixed(0)).join(', ')} ms`);
          fits.push({ layers, ms: median(d.perCodeMs), flops: d.flopsPerCode, weightBytes: d.weightBytesPerCode, ops: d.opsPerCode, promptLength: d.promptLength });
        } finally {
          talker.dispose();
        }
      }
      const [lo, hi] = fits;
      const at = (a: number, z: number) => a + ((z - a) / (hi.layers - lo.layers)) * (talkerConfig.layers - lo.layers);
      const ms = at(lo.ms, hi.ms);
      const ops = new Map<string, OpStat>();
      for (const label of new Set([...lo.ops.keys(), ...hi.ops.keys()])) {
        const [p, q] = [lo.ops.get(label), hi.ops.get(label)];
        const fit = (key: keyof OpStat) => at(p?.[key] ?? 0, q?.[key] ?? 0);
        ops.set(label, { calls: fit('calls'), ms: fit('ms'), flops: fit('flops'), weightBytes: fit('weightBytes') });
      }
      return {
        target: WEBGPU_TARGET, what: `Talker decode (after a ${lo.promptLength}-row prefill)`, weights: format,
        ran: `${lo.layers} and ${hi.layers} of ${talkerConfig.layers} layers, ${o.talkerCodes} codes each, linear fit`,
        ms, audioSeconds: 1 / 50, flops: at(lo.flops, hi.flops), weightBytes: at(lo.weightBytes, hi.weightBytes), ops,
        extra: { 'codes/s': 1000 / ms, 'fit points ms/code': `${lo.ms.toFixed(0)} @${lo.layers}L, ${hi.ms.toFixed(0)} @${hi.layers}L` },
        runsMs: [lo.ms, hi.ms],
      };
    } finally {
      thinker.dispose();
    }
  } finally {
    b.destroy();
  }
}
