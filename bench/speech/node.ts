/**
 * `pnpm bench:speech` — speech out at the real Qwen2.5-Omni shapes (token2wav: DiT 22 layers
 * width 1024, BigVGAN 1536 initial channels; the Talker of the 3B/7B config), synthetic
 * weights in the official layout loaded through our loader, on wasm (Node, 2 threads) and on
 * WebGPU (Node's Dawn on SwiftShader, scaled down: bench/speech/webgpu.ts).
 *
 * - DiT: one streaming chunk — 72 new mel frames decoded in a 144-frame window (48 past, 24
 *   future, §8.6) — through the ODE over 10 time points = 9 steps, per solver (--solvers): the
 *   reference's RK4 (4 evaluations of both guidance branches per step: 36), midpoint (18) and
 *   euler (9). By default 1 step runs and is scaled ×9 (every evaluation does the same work);
 *   --ode-steps 9 runs them all.
 * - BigVGAN: the streaming piece of a chunk — 40 overlap + 72 new frames in, 72 frames (0.72 s)
 *   kept; real-time factor = ms ÷ 720.
 * - Streaming latency: `Token2Wav.stream` fed codes at the talker's 50 codes/s, full ODE, per
 *   solver of --latency-solvers; the time from the first code to the first PCM sample (the first
 *   chunk needs 48 codes: 0.94 s of arrivals, then its DiT window and BigVGAN).
 * - Talker: codes/s of the decode loop (after the prefill) beside a Thinker stub (its token
 *   table, 1 layer, norm: the Talker reads only the Thinker's token table), stop codes
 *   suppressed so a random-weight model keeps talking. f32 does not fit a wasm heap (5.4 GB).
 *
 * Beside each time: FLOPs issued, compute floor (FLOPs ÷ the best SIMD peak sampled in this run
 * with bench/lib/peak.c; see bench/encoders/node.ts on why not measureRoofline's), memory floor
 * (matrix weight bytes read ÷ measureRoofline's read bandwidth) and time ÷ the larger floor.
 * WebGPU rows use the same floors (SwiftShader runs on the same CPU cores).
 *
 * Flags: --shape 3b|7b (3b) --formats f32,f16 (token2wav) --talker-formats q8,f16 --reps N (2)
 *   --ode-steps N (1) --solvers rk4,midpoint,euler --latency-formats f32 (none: skip)
 *   --latency-solvers rk4,euler --talker-codes N (24) --no-talker
 *   WebGPU: --webgpu-dit-layers N (1; 0 = no WebGPU rows) --webgpu-bigvgan-frames A,B (4,12)
 *   --webgpu-talker-layers 1,2 (none: skip) --webgpu-talker-codes N (3) --webgpu-reps N (1)
 * Prints a table and writes bench/results/speech-node.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as core from '@omniweb/core';
import type { Backend, WeightFormat } from '@omniweb/core';
import { DIT_SOLVERS, SAMPLE_RATE, solverEvaluations, Token2Wav, type DitSolver } from '@omniweb/vocoder';
import { formatTable, type Row } from '../lib/report.js';
import { profileBackend, topOps, totals, type OpProfile } from '../lib/opProfile.js';
import { cacheDir, ensureTowerCheckpoint } from '../lib/towerCheckpoint.js';
import { machineRoofline, noise, parseFlags, peakSampler, swiftShaderEnv, timePass, type PassTiming } from '../lib/towerBench.js';
import { streamWindows } from './ditPass.js';
import { fromRuns, talkerDecode, type Result } from './measure.js';
import { webgpuRows } from './webgpu.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const flags = parseFlags(process.argv.slice(2));
const shape = (flags.get('shape') ?? '3b') as '3b' | '7b';
if (shape !== '3b' && shape !== '7b') throw new Error('--shape is 3b or 7b');
const list = (name: string, fallback: string) => (flags.get(name) ?? fallback).split(',').filter((f) => f && f !== 'none');
const formats = list('formats', 'f32,f16') as WeightFormat[];
const talkerFormats = (flags.has('no-talker') ? [] : list('talker-formats', 'q8,f16')) as WeightFormat[];
const latencyFormats = list('latency-formats', 'f32') as WeightFormat[];
const solverList = (name: string, fallback: string) => {
  const solvers = list(name, fallback) as DitSolver[];
  for (const s of solvers) if (!DIT_SOLVERS.includes(s)) throw new Error(`--${name}: ${s} is not one of ${DIT_SOLVERS.join(', ')}`);
  return solvers;
};
const solvers = solverList('solvers', DIT_SOLVERS.join(','));
const latencySolvers = solverList('latency-solvers', 'rk4,euler');
const reps = Number(flags.get('reps') ?? 2);
const odeSteps = Number(flags.get('ode-steps') ?? 1);
const talkerCodes = Number(flags.get('talker-codes') ?? 24);
const webgpuDitLayers = Number(flags.get('webgpu-dit-layers') ?? 1);
const webgpuBigvganFrames = list('webgpu-bigvgan-frames', '4,12').map(Number);
const webgpuTalkerLayers = flags.has('no-talker') ? [] : list('webgpu-talker-layers', '1,2').map(Number);
if (webgpuTalkerLayers.length !== 0 && !(webgpuTalkerLayers.length === 2 && webgpuTalkerLayers[0] < webgpuTalkerLayers[1])) {
  throw new Error('--webgpu-talker-layers takes two increasing depths (the fit\'s points), or none');
}
if (!(webgpuBigvganFrames.length === 2 && webgpuBigvganFrames[0] < webgpuBigvganFrames[1])) throw new Error('--webgpu-bigvgan-frames takes two increasing frame counts (the fit\'s points)');
const webgpuTalkerCodes = Number(flags.get('webgpu-talker-codes') ?? 3);
const webgpuReps = Number(flags.get('webgpu-reps') ?? 1);
const log = (line: string) => console.error(line);
const started = performance.now();

const THREADS = 2;
const WASM_TARGET = `wasm Node ${THREADS}T`;
/** The reference ODE: 10 time points (§8.3). */
const ODE_POINTS = 10;
const ODE_STEPS = ODE_POINTS - 1;
const CODE_RATE = 50;

