/**
 * What a measured load loads and how its memory is accounted, shared by the Node child
 * (loadOnce.ts) and the browser pages (bench/load/page.ts, e2e/modelCache/page.ts), so every
 * target reports the same figures: no Node-only imports here.
 *
 * Budget (issue 8): peak host memory above what stays resident ≤ the largest tensor's stored
 * bytes + its device bytes + 256 MiB.
 */
import { convertedRowBytes, type Backend, type Checkpoint, type OmniConfig, type WeightFormat } from '@omniweb/core';
import { AudioEncoder } from '@omniweb/audio-encoder';
import { Thinker } from '@omniweb/thinker';
import { VisionEncoder } from '@omniweb/vision-encoder';

export const MODULES = ['thinker', 'audio', 'vision'] as const;
export type LoadModule = (typeof MODULES)[number];

/** Tensor-name prefixes of each module (the official layout). */
const PREFIXES: Record<LoadModule, readonly string[]> = {
  thinker: ['thinker.model.', 'thinker.lm_head.'],
  audio: ['thinker.audio_tower.'],
  vision: ['thinker.visual.'],
};

/** The slack the streaming budget allows on top of one tensor in flight. */
const BUDGET_SLACK_BYTES = 256 * 2 ** 20;

export interface ModuleLoad {
  module: LoadModule;
  ms: number;
  /** Bytes the module's weights take on the device at this format (matrices as stored by quant.ts, vectors f32). */
  deviceBytes: number;
  /** The module's largest tensor: its stored bytes in the checkpoint and its device bytes. */
  largestTensor: { name: string; storedBytes: number; deviceBytes: number };
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

function loadModule(module: LoadModule, backend: Backend, checkpoint: Checkpoint, config: OmniConfig, format: WeightFormat) {
  switch (module) {
    case 'thinker': return Thinker.load(backend, checkpoint, config.thinker, { format });
    case 'audio': return AudioEncoder.load(backend, checkpoint, config.thinker.audio, { format });
    case 'vision': return VisionEncoder.load(backend, checkpoint, config.thinker.vision, { format });
  }
}

export function checkModules(names: readonly string[]): LoadModule[] {
  const unknown = names.filter((m) => !(MODULES as readonly string[]).includes(m));
  if (unknown.length > 0 || names.length === 0) throw new Error(`modules: choose one or more of ${MODULES.join(', ')} (got ${names.join(',') || 'none'})`);
  return names as LoadModule[];
}

/** Loads `modules` one after another, timing each; the Thinker is returned when it was among them. */
export async function loadModules(
  backend: Backend, checkpoint: Checkpoint, config: OmniConfig, format: WeightFormat, modules: readonly LoadModule[],
): Promise<{ loads: ModuleLoad[]; thinker: Thinker | null }> {
  const loads: ModuleLoad[] = [];
  let thinker: Thinker | null = null;
  for (const module of modules) {
    const t0 = performance.now();
    const loaded = await loadModule(module, backend, checkpoint, config, format);
    if (loaded instanceof Thinker) thinker = loaded;
    loads.push({ module, ms: performance.now() - t0, ...moduleSize(checkpoint, module, format) });
  }
  return { loads, thinker };
}

/** Device bytes of all loaded modules and the streaming budget of their largest tensor. */
export function memoryAccount(loads: readonly ModuleLoad[]): { deviceBytes: number; budgetBytes: number } {
  const largest = loads.map((m) => m.largestTensor).reduce((a, b) => (b.storedBytes > a.storedBytes ? b : a));
  return {
    deviceBytes: loads.reduce((s, m) => s + m.deviceBytes, 0),
    budgetBytes: largest.storedBytes + largest.deviceBytes + BUDGET_SLACK_BYTES,
  };
}
