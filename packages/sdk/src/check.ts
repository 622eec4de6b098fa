/**
 * Will the model fit? The one capability table: which tensors each module owns and in what
 * precision it keeps them, summed from the checkpoint's headers (nothing is downloaded but
 * the headers) and compared with the backend's limits. Weights only: the KV caches and
 * activations come on top (small next to the weights at the sizes a session uses).
 */
import { OmniError, paddedCols, QUANT_GROUP, type BackendInfo, type TensorStore, type WeightFormat } from '@omniweb/core';
// The modules whose matrix precision a caller chooses; token2wav always runs in float32 (fact sheet §1).
import type { ModuleName, ModuleWeights, WeightedModule } from '@omniweb/orchestrator';

export type { ModuleName, ModuleWeights, WeightedModule };

const FORMATS: readonly WeightFormat[] = ['f32', 'f16', 'q8', 'q4'];
const WEIGHTED: readonly WeightedModule[] = ['thinker', 'audio', 'vision', 'talker'];

/** Tensor-name prefixes of each module in the official layout. */
const MODULE_PREFIXES: Record<ModuleName, readonly string[]> = {
  thinker: ['thinker.model.', 'thinker.lm_head.'],
  audio: ['thinker.audio_tower.'],
  vision: ['thinker.visual.'],
  talker: ['talker.'],
  token2wav: ['token2wav.'],
};

/** `weights` as `Omni.load` takes it: one format for every module, or one per module (default f32). */
export function resolveWeights(weights: WeightFormat | Partial<ModuleWeights> | undefined): ModuleWeights {
  const bad = (what: string) => new OmniError('BAD_INPUT', `weights: ${what}; use one of ${FORMATS.join(', ')}, or { ${WEIGHTED.join(', ')} } with those values`);
  if (weights === undefined || typeof weights === 'string') {
    const format = weights ?? 'f32';
    if (!FORMATS.includes(format)) throw bad(`${JSON.stringify(format)} is not a weight format`);
    return { thinker: format, audio: format, vision: format, talker: format };
  }
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) throw bad(`got ${JSON.stringify(weights)}`);
  for (const [key, value] of Object.entries(weights)) {
    if (!(WEIGHTED as readonly string[]).includes(key)) throw bad(`unknown module ${JSON.stringify(key)}`);
    if (!FORMATS.includes(value as WeightFormat)) throw bad(`${key} is ${JSON.stringify(value)}`);
  }
  return { thinker: weights.thinker ?? 'f32', audio: weights.audio ?? 'f32', vision: weights.vision ?? 'f32', talker: weights.talker ?? 'f32' };
}

/**
 * Device bytes of a [rows, cols] matrix in `format` (quant.ts layouts: values padded to
 * whole groups of 32, one scale per group, counted as f32, the larger of the two forms).
 */
function matrixBytes(rows: number, cols: number, format: WeightFormat): number {
  switch (format) {
    case 'f32': return rows * cols * 4;
    case 'f16': return rows * cols * 2;
    case 'q8': return rows * (paddedCols(cols) + (paddedCols(cols) / QUANT_GROUP) * 4);
    case 'q4': return rows * (paddedCols(cols) / 2 + (paddedCols(cols) / QUANT_GROUP) * 4);
  }
}

export interface ModuleSize {
  module: ModuleName;
  format: WeightFormat;
  tensors: number;
  bytes: number;
  /** The largest single buffer the module needs: a vector, or one row of a matrix (matrices are split by rows). */
  largestUnitBytes: number;
}

export interface CheckReport {
  device: Pick<BackendInfo, 'kind' | 'name' | 'maxBufferBytes'>;
  modules: ModuleSize[];
  totalBytes: number;
  /** What the weights must fit in altogether; null where the platform does not say (WebGPU reports no memory size). */
  memoryLimitBytes: number | null;
  fits: boolean;
  /** Why not, one line per limit exceeded. */
  problems: string[];
}

/** The memory the platform reports: the machine's in Node, `navigator.deviceMemory` (rounded GiB) in a browser. */
async function hostMemoryBytes(): Promise<number | null> {
  const nav = (globalThis as { navigator?: { deviceMemory?: number } }).navigator;
  if (typeof nav?.deviceMemory === 'number') return nav.deviceMemory * 2 ** 30;
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { totalmem } = await import('node:os');
    return totalmem();
  }
  return null;
}

function sizeText(bytes: number): string {
  for (const [unit, scale] of [['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (bytes >= scale) return `${(bytes / scale).toFixed(1)} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** Sizes every module present in `weights` at the chosen formats and checks them against `device`'s limits. */
export async function checkFit(store: TensorStore, device: BackendInfo, formats: ModuleWeights): Promise<CheckReport> {
  const modules: ModuleSize[] = [];
  for (const module of Object.keys(MODULE_PREFIXES) as ModuleName[]) {
    const format = module === 'token2wav' ? 'f32' : formats[module];
    const size: ModuleSize = { module, format, tensors: 0, bytes: 0, largestUnitBytes: 0 };
    for (const name of store.names()) {
      if (!MODULE_PREFIXES[module].some((p) => name.startsWith(p))) continue;
      const { shape } = store.info(name);
      const elements = shape.reduce((a, b) => a * b, 1);
      // Loaders keep every tensor of two or more dimensions as a matrix weight, vectors as f32.
      const matrix = module !== 'token2wav' && shape.length >= 2;
      const bytes = matrix ? matrixBytes(shape[0], elements / shape[0], format) : elements * 4;
      size.tensors++;
      size.bytes += bytes;
      size.largestUnitBytes = Math.max(size.largestUnitBytes, matrix ? bytes / shape[0] : bytes);
    }
    if (size.tensors > 0) modules.push(size);
  }
  const totalBytes = modules.reduce((s, m) => s + m.bytes, 0);
  const problems: string[] = [];
  for (const m of modules) {
    if (m.largestUnitBytes > device.maxBufferBytes) {
      problems.push(`${m.module}: one buffer of ${sizeText(m.largestUnitBytes)} exceeds the device's limit of ${sizeText(device.maxBufferBytes)} per buffer`);
    }
  }
  // The wasm backend holds every tensor in one heap; its ceiling is maxBufferBytes, and the heap is host memory.
  const host = await hostMemoryBytes();
  const memoryLimitBytes = device.kind === 'webgpu' ? null : Math.min(device.maxBufferBytes, host ?? Infinity);
  if (memoryLimitBytes !== null && totalBytes > memoryLimitBytes) {
    problems.push(`the weights take ${sizeText(totalBytes)}, the ${device.kind} heap holds at most ${sizeText(memoryLimitBytes)}; choose q8 or q4 weights or a smaller model`);
  }
  return {
    device: { kind: device.kind, name: device.name, maxBufferBytes: device.maxBufferBytes },
    modules,
    totalBytes,
    memoryLimitBytes,
    fits: problems.length === 0,
    problems,
  };
}