const roofline = await machineRoofline([1, THREADS]);
log(`roofline: read ${JSON.stringify(roofline.readGBps)} GB/s, SIMD peak ${JSON.stringify(roofline.peakGflops)} GFLOP/s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const peaks = await peakSampler(THREADS);
await peaks.sample();
const readGBps = roofline.readGBps[THREADS];

const withTalker = talkerFormats.length > 0 || (webgpuDitLayers > 0 && webgpuTalkerLayers.length > 0);
const parts = withTalker ? (['token2wav', 'talker', 'thinker-stub'] as const) : (['token2wav'] as const);
const ckpt = await ensureTowerCheckpoint(shape, parts, `${cacheDir()}bench-${shape}-speech${withTalker ? '' : '-t2w'}`, log);
const checkpoint = await core.openCheckpoint(ckpt.dir);
const config = core.parseOmniConfigText((await checkpoint.readText('config.json'))!);
const t2wConfig = config.token2wav!;
const speakers = core.readSpeakers(readFileSync(join(ckpt.dir, core.SPEAKERS_FILE)));
const [voiceName, voice] = [...speakers.entries()][0];
const melDim = t2wConfig.dit.melDim;

const results: Result[] = [];

async function wasmBackend(): Promise<OpProfile> {
  return profileBackend(await core.createWasmBackend({ threads: THREADS }));
}

// ---------------------------------------------------------------- token2wav
const { chunk, past, future, overlap } = streamWindows(t2wConfig.dit); // 72, 48, 24, 40 mel frames
for (const format of formats) {
  const prof = await wasmBackend();
  const b = prof.backend;
  try {
    const t0 = performance.now();
    const t2w = await Token2Wav.load(b, checkpoint, t2wConfig, { format });
    log(`token2wav ${format}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const { dit, bigvgan } = t2w;
    const condition = dit.condition(voice.cond.data as Float32Array, voice.refMel.data as Float32Array);
    // DiT: a steady-state chunk window, `odeSteps` steps of each solver.
    {
      const frames = past + chunk + future;
      const run = dit.createRun(frames);
      const codes = Int32Array.from({ length: frames / dit.repeats }, (_, i) => (i * 97) % t2wConfig.dit.numEmbeds);
      const x0 = noise(frames * melDim, 5, 1.7);
      for (const solver of solvers) {
        const runs: PassTiming[] = [];
        await peaks.sample();
        for (let r = 0; r <= reps; r++) {
          const t = await timePass(prof, () => b.sync(), true, async (mark) => {
            dit.prepare(run, condition, codes);
            await mark('layers');
            const y = await dit.sample(run, x0, { solver, steps: odeSteps + 1 });
            await mark('outside');
            await b.read(y, { offset: 0, count: 1 });
          });
          log(`  DiT ${solver} run ${r}: ${t.ms.toFixed(0)} ms for ${odeSteps} step(s)${r === 0 ? ' — warm-up' : ''}`);
          if (r > 0) runs.push(t);
        }
        const evals = solverEvaluations(solver, ODE_POINTS);
        results.push(fromRuns({
          target: WASM_TARGET, weights: format, audioSeconds: chunk / 100,
          what: `DiT chunk (${solver}, ${evals} evals × batch 2): ${chunk} new frames in a ${frames}-frame window`,
          ran: odeSteps === ODE_STEPS ? `${ODE_STEPS} steps` : `${odeSteps} of ${ODE_STEPS} steps (scaled)`,
        }, runs, odeSteps, ODE_STEPS));
      }
      run.dispose();
    }
    // BigVGAN: the streaming piece of a steady chunk.
    {
      const frames = overlap + chunk;
      const mel = b.tensor(noise(frames * melDim, 6, 3).map((v) => v - 5), [frames, melDim]);
      const runs: PassTiming[] = [];
      await peaks.sample();
      for (let r = 0; r <= reps; r++) {
        const t = await timePass(prof, () => b.sync(), true, async (mark) => {
          await mark('layers');
          const wave = await bigvgan.forward(mel);
          await mark('outside');
          await b.read(wave, { offset: 0, count: 1 });
          b.dispose(wave);
        });
        log(`  BigVGAN run ${r}: ${t.ms.toFixed(0)} ms${r === 0 ? ' — warm-up' : ''}`);
        if (r > 0) runs.push(t);
      }
      b.dispose(mel);
      results.push(fromRuns({
        target: WASM_TARGET, weights: format, audioSeconds: chunk / 100, ran: 'all',
        what: `BigVGAN: ${overlap} overlap + ${chunk} new frames in, ${chunk} frames kept`,
      }, runs, 1, 1));
    }
    condition.dispose();
    // First code → first PCM sample, codes arriving at the talker's rate.
    if (latencyFormats.includes(format)) {
      const firstChunkCodes = (chunk + future) / dit.repeats;
      const codeCount = firstChunkCodes + 8;
      for (const solver of latencySolvers) {
        let firstCodeAt = 0;
        async function* paced() {
          firstCodeAt = performance.now();
          for (let i = 0; i < codeCount; i++) {
            const due = firstCodeAt + (1000 * i) / CODE_RATE;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
            yield (i * 131) % t2wConfig.dit.numEmbeds;
          }
        }
        await peaks.sample();
        prof.reset();
        prof.setPhase('layers');
        prof.start({ timed: true });
        let latency = 0;
        let firstSamples = 0;
        for await (const pcm of t2w.stream(paced(), { cond: voice.cond, refMel: voice.refMel }, { solver })) {
          latency = performance.now() - firstCodeAt;
          firstSamples = pcm.length;
          break;
        }
        prof.stop();
        const arrivals = (1000 * (firstChunkCodes - 1)) / CODE_RATE;
        const profile = totals(prof.stats());
        log(`  stream ${solver}: first PCM ${latency.toFixed(0)} ms after the first code (${firstSamples} samples)`);
        results.push({
          target: WASM_TARGET, what: `stream (${solver}): first code → first PCM (codes at ${CODE_RATE}/s; chunk 0 needs ${firstChunkCodes} codes)`, weights: format,
          ran: `${ODE_STEPS} steps`, ms: latency, audioSeconds: null, flops: profile.flops, weightBytes: profile.weightBytes, ops: profile.ops,
          extra: { 'code arrivals ms': arrivals, 'compute ms': latency - arrivals, 'first piece s': firstSamples / SAMPLE_RATE }, runsMs: [latency],
        });
      }
    }
    t2w.dispose();
  } finally {
    b.destroy();
  }
}

