/**
 * `pnpm bench:encoders` — the audio and vision encoders at the real Qwen2.5-Omni 3B/7B
 * tower shapes (32 layers, width 1280; the towers differ between 3B and 7B only in their
 * output width), synthetic weights in the official layout loaded through our loader.
 *
 * Audio: one 2-second block through `AudioBlockEncoder.encodeBlock` (the streaming path);
 * real-time factor = ms per block / 2000. Vision: one temporal patch (2 frames) of a camera
 * frame through `VisionEncoder.encode`, the frame made by @omniweb/media's video
 * preprocessing; real-time factor against the 1 s of live video (2 fps) it stands for. Beside each time: the FLOPs the pass issued, the compute floor
 * (FLOPs ÷ the SIMD peak measured in this run) and time ÷ floor.
 *
 * A tower too slow to run whole here runs its first N layers and is scaled to all of them
 * (the work outside the layer loop once, the loop × L/N); the "layers" column says so.
 *
 * The SIMD peak comes from bench/lib/peak.c (simdPeak.ts), sampled again before each
 * measurement since this machine is shared; the floor uses the best peak seen in the run
 * (the machine's capability). measureRoofline's figure is printed beside it: its loop keeps
 * 24 vectors live, more than x86-64's 16 XMM registers, so it measures spills and reads low
 * (below what our GEMM kernels reach). Samples and load average go to the JSON.
 *
 * WebGPU runs on Dawn + SwiftShader (CPU): a correctness device, its rows are for the record;
 * it runs 1 layer of each tower, the vision tower on a small still image (--webgpu-frame).
 *
 * Flags: --shape 3b|7b (3b) --formats f32,f16,q8 --audio-layers N (32) --vision-layers N (8)
 *   --frame WxH (448x448) --reps N (2, after a warm-up) --webgpu-layers N (1; 0 = no WebGPU rows)
 *   --webgpu-frame WxH (112x112)
 * Prints a table and writes bench/results/encoders-node.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as core from '@omniweb/core';
import type { Backend, WeightFormat } from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import { VisionEncoder } from '@omniweb/vision-encoder';
import { DEFAULT_VIDEO_PREPROCESS, processImage, processVideo } from '@omniweb/media';
import { formatTable, type Row } from '../lib/report.js';
import { profileBackend, topOps, type OpStat } from '../lib/opProfile.js';
import { cacheDir, ensureTowerCheckpoint } from '../lib/towerCheckpoint.js';
import {
  machineRoofline, medianBy, noise, parseFlags, peakSampler, scaleToTower, swiftShaderEnv, timePass, type PassTiming,
} from '../lib/towerBench.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const flags = parseFlags(process.argv.slice(2));
const shape = (flags.get('shape') ?? '3b') as '3b' | '7b';
if (shape !== '3b' && shape !== '7b') throw new Error('--shape is 3b or 7b');
const formats = (flags.get('formats') ?? 'f32,f16,q8').split(',') as WeightFormat[];
const reps = Number(flags.get('reps') ?? 2);
const audioLayersFlag = Number(flags.get('audio-layers') ?? 32);
const visionLayersFlag = Number(flags.get('vision-layers') ?? 8);
const webgpuLayers = Number(flags.get('webgpu-layers') ?? 1);
const parseFrame = (text: string) => text.split('x').map(Number) as [number, number];
const [frameW, frameH] = parseFrame(flags.get('frame') ?? '448x448');
const gpuFrame = parseFrame(flags.get('webgpu-frame') ?? '112x112');
const log = (line: string) => console.error(line);
const started = performance.now();

const THREADS = 2;
const roofline = await machineRoofline([1, THREADS]);
log(`roofline: read ${JSON.stringify(roofline.readGBps)} GB/s, SIMD peak ${JSON.stringify(roofline.peakGflops)} GFLOP/s; load average ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
const peaks = await peakSampler(THREADS);
await peaks.sample();

const ckpt = await ensureTowerCheckpoint(shape, ['audio', 'vision'], `${cacheDir()}bench-${shape}-encoders`, log);
const checkpoint = await core.openCheckpoint(ckpt.dir);
const config = core.parseOmniConfigText((await checkpoint.readText('config.json'))!);
const audioConfig = config.thinker.audio;
const visionConfig = config.thinker.vision;

// Inputs: one full 2-second mel block; one temporal patch (2 frames) of a WxH camera frame.
const melFrames = 2 * audioConfig.nWindow;
const mel = { features: noise(melFrames * audioConfig.melBins, 1, 1), frames: melFrames };
/**
 * One temporal patch of a w×h frame: two camera frames through the video preprocessing, or
 * (`image`) a still image, which the preprocessing tiles to one temporal patch and lets be
 * smaller than a video frame (the WebGPU rows use one to stay short).
 */
