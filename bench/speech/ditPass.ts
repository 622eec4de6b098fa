/**
 * One DiT evaluation (both guidance branches) on a steady-state streaming window, timed with
 * its block loop marked: what the WebGPU rows scale to a chunk. No Node imports: the Chromium
 * page runs it too.
 */
import type { DitConfig, Speaker, WeightSource } from '@omniweb/core';
import { Dit } from '@omniweb/vocoder';
import type { OpProfile } from '../lib/opProfile.js';
import { noise, timePass, type PassTiming } from '../lib/passes.js';

/**
 * The reference streamer's windows (§8.6), in mel frames: a chunk of 72 new frames decoded in a
 * window with 48 of past and 24 of future context; BigVGAN re-reads the 40 frames before it.
 */
export function streamWindows(dit: DitConfig): { chunk: number; past: number; future: number; overlap: number } {
  return { chunk: 3 * dit.blockSize, past: 2 * dit.blockSize, future: dit.blockSize, overlap: 40 };
}

/**
 * Loads the first `layers` DiT blocks (f32) on the profiled backend and times `reps` + 1
 * evaluations at t = 0.5 (the first a warm-up, not returned).
 */
export async function ditEvaluations(
  prof: OpProfile, source: WeightSource, config: DitConfig, voice: Speaker, layers: number, reps: number, log: (line: string) => void,
): Promise<PassTiming[]> {
  const b = prof.backend;
  const { past, chunk, future } = streamWindows(config);
  const frames = past + chunk + future;
  const t0 = performance.now();
  const dit = await Dit.load(b, source, { ...config, layers });
  log(`  DiT: ${layers} of ${config.layers} blocks loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const condition = dit.condition(voice.cond.data as Float32Array, voice.refMel.data as Float32Array);
  const run = dit.createRun(frames);
  const x = b.tensor(noise(frames * config.melDim, 5, 1.7), [frames, config.melDim]);
  try {
    dit.prepare(run, condition, Int32Array.from({ length: frames / dit.repeats }, (_, i) => (i * 97) % config.numEmbeds));
    const runs: PassTiming[] = [];
    for (let r = 0; r <= reps; r++) {
      const t = await timePass(prof, () => b.sync(), false, async (mark) => {
        await dit.forward(run, x, 0.5, async (point) => {
          if (point === 'inputEmbedding') await mark('layers');
          else if (point === `block${layers - 1}`) await mark('outside');
        });
        await b.read(run.branches, { offset: 0, count: 1 });
      });
      log(`  DiT evaluation ${r}: ${t.ms.toFixed(0)} ms (blocks ${t.layersMs.toFixed(0)} ms)${r === 0 ? ' — warm-up' : ''}`);
      if (r > 0) runs.push(t);
    }
    return runs;
  } finally {
    b.dispose(x);
    run.dispose();
    condition.dispose();
    dit.dispose();
  }
}
