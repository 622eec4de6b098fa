/**
 * `pnpm bench:speech` — speech out at the real Qwen2.5-Omni shapes (token2wav: DiT 22 layers
 * width 1024, BigVGAN 1536 initial channels; the Talker of the 3B/7B config), synthetic
 * weights in the official layout loaded through our loader, on wasm (Node, 2 threads).
 *
 * - DiT: one streaming chunk — 72 new mel frames decoded in a 144-frame window (48 past, 24
 *   future, §8.6) — through the ODE of the reference: 10 time points = 9 RK4 steps = 36
 *   evaluations of both guidance branches (batch 2). By default 1 RK4 step runs and is scaled
 *   ×9 (every evaluation does the same work); --ode-steps 9 runs them all.
 * - BigVGAN: the streaming piece of a chunk — 40 overlap + 72 new frames in, 72 frames (0.72 s)
 *   kept; real-time factor = ms ÷ 720.
 * - Streaming latency: `Token2Wav.stream` fed codes at the talker's 50 codes/s, full ODE; the
 *   time from the first code to the first PCM sample (the first chunk needs 48 codes: 0.94 s of
 *   arrivals, then its DiT window and BigVGAN).
 * - Talker: codes/s of the decode loop (after the prefill) beside a Thinker stub (its token
 *   table, 1 layer, norm: the Talker reads only the Thinker's token table), stop codes
 *   suppressed so a random-weight model keeps talking. f32 does not fit a wasm heap (5.4 GB).
 *
 * Beside each time: FLOPs issued, compute floor (FLOPs ÷ the best SIMD peak sampled in this run
 * with bench/lib/peak.c; see bench/encoders/node.ts on why not measureRoofline's), memory floor
 * (matrix weight bytes read ÷ measureRoofline's read bandwidth) and time ÷ the larger floor.
 * WebGPU (SwiftShader) is not run: its ~0.1 GFLOP/s (bench:encoders) would take hours here.
 *
 * Flags: --shape 3b|7b (3b) --formats f32,f16 (token2wav) --talker-formats q8,f16 --reps N (2)
 *   --ode-steps N (1) --latency-formats f32 (none: skip) --talker-codes N (24) --no-talker
 * Prints a table and writes bench/results/speech-node.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as core from '@omniweb/core';
import type { Backend, WeightFormat } from '@omniweb/core';
import { Token2Wav, SAMPLE_RATE } from '@omniweb/vocoder';
import { formatTable, type Row } from '../lib/report.js';
import { profileBackend, topOps, totals, type OpProfile, type OpStat } from '../lib/opProfile.js';
import { cacheDir, ensureTowerCheckpoint } from '../lib/towerCheckpoint.js';
import { machineRoofline, medianBy, noise, parseFlags, peakSampler, scaleToTower, timePass, type PassTiming } from '../lib/towerBench.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const flags = parseFlags(process.argv.slice(2));
const shape = (flags.get('shape') ?? '3b') as '3b' | '7b';
if (shape !== '3b' && shape !== '7b') throw new Error('--shape is 3b or 7b');
const list = (name: string, fallback: string) => (flags.get(name) ?? fallback).split(',').filter((f) => f && f !== 'none') as WeightFormat[];
const formats = list('formats', 'f32,f16');
const talkerFormats = flags.has('no-talker') ? [] : list('talker-formats', 'q8,f16');
const latencyFormats = list('latency-formats', 'f32');
const reps = Number(flags.get('reps') ?? 2);
const odeSteps = Number(flags.get('ode-steps') ?? 1);
const talkerCodes = Number(flags.get('talker-codes') ?? 24);
const log = (line: string) => console.error(line);
const started = performance.now();

const THREADS = 2;
/** The reference ODE: 10 time points (§8.3). */
const RK4_STEPS = 9;
const CODE_RATE = 50;