function visionInput(w: number, h: number, kind: 'video' | 'image') {
  const frame = (seed: number) => ({ width: w, height: h, data: Uint8Array.from(noise(w * h * 3, seed, 0.5), (v) => Math.floor((v + 0.5) * 255)) });
  const patches = kind === 'video' ? processVideo([frame(2), frame(3)]) : processImage(frame(2));
  const [, gh, gw] = patches.gridThw;
  log(`vision input: ${kind} ${w}x${h} → grid ${patches.gridThw.join('x')} (${gh * gw} patches, ${(gh * gw) / 4} tokens)`);
  return {
    input: { pixelValues: patches.pixelValues, gridThw: patches.gridThw, frames: kind === 'video' ? 2 : undefined },
    label: kind === 'video' ? `1 temporal patch (2 frames) ${w}x${h}, ${gh}x${gw} patches` : `image ${w}x${h} (1 temporal patch), ${gh}x${gw} patches`,
    /** Seconds of live video one temporal patch stands for (2 frames at the model's 2 fps); an image has none. */
    seconds: kind === 'video' ? DEFAULT_VIDEO_PREPROCESS.temporalPatchSize / DEFAULT_VIDEO_PREPROCESS.fps : null,
  };
}

interface Target {
  name: string;
  make: () => Promise<Backend>;
  /** Ops return when done, so per-op wall time is meaningful. */
  timedOps: boolean;
  formats: WeightFormat[];
  audioLayers: number;
  visionLayers: number;
  reps: number;
  frame: [number, number];
  frameKind: 'video' | 'image';
}

swiftShaderEnv();
const targets: Target[] = [
  {
    name: `wasm Node ${THREADS}T`, make: () => core.createWasmBackend({ threads: THREADS }), timedOps: true, formats,
    audioLayers: audioLayersFlag, visionLayers: visionLayersFlag, reps, frame: [frameW, frameH], frameKind: 'video',
  },
];
if (webgpuLayers > 0) {
  targets.push({
    name: 'webgpu Node (SwiftShader)', make: () => core.createWebGPUBackend(), timedOps: false, formats: ['f32'],
    audioLayers: webgpuLayers, visionLayers: webgpuLayers, reps: 1, frame: gpuFrame, frameKind: 'image',
  });
}

const rows: Row[] = [];
const details: unknown[] = [];
interface Result {
  target: Target; model: string; format: WeightFormat; ran: number; of: number; input: string; runs: PassTiming[];
  perSecondOfInput: number | null; peakNow: number;
}
const results: Result[] = [];

function addRow({ target, model, format, ran, of, input, runs, perSecondOfInput, peakNow }: Result, peak: number) {
  const scaled = runs.map((r) => scaleToTower(r, ran, of));
  const med = medianBy(scaled, (s) => s.ms);
  const floorMs = med.flops / (peak * 1e9) * 1e3;
  const layerShare = topOps(medianBy(runs, (r) => r.ms).profile.get('layers') ?? new Map<string, OpStat>());
  rows.push({
    target: target.name,
    model,
    weights: format,
    layers: ran === of ? `${of}` : `${ran} of ${of} (scaled)`,
    input,
    ms: med.ms,
    RTF: perSecondOfInput === null ? null : med.ms / 1000 / perSecondOfInput,
    GFLOP: med.flops / 1e9,
    'floor ms': floorMs,
    '× floor': med.ms / floorMs,
    'GFLOP/s': med.flops / med.ms / 1e6,
    'top ops (layer loop)': target.timedOps ? layerShare : 'n/a (queued)',
  });
  details.push({
    target: target.name, model, format, layersRun: ran, layersInTower: of, input, runsMs: scaled.map((s) => s.ms), flops: med.flops,
    peakGflopsBeforeRuns: peakNow, ops: Object.fromEntries([...med.allOps].map(([k, v]) => [k, v])),
  });
}

