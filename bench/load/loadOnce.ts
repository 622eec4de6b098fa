/**
 * One measured load in a fresh Node process (so its peak resident set is this load's):
 * open a checkpoint folder (path or URL, official or converted), load the chosen modules on
 * the wasm backend, optionally decode a few tokens, and print one JSON `LoadReport`.
 * `bench/load/node.ts` and the 3B load test run it as a child process.
 *
 *   tsx bench/load/loadOnce.ts --model <dir|url> --weights q4|q8|f16|f32 [--modules thinker,audio,vision] [--decode N]
 *
 * Host memory: VmHWM (peak resident set) from /proc/self/status. The wasm heap is host memory
 * too, so the figure that the streaming budget bounds is the peak above what stays resident:
 * `peakOverheadBytes` = VmHWM − (resident before loading + device bytes of the loaded weights).
 */
import { readFileSync } from 'node:fs';
import {
  convertedRowBytes, createBackend, loadOmniConfig, openCheckpoint, type Checkpoint, type OmniConfig, type WeightFormat,
} from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import { Thinker, ThinkerSession } from '@omniweb/thinker';
import { VisionEncoder } from '@omniweb/vision-encoder';

export const MODULES = ['thinker', 'audio', 'vision'] as const;
export type LoadModule = (typeof MODULES)[number];

/** Tensor-name prefixes of each module (the official layout). */
const PREFIXES: Record<LoadModule, readonly string[]> = {
  thinker: ['thinker.model.', 'thinker.lm_head.'],
  audio: ['thinker.audio_tower.'],
  vision: ['thinker.visual.'],
};

export interface ModuleLoad {
  module: LoadModule;
  ms: number;
  /** Bytes the module's weights take on the device at this format (matrices as stored by quant.ts, vectors f32). */
  deviceBytes: number;
  /** The module's largest tensor: its stored bytes in the checkpoint and its device bytes. */
  largestTensor: { name: string; storedBytes: number; deviceBytes: number };
}

export interface LoadReport {
  model: string;
  weights: WeightFormat;
  converted: boolean;
  modules: ModuleLoad[];
  openMs: number;
  loadMs: number;
  rssBeforeBytes: number;
  rssAfterBytes: number;
  peakRssBytes: number;
  deviceBytes: number;
  peakOverheadBytes: number;
  /** One tensor's stored bytes + its device bytes + 256 MiB, for the largest tensor loaded. */
  budgetBytes: number;
  decode: { tokens: number[]; ms: number; finiteLogits: boolean } | null;
}

/** A field of /proc/self/status in bytes (Linux). */
export function procStatusBytes(field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!m) throw new Error(`no ${field} in /proc/self/status (this measurement needs Linux)`);
  return Number(m[1]) * 1024;
}

function deviceBytesOf(checkpoint: Checkpoint, name: string, format: WeightFormat): number {
  const { shape } = checkpoint.info(name);
  const elements = shape.reduce((a, b) => a * b, 1);
  if (shape.length < 2) return elements * 4;
  const row = convertedRowBytes(elements / shape[0], format);
  return shape[0] * (row.data + row.scales);
}

function moduleSize(checkpoint: Checkpoint, module: LoadModule, format: WeightFormat): Pick<ModuleLoad, 'deviceBytes' | 'largestTensor'> {
  let deviceBytes = 0;
  let largestTensor = { name: '', storedBytes: 0, deviceBytes: 0 };
  for (const name of checkpoint.names()) {
    if (!PREFIXES[module].some((p) => name.startsWith(p))) continue;
    const device = deviceBytesOf(checkpoint, name, format);
    deviceBytes += device;
    const stored = checkpoint.info(name).byteLength;
    if (stored > largestTensor.storedBytes) largestTensor = { name, storedBytes: stored, deviceBytes: device };
  }
  return { deviceBytes, largestTensor };
}

async function loadModule(module: LoadModule, checkpoint: Checkpoint, config: OmniConfig, format: WeightFormat, backend: Awaited<ReturnType<typeof createBackend>>) {
  switch (module) {
    case 'thinker': return Thinker.load(backend, checkpoint, config.thinker, { format });
    case 'audio': return AudioEncoder.load(backend, checkpoint, config.thinker.audio, { format });
    case 'vision': return VisionEncoder.load(backend, checkpoint, config.thinker.vision, { format });
  }
}

export async function measureLoad(model: string, weights: WeightFormat, modules: readonly LoadModule[], decodeTokens: number): Promise<LoadReport> {
  const backend = await createBackend({ device: 'wasm' });
  const rssBeforeBytes = procStatusBytes('VmRSS');
  const started = performance.now();
  const checkpoint = await openCheckpoint(model);
  const openMs = performance.now() - started;
  try {
    const config = await loadOmniConfig(checkpoint);
    const loads: ModuleLoad[] = [];
    let thinker: Thinker | null = null;
    for (const module of modules) {
      const t0 = performance.now();
      const loaded = await loadModule(module, checkpoint, config, weights, backend);
      if (loaded instanceof Thinker) thinker = loaded;
      loads.push({ module, ms: performance.now() - t0, ...moduleSize(checkpoint, module, weights) });
    }
    const loadMs = performance.now() - started;
    const rssAfterBytes = procStatusBytes('VmRSS');
    const peakRssBytes = procStatusBytes('VmHWM');
    const deviceBytes = loads.reduce((s, m) => s + m.deviceBytes, 0);
    const largest = loads.map((m) => m.largestTensor).reduce((a, b) => (b.storedBytes > a.storedBytes ? b : a));
    let decode: LoadReport['decode'] = null;
    if (decodeTokens > 0) {
      if (!thinker) throw new Error('--decode needs the thinker among --modules');
      const session = new ThinkerSession(thinker, { cache: { kind: 'plain', capacity: 64 } });
      const t0 = performance.now();
      // "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n" in Qwen2 ids.
      await session.prefill({ ids: [151644, 872, 198, 9707, 151645, 198, 151644, 77091, 198] });
      const tokens: number[] = [];
      let finiteLogits = true;
      for await (const event of session.generate({ maxNewTokens: decodeTokens, logits: true, stopIds: [] })) {
        tokens.push(event.id);
        if (!event.logits!.every(Number.isFinite)) finiteLogits = false;
      }
      decode = { tokens, ms: performance.now() - t0, finiteLogits };
      session.dispose();
    }
    return {
      model, weights, converted: checkpoint.manifest !== null, modules: loads, openMs, loadMs,
      rssBeforeBytes, rssAfterBytes, peakRssBytes, deviceBytes,
      peakOverheadBytes: peakRssBytes - rssBeforeBytes - deviceBytes,
      budgetBytes: largest.storedBytes + largest.deviceBytes + 256 * 2 ** 20,
      decode,
    };
  } finally {
    await checkpoint.close();
    backend.destroy();
  }
}

function flagValue(argv: readonly string[], name: string): string | undefined {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const argv = process.argv.slice(2);
  const model = flagValue(argv, 'model');
  if (!model) throw new Error('--model <dir|url> is required');
  const weights = (flagValue(argv, 'weights') ?? 'q4') as WeightFormat;
  const modules = (flagValue(argv, 'modules') ?? 'thinker').split(',') as LoadModule[];
  if (!modules.every((m) => (MODULES as readonly string[]).includes(m))) throw new Error(`--modules: choose from ${MODULES.join(', ')}`);
  const report = await measureLoad(model, weights, modules, Number(flagValue(argv, 'decode') ?? 0));
  process.stdout.write(`${JSON.stringify(report)}\n`);
}
