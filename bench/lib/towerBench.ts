/**
 * Shared pieces of the model benchmarks (encoders, speech): the roofline probe, argument
 * parsing, timing a pass whose layer loop is marked by inspect taps, and scaling a pass that
 * ran only the first N of L identical layers up to the whole tower.
 */
import { chmodSync, mkdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { measureRoofline, type Roofline } from './roofline.js';
import type { OpStat } from './opProfile.js';
import type { PassTiming } from './passes.js';
import { simdPeak } from './simdPeak.js';
import { totals } from './opProfile.js';

export { noise, timePass, type PassTiming } from './passes.js';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Memory and SIMD floors of this machine, measured now with the bench's probe (bench/roofline). */
export async function machineRoofline(threads: number[]): Promise<Roofline> {
  const probePath = `${here}../.build/roofline-node.mjs`;
  const { default: probeFactory } = await import(probePath);
  return measureRoofline(() => probeFactory({ wasmBinary: readFileSync(probePath.replace(/\.mjs$/, '.wasm')) }), threads);
}

/**
 * The SIMD peak on demand (bench/lib/simdPeak.ts): a shared machine's peak moves, so a
 * benchmark samples it beside each measurement and judges against the best seen in the run
 * (the machine's capability).
 */
export async function peakSampler(threads: number): Promise<{ sample(): Promise<number>; best(): number; samples: number[]; close(): Promise<void> }> {
  const probe = await simdPeak(threads);
  const samples: number[] = [];
  return {
    async sample() {
      const g = await probe.measure();
      samples.push(g);
      return g;
    },
    best: () => Math.max(...samples),
    samples,
    close: () => probe.close(),
  };
}

/** `--name value` / `--name=value` flags, and bare `--flag` booleans. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) flags.set(a.slice(2), argv[++i]);
    else flags.set(a.slice(2), 'true');
  }
  return flags;
}

/**
 * A pass that ran `ran` of the tower's `of` identical layers, scaled to all of them: the work
 * outside the layer loop once, the loop's time and FLOPs × of/ran.
 */
export function scaleToTower(t: PassTiming, ran: number, of: number): { ms: number; flops: number; layerOps: Map<string, OpStat>; allOps: Map<string, OpStat> } {
  const k = of / ran;
  const layers = totals(t.profile, ['layers']);
  const outside = totals(t.profile, ['outside']);
  const allOps = new Map<string, OpStat>();
  for (const [label, s] of layers.ops) allOps.set(label, { calls: s.calls * k, ms: s.ms * k, flops: s.flops * k, weightBytes: s.weightBytes * k });
  for (const [label, s] of outside.ops) {
    const into = allOps.get(label) ?? { calls: 0, ms: 0, flops: 0, weightBytes: 0 };
    allOps.set(label, { calls: into.calls + s.calls, ms: into.ms + s.ms, flops: into.flops + s.flops, weightBytes: into.weightBytes + s.weightBytes });
  }
  return { ms: t.ms + (k - 1) * t.layersMs, flops: outside.flops + k * layers.flops, layerOps: layers.ops, allOps };
}

/** The run with the median value under `key` (the lower one of an even count: on a shared machine the slower is the noisier). */
export function medianBy<T>(runs: T[], key: (r: T) => number): T {
  const sorted = [...runs].sort((a, b) => key(a) - key(b));
  return sorted[(sorted.length - 1) >> 1];
}

/** The WebGPU environment Dawn needs on a GPU-less machine (SwiftShader), as vitest.config.ts sets it. */
export function swiftShaderEnv(): void {
  process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
  if (!process.env.XDG_RUNTIME_DIR) {
    const dir = '/tmp/omniweb-xdg';
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o700);
    process.env.XDG_RUNTIME_DIR = dir;
  }
}