for (const target of targets) {
  const vision = visionInput(...target.frame, target.frameKind);
  for (const format of target.formats) {
    // A fresh backend per format: a wasm heap only grows, and the f32 audio tower alone is 2.6 GB.
    const prof = profileBackend(await target.make());
    const b = prof.backend;
    try {
      // ---- audio: encodeBlock on full 2-second blocks
      {
        const ran = Math.min(target.audioLayers, audioConfig.layers);
        const t0 = performance.now();
        const encoder = await AudioEncoder.load(b, checkpoint, { ...audioConfig, layers: ran }, { format });
        log(`${target.name} audio ${format}: ${ran} layers loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        const blocks = encoder.blockEncoder();
        const runs: PassTiming[] = [];
        const peakNow = await peaks.sample();
        for (let r = 0; r <= target.reps; r++) {
          const t = await timePass(prof, () => b.sync(), target.timedOps, async (mark) => {
            const out = await blocks.encodeBlock(mel, {
              inspect: async (tap) => {
                if (tap === 'input') await mark('layers');
                else if (tap === `layer.${ran - 1}`) await mark('outside');
              },
            });
            await b.read(out!, { offset: 0, count: 1 });
            b.dispose(out!);
          });
          log(`  run ${r}: ${t.ms.toFixed(0)} ms (layers ${t.layersMs.toFixed(0)} ms)${r === 0 ? ' — warm-up' : ''}`);
          if (r > 0) runs.push(t);
        }
        encoder.dispose();
        results.push({ target, model: 'audio encodeBlock', format, ran, of: audioConfig.layers, input: `2 s block (${melFrames} mel frames)`, runs, perSecondOfInput: 2, peakNow });
      }
      // ---- vision: one temporal patch of a camera frame
      {
        const ran = Math.min(target.visionLayers, visionConfig.depth);
        const t0 = performance.now();
        const encoder = await VisionEncoder.load(b, checkpoint, { ...visionConfig, depth: ran }, { format });
        log(`${target.name} vision ${format}: ${ran} blocks loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        const runs: PassTiming[] = [];
        const peakNow = await peaks.sample();
        for (let r = 0; r <= target.reps; r++) {
          const t = await timePass(prof, () => b.sync(), target.timedOps, async (mark) => {
            const out = await encoder.encode([vision.input], {
              inspect: async (tap) => {
                if (tap === 'blockInput') await mark('layers');
                else if (tap === `block.${ran - 1}`) await mark('outside');
              },
            });
            await b.read(out.embeddings, { offset: 0, count: 1 });
            b.dispose(out.embeddings);
          });
          log(`  run ${r}: ${t.ms.toFixed(0)} ms (blocks ${t.layersMs.toFixed(0)} ms)${r === 0 ? ' — warm-up' : ''}`);
          if (r > 0) runs.push(t);
        }
        encoder.dispose();
        results.push({ target, model: 'vision encode', format, ran, of: visionConfig.depth, input: vision.label, runs, perSecondOfInput: vision.seconds, peakNow });
      }
    } finally {
      b.destroy();
    }
  }
}
await checkpoint.close();
const peak = peaks.best();
await peaks.close();
for (const r of results) addRow(r, peak);

console.log(`\nencoders, Qwen2.5-Omni-${shape.toUpperCase()} tower shapes, synthetic weights; floor = FLOPs ÷ ${peak.toFixed(1)} GFLOP/s (best SIMD peak, ${THREADS} threads, of ${peaks.samples.length} samples of bench/lib/peak.c in this run; measureRoofline's probe said ${roofline.peakGflops[THREADS].toFixed(1)})`);
console.log(formatTable(rows));
mkdirSync(`${here}../results`, { recursive: true });
const out = `${here}../results/encoders-node.json`;
writeFileSync(out, JSON.stringify({
  date: new Date().toISOString(), shape, roofline, peakSamplesGflops: peaks.samples, peakUsedGflops: peak, loadAverage: loadavg(), reps,
  seconds: (performance.now() - started) / 1000, rows, details,
}, null, 2));
console.log(`wrote ${out}`);
process.exit(0);