// ---------------------------------------------------------------- talker
if (talkerFormats.length > 0) {
  const { Thinker } = await import('@omniweb/thinker');
  const { Talker } = await import('@omniweb/talker');
  const talkerConfig = config.talker!;
  for (const format of talkerFormats) {
    const prof = await wasmBackend();
    const b: Backend = prof.backend;
    try {
      const t0 = performance.now();
      // The Talker reads the Thinker's token table only; one Thinker layer keeps the heap small.
      const thinker = await Thinker.load(b, checkpoint, { ...config.thinker, text: { ...config.thinker.text, layers: 1 } }, { format });
      const talker = await Talker.load(thinker, checkpoint, talkerConfig, { format });
      log(`talker ${format}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      await peaks.sample();
      const d = await talkerDecode(prof, talker, talkerConfig, voice.bosToken, talkerCodes, true);
      const decodeMs = d.perCodeMs.reduce((a, m) => a + m, 0);
      const decoded = d.perCodeMs.length;
      log(`  talker: first code after ${d.prefillMs.toFixed(0)} ms (prefill of ${d.promptLength} rows), then ${decoded} codes in ${decodeMs.toFixed(0)} ms`);
      results.push({
        target: WASM_TARGET, what: `Talker decode (after a ${d.promptLength}-row prefill)`, weights: format, ran: `${talkerConfig.layers} layers, ${decoded} codes`,
        ms: decodeMs / decoded, audioSeconds: 1 / CODE_RATE, flops: d.flopsPerCode, weightBytes: d.weightBytesPerCode, ops: d.opsPerCode,
        extra: { 'codes/s': (1000 * decoded) / decodeMs, 'prefill ms': d.prefillMs },
        runsMs: d.perCodeMs,
      });
      talker.dispose();
      thinker.dispose();
    } finally {
      b.destroy();
    }
  }
}

// ---------------------------------------------------------------- webgpu (SwiftShader, scaled)
if (webgpuDitLayers > 0) {
  swiftShaderEnv();
  results.push(...await webgpuRows({
    checkpoint, config, voice, solvers, ditLayers: webgpuDitLayers, bigvganFrames: webgpuBigvganFrames,
    talkerLayers: webgpuTalkerLayers, talkerCodes: webgpuTalkerCodes, codeRate: CODE_RATE, reps: webgpuReps, log,
  }));
}
await checkpoint.close();

// ---------------------------------------------------------------- report
const peak = peaks.best();
await peaks.close();
const rows: Row[] = results.map((r) => {
  const computeMs = (r.flops / (peak * 1e9)) * 1e3;
  const memoryMs = (r.weightBytes / (readGBps * 1e9)) * 1e3;
  // The binding floor: arithmetic, or streaming the weights once (a GEMV-bound decode).
  const floorMs = Math.max(computeMs, memoryMs);
  return {
    target: r.target,
    what: r.what,
    weights: r.weights,
    ran: r.ran,
    ms: r.ms,
    RTF: r.audioSeconds === null ? null : r.ms / 1000 / r.audioSeconds,
    GFLOP: r.flops / 1e9,
    'compute floor ms': computeMs,
    'weight GB': r.weightBytes / 1e9,
    'mem floor ms': memoryMs,
    '× floor': r.ms / floorMs,
    bound: computeMs >= memoryMs ? 'compute' : 'memory',
    ...r.extra,
    'top ops': topOps(r.ops),
  };
});
console.log(`\nspeech out, Qwen2.5-Omni-${shape.toUpperCase()} shapes (token2wav, talker), synthetic weights, voice ${voiceName}; `
  + `floor = FLOPs ÷ ${peak.toFixed(1)} GFLOP/s (best SIMD peak of ${peaks.samples.length} samples of bench/lib/peak.c in this run; measureRoofline's probe said ${roofline.peakGflops[THREADS].toFixed(1)}); mem floor = weight bytes read ÷ ${readGBps.toFixed(1)} GB/s (measureRoofline)`);
console.log(formatTable(rows));
mkdirSync(`${here}../results`, { recursive: true });
const out = `${here}../results/speech-node.json`;
writeFileSync(out, JSON.stringify({
  date: new Date().toISOString(), shape, roofline, peakSamplesGflops: peaks.samples, peakUsedGflops: peak, loadAverage: loadavg(), reps, odeSteps, solvers, latencySolvers,
  webgpu: { ditLayers: webgpuDitLayers, bigvganFrames: webgpuBigvganFrames, talkerLayers: webgpuTalkerLayers, talkerCodes: webgpuTalkerCodes, reps: webgpuReps },
  seconds: (performance.now() - started) / 1000, rows,
  details: results.map((r) => ({ ...r, ops: Object.fromEntries(r.ops) })),
}, null, 2));
console.log(`wrote ${out}`);
process.exit(0);