const roofline = await machineRoofline([1, THREADS]);
log(`roofline: read ${JSON.stringify(roofline.readGBps)} GB/s, SIMD peak ${JSON.stringify(roofline.peakGflops)} GFLOP/s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const peaks = await peakSampler(THREADS);
await peaks.sample();
const readGBps = roofline.readGBps[THREADS];

const parts = talkerFormats.length > 0 ? (['token2wav', 'talker', 'thinker-stub'] as const) : (['token2wav'] as const);
const ckpt = await ensureTowerCheckpoint(shape, parts, `${cacheDir()}bench-${shape}-speech${talkerFormats.length > 0 ? '' : '-t2w'}`, log);
const checkpoint = await core.openCheckpoint(ckpt.dir);
const config = core.parseOmniConfigText((await checkpoint.readText('config.json'))!);
const t2wConfig = config.token2wav!;
const speakers = core.readSpeakers(readFileSync(join(ckpt.dir, core.SPEAKERS_FILE)));
const [voiceName, voice] = [...speakers.entries()][0];
const melDim = t2wConfig.dit.melDim;

interface Result {
  what: string;
  weights: string;
  ran: string;
  ms: number;
  /** Seconds of speech the work stands for (RTF = ms / 1000 / this), or null. */
  audioSeconds: number | null;
  flops: number;
  weightBytes: number;
  ops: Map<string, OpStat>;
  extra?: Record<string, string | number | null>;
  runsMs: number[];
}
const results: Result[] = [];

function fromRuns(what: string, weights: string, runs: PassTiming[], ran: number, of: number, audioSeconds: number | null, ranLabel: string): Result {
  const scaled = runs.map((r) => scaleToTower(r, ran, of));
  const med = medianBy(scaled, (s) => s.ms);
  const weightBytes = [...med.allOps.values()].reduce((a, s) => a + s.weightBytes, 0);
  return { what, weights, ran: ranLabel, ms: med.ms, audioSeconds, flops: med.flops, weightBytes, ops: med.allOps, runsMs: scaled.map((s) => s.ms) };
}

async function wasmBackend(): Promise<OpProfile> {
  return profileBackend(await core.createWasmBackend({ threads: THREADS }));
}

// ---------------------------------------------------------------- token2wav
const chunk = 3 * t2wConfig.dit.blockSize; // 72 mel frames
const past = 2 * t2wConfig.dit.blockSize; // 48
const future = t2wConfig.dit.blockSize; // 24
const overlap = 40;
for (const format of formats) {
  const prof = await wasmBackend();
  const b = prof.backend;
  try {
    const t0 = performance.now();
    const t2w = await Token2Wav.load(b, checkpoint, t2wConfig, { format });
    log(`token2wav ${format}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const { dit, bigvgan } = t2w;
    const condition = dit.condition(voice.cond.data as Float32Array, voice.refMel.data as Float32Array);
    // DiT: a steady-state chunk window.
    {
      const frames = past + chunk + future;
      const run = dit.createRun(frames);
      const codes = Int32Array.from({ length: frames / dit.repeats }, (_, i) => (i * 97) % t2wConfig.dit.numEmbeds);
      const x0 = noise(frames * melDim, 5, 1.7);
      const runs: PassTiming[] = [];
      await peaks.sample();
      for (let r = 0; r <= reps; r++) {
        const t = await timePass(prof, () => b.sync(), true, async (mark) => {
          dit.prepare(run, condition, codes);
          await mark('layers');
          const y = await dit.sample(run, x0, { steps: odeSteps + 1 });
          await mark('outside');
          await b.read(y, { offset: 0, count: 1 });
        });
        log(`  DiT run ${r}: ${t.ms.toFixed(0)} ms for ${odeSteps} RK4 step(s)${r === 0 ? ' — warm-up' : ''}`);
        if (r > 0) runs.push(t);
      }
      run.dispose();
      results.push(fromRuns(`DiT chunk: ${chunk} new frames in a ${frames}-frame window, ${4 * RK4_STEPS} evals × batch 2`, format, runs, odeSteps, RK4_STEPS,
        chunk / 100, odeSteps === RK4_STEPS ? `${RK4_STEPS} RK4 steps` : `${odeSteps} of ${RK4_STEPS} RK4 steps (scaled)`));
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
      results.push(fromRuns(`BigVGAN: ${overlap} overlap + ${chunk} new frames in, ${chunk} frames kept`, format, runs, 1, 1, chunk / 100, 'all'));
    }
    condition.dispose();
    // First code → first PCM sample, codes arriving at the talker's rate.
    if (latencyFormats.includes(format)) {
      const firstChunkCodes = (chunk + future) / dit.repeats;
      const codeCount = firstChunkCodes + 8;
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
      for await (const pcm of t2w.stream(paced(), { cond: voice.cond, refMel: voice.refMel })) {
        latency = performance.now() - firstCodeAt;
        firstSamples = pcm.length;
        break;
      }
      prof.stop();
      const arrivals = (1000 * (firstChunkCodes - 1)) / CODE_RATE;
      const profile = totals(prof.stats());
      log(`  stream: first PCM ${latency.toFixed(0)} ms after the first code (${firstSamples} samples)`);
      results.push({
        what: `stream: first code → first PCM (codes at ${CODE_RATE}/s; chunk 0 needs ${firstChunkCodes} codes)`, weights: format,
        ran: `${RK4_STEPS} RK4 steps`, ms: latency, audioSeconds: null, flops: profile.flops, weightBytes: profile.weightBytes, ops: profile.ops,
        extra: { 'code arrivals ms': arrivals, 'compute ms': latency - arrivals, 'first piece s': firstSamples / SAMPLE_RATE }, runsMs: [latency],
      });
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
  const promptLength = 32;
  for (const format of talkerFormats) {
    const prof = await wasmBackend();
    const b: Backend = prof.backend;
    try {
      const t0 = performance.now();
      // The Talker reads the Thinker's token table only; one Thinker layer keeps the heap small.
      const thinker = await Thinker.load(b, checkpoint, { ...config.thinker, text: { ...config.thinker.text, layers: 1 } }, { format });
      const talker = await Talker.load(thinker, checkpoint, talkerConfig, { format });
      log(`talker ${format}: loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      const width = talkerConfig.embeddingSize;
      const { codec } = talkerConfig;
      const stream = talker.start({
        inputIds: Int32Array.from({ length: promptLength }, (_, i) => 1000 + ((i * 7919) % 50000)),
        thinkerHidden: noise(promptLength * width, 7, 1),
        thinkerEmbeddings: noise(promptLength * width, 8, 0.05),
      }, {
        speaker: { bosToken: voice.bosToken },
        sampling: { temperature: 0 },
        maxNewTokens: talkerCodes + 2,
        // Random weights may pick a stop code at any step; the benchmark wants a steady stream.
        inspect: ({ logits }) => { logits[codec.pad] = -Infinity; logits[codec.end] = -Infinity; },
      });
      for (let j = 0; j < talkerCodes + 4; j++) stream.push({ hidden: noise(width, 100 + j, 1), embedding: noise(width, 200 + j, 0.05) });
      stream.endOfText();
      await peaks.sample();
      prof.reset();
      prof.setPhase('prefill');
      prof.start({ timed: true });
      const begin = performance.now();
      const at: number[] = [];
      for await (const _code of stream.codes()) {
        at.push(performance.now());
        if (at.length === 1) prof.setPhase('decode');
        if (at.length === talkerCodes) break;
      }
      prof.stop();
      const decodeMs = at[at.length - 1] - at[0];
      const decoded = at.length - 1;
      const decode = totals(prof.stats(), ['decode']);
      log(`  talker: first code after ${(at[0] - begin).toFixed(0)} ms (prefill of ${promptLength + 2} rows), then ${decoded} codes in ${decodeMs.toFixed(0)} ms`);
      results.push({
        what: `Talker decode (after a ${promptLength + 2}-row prefill)`, weights: format, ran: `${talkerConfig.layers} layers, ${decoded} codes`,
        ms: decodeMs / decoded, audioSeconds: 1 / CODE_RATE, flops: decode.flops / decoded, weightBytes: decode.weightBytes / decoded, ops: decode.ops,
        extra: { 'codes/s': (1000 * decoded) / decodeMs, 'prefill ms': at[0] - begin },
        runsMs: at.slice(1).map((t, i) => t - at[i]),
      });
      stream.dispose();
      talker.dispose();
      thinker.dispose();
    } finally {
      b.destroy();
    }
  }
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
console.log(`\nspeech out, Qwen2.5-Omni-${shape.toUpperCase()} shapes (token2wav, talker), synthetic weights, wasm Node ${THREADS}T, voice ${voiceName}; `
  + `floor = FLOPs ÷ ${peak.toFixed(1)} GFLOP/s (best SIMD peak of ${peaks.samples.length} samples of bench/lib/peak.c in this run; measureRoofline's probe said ${roofline.peakGflops[THREADS].toFixed(1)}); mem floor = weight bytes read ÷ ${readGBps.toFixed(1)} GB/s (measureRoofline)`);
console.log(formatTable(rows));
mkdirSync(`${here}../results`, { recursive: true });
const out = `${here}../results/speech-node.json`;
writeFileSync(out, JSON.stringify({
  date: new Date().toISOString(), shape, roofline, peakSamplesGflops: peaks.samples, peakUsedGflops: peak, loadAverage: loadavg(), reps, odeSteps,
  seconds: (performance.now() - started) / 1000, rows,
  details: results.map((r) => ({ ...r, ops: Object.fromEntries(r.ops) })),
}, null, 2));
console.log(`wrote ${out}`);
process.exit(0);
