/**
 * Will the model fit? The one capability table: which tensors each module owns and in what
 * precision it keeps them, summed from the checkpoint's headers (nothing is downloaded but
 * the headers) and compared with the backend's limits, per heap: in-thread every module
 * shares one backend, with workers each stage has its own (packages/orchestrator/README.md).
 * Weights only: the KV caches and activations come on top (small next to the weights at the
 * sizes a session uses).
 */
import { OmniError, paddedCols, QUANT_GROUP, WASM_HEAP_BYTES, type BackendInfo, type TensorStore, type WeightFormat } from '@omniweb/core';
// The modules whose matrix precision a caller chooses; token2wav always runs in float32 (fact sheet §1).
import { STAGE_MODULES, type ModuleName, type ModuleWeights, type StageKind, type WeightedModule } from '@omniweb/orchestrator';

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

/** `weights` as `Omni.load` takes it: 'auto' (the default), one format for every module, or one per module. */
export type WeightsOption = 'auto' | WeightFormat | Partial<ModuleWeights>;

/** Explicit `weights`: one format for every module, or one per module (the modules not named get f32). */
export function resolveWeights(weights: WeightFormat | Partial<ModuleWeights>): ModuleWeights {
  const bad = (what: string) => new OmniError('BAD_INPUT', `weights: ${what}; use 'auto', one of ${FORMATS.join(', ')}, or { ${WEIGHTED.join(', ')} } with those values`);
  if (typeof weights === 'string') {
    if (!FORMATS.includes(weights)) throw bad(`${JSON.stringify(weights)} is not a weight format`);
    return { thinker: weights, audio: weights, vision: weights, talker: weights };
  }
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights)) throw bad(`got ${JSON.stringify(weights)}`);
  for (const [key, value] of Object.entries(weights)) {
    if (!(WEIGHTED as readonly string[]).includes(key)) throw bad(`unknown module ${JSON.stringify(key)}`);
    if (!FORMATS.includes(value as WeightFormat)) throw bad(`${key} is ${JSON.stringify(value)}`);
  }
  return { thinker: weights.thinker ?? 'f32', audio: weights.audio ?? 'f32', vision: weights.vision ?? 'f32', talker: weights.talker ?? 'f32' };
}

/** Checks `weights` up front (before any file is opened): 'auto' when absent or 'auto', else the formats given. */
export function parseWeights(weights: WeightsOption | undefined): ModuleWeights | 'auto' {
  return weights === undefined || weights === 'auto' ? 'auto' : resolveWeights(weights);
}

/** The bytes of a [rows, cols] matrix in `format`, as the backends allocate it (quant.ts layouts). */
interface MatrixBytes {
  /** The values, padded to whole groups of 32 when quantized. */
  values: number;
  /** One scale per group, counted as f32 (the larger of the two forms); 0 unquantized. */
  scales: number;
}

function matrixBytes(rows: number, cols: number, format: WeightFormat): MatrixBytes {
  const groups = rows * (paddedCols(cols) / QUANT_GROUP) * 4;
  switch (format) {
    case 'f32': return { values: rows * cols * 4, scales: 0 };
    case 'f16': return { values: rows * cols * 2, scales: 0 };
    case 'q8': return { values: rows * paddedCols(cols), scales: groups };
    case 'q4': return { values: rows * paddedCols(cols) / 2, scales: groups };
  }
}

export interface ModuleSize {
  module: ModuleName;
  format: WeightFormat;
  tensors: number;
  bytes: number;
  /**
   * The largest single buffer the module needs: on WebGPU a vector or one row of a matrix
   * (matrices are split by rows), on wasm a whole tensor's values or scales (one allocation each).
   */
  largestUnitBytes: number;
}

/** One backend's share of the weights: the whole model in-thread, one stage's modules with workers. */
export interface HeapSize {
  /** The stage whose worker holds this heap; 'all' in-thread. */
  heap: StageKind | 'all';
  modules: ModuleName[];
  /** The Talker's worker also holds the Thinker's token table (the Talker reads it): its bytes are in `bytes`. */
  sharedTokenTableBytes: number;
  bytes: number;
  /** What one backend may hold: the wasm heap's ceiling; null on WebGPU (it reports no memory size). */
  limitBytes: number | null;
}

export interface CheckReport {
  device: Pick<BackendInfo, 'kind' | 'name' | 'maxBufferBytes'>;
  pipeline: 'in-thread' | 'workers';
  /** The format of each weighted module's matrices (also in `modules`, for the modules present). */
  weights: ModuleWeights;
  /** Whether `weights` were chosen to fit the device (no `weights` or 'auto') rather than given. */
  weightsChosen: boolean;
  /** The modules a load with these options brings up (no talker or token2wav without speech). */
  modules: ModuleSize[];
  heaps: HeapSize[];
  /** Every heap together. */
  totalBytes: number;
  /** What all heaps must fit in together: the host's memory on wasm; null where the platform does not say (WebGPU reports no memory size). */
  memoryLimitBytes: number | null;
  fits: boolean;
  /** Why not, one line per limit exceeded. */
  problems: string[];
}

/** What the check reads of a checkpoint: its tensor names and shapes (a `TensorStore` or `Checkpoint` has them). */
export type TensorHeaders = Pick<TensorStore, 'names'> & { info(name: string): { readonly shape: readonly number[] } };

export interface FitOptions {
  /** 'in-thread' (default): one backend holds every module; 'workers': one backend per stage. */
  pipeline?: 'in-thread' | 'workers';
  /** Without speech the talker and token2wav are not loaded (default true). */
  speech?: boolean;
  /** One wasm backend's ceiling (default WASM_HEAP_BYTES). */
  heapBytes?: number;
  /** The host's memory (default: what the platform reports). */
  hostBytes?: number | null;
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
    if (bytes >= scale) return `${(bytes / scale).toFixed(2)} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** The Thinker's tensors outside its layers and head: the token table (and final norm) a Talker-only worker loads. */
function isTokenTable(name: string): boolean {
  return name.startsWith('thinker.model.') && !name.startsWith('thinker.model.layers.');
}

/** What would shrink a heap that is too full, most direct first. */
function remedies(heap: HeapSize, sizes: readonly ModuleSize[]): string[] {
  const out: string[] = [];
  if (sizes.some((m) => heap.modules.includes(m.module) && m.module !== 'token2wav' && m.format !== 'q4')) out.push('choose q8 or q4 weights');
  if (heap.heap === 'all') out.push("use pipeline 'workers' (a heap per stage)");
  if (heap.modules.includes('talker') || heap.modules.includes('token2wav')) out.push('load with speech: false');
  out.push('or use a smaller model');
  return out;
}

/**
 * Sizes every module a load with `options` brings up at the chosen formats and checks each
 * backend's share, and all of them together, against `device`'s limits.
 */
export async function checkFit(store: TensorHeaders, device: BackendInfo, formats: ModuleWeights, options: FitOptions = {}): Promise<CheckReport> {
  const { pipeline = 'in-thread', speech = true, heapBytes = WASM_HEAP_BYTES } = options;
  const wasm = device.kind !== 'webgpu';
  const sizes: ModuleSize[] = [];
  let tokenTableBytes = 0;
  for (const module of Object.keys(MODULE_PREFIXES) as ModuleName[]) {
    if (!speech && (module === 'talker' || module === 'token2wav')) continue;
    const format = module === 'token2wav' ? 'f32' : formats[module];
    const size: ModuleSize = { module, format, tensors: 0, bytes: 0, largestUnitBytes: 0 };
    for (const name of store.names()) {
      if (!MODULE_PREFIXES[module].some((p) => name.startsWith(p))) continue;
      const { shape } = store.info(name);
      const elements = shape.reduce((a, b) => a * b, 1);
      // Loaders keep every tensor of two or more dimensions as a matrix weight, vectors as f32.
      const matrix = module !== 'token2wav' && shape.length >= 2;
      const parts = matrix ? matrixBytes(shape[0], elements / shape[0], format) : { values: elements * 4, scales: 0 };
      const bytes = parts.values + parts.scales;
      const unit = !wasm && matrix ? bytes / shape[0] : Math.max(parts.values, parts.scales);
      size.tensors++;
      size.bytes += bytes;
      size.largestUnitBytes = Math.max(size.largestUnitBytes, unit);
      if (isTokenTable(name)) tokenTableBytes += bytes;
    }
    if (size.tensors > 0) sizes.push(size);
  }
  const present = new Set(sizes.map((m) => m.module));
  const bytesOf = (modules: readonly ModuleName[]) => sizes.filter((m) => modules.includes(m.module)).reduce((s, m) => s + m.bytes, 0);
  const limitBytes = wasm ? heapBytes : null;
  const heaps: HeapSize[] = pipeline === 'in-thread'
    ? [{ heap: 'all', modules: [...present], sharedTokenTableBytes: 0, bytes: bytesOf([...present]), limitBytes }]
    : (Object.keys(STAGE_MODULES) as StageKind[]).flatMap((heap) => {
      const modules = STAGE_MODULES[heap].filter((m) => present.has(m));
      if (modules.length === 0) return [];
      const shared = heap === 'talker' ? tokenTableBytes : 0;
      return [{ heap, modules, sharedTokenTableBytes: shared, bytes: bytesOf(modules) + shared, limitBytes }];
    });
  const totalBytes = heaps.reduce((s, h) => s + h.bytes, 0);
  const problems: string[] = [];
  for (const m of sizes) {
    if (m.largestUnitBytes > device.maxBufferBytes) {
      problems.push(`${m.module}: one buffer of ${sizeText(m.largestUnitBytes)} exceeds the device's limit of ${sizeText(device.maxBufferBytes)} per ${wasm ? 'allocation' : 'buffer'}`);
    }
  }
  for (const h of heaps) {
    if (h.limitBytes === null || h.bytes <= h.limitBytes) continue;
    const whose = h.heap === 'all' ? 'the in-thread heap' : `the ${h.heap} worker's heap`;
    const held = `${h.modules.join(' + ')}${h.sharedTokenTableBytes > 0 ? " + the Thinker's token table" : ''}`;
    problems.push(`${whose} (${held}) needs ${sizeText(h.bytes)}, one wasm heap holds at most ${sizeText(h.limitBytes)}; ${remedies(h, sizes).join(', ')}`);
  }
  const host = options.hostBytes === undefined ? await hostMemoryBytes() : options.hostBytes;
  // Every wasm heap is host memory; WebGPU reports no memory size to check against.
  const memoryLimitBytes = wasm ? host : null;
  if (memoryLimitBytes !== null && totalBytes > memoryLimitBytes) {
    problems.push(`the weights take ${sizeText(totalBytes)} in all, the host has ${sizeText(memoryLimitBytes)} of memory; choose q8 or q4 weights or a smaller model`);
  }
  return {
    device: { kind: device.kind, name: device.name, maxBufferBytes: device.maxBufferBytes },
    pipeline,
    weights: { ...formats },
    weightsChosen: false,
    modules: sizes,
    heaps,
    totalBytes,
    memoryLimitBytes,
    fits: problems.length === 0,
    problems,
  };
}

/**
 * The lowest format each module may be stepped down to: the encoders stop at f16 (they are
 * small, and quantizing them costs accuracy for little memory); the Thinker and Talker go to q4.
 */
const FLOOR: Record<WeightedModule, WeightFormat> = { thinker: 'q4', talker: 'q4', audio: 'f16', vision: 'f16' };

/** `formats` with `module` one step down the ladder f32 → f16 → q8 → q4; null at its floor. */
function stepDown(formats: ModuleWeights, module: WeightedModule): ModuleWeights | null {
  const at = FORMATS.indexOf(formats[module]);
  if (at >= FORMATS.indexOf(FLOOR[module])) return null;
  return { ...formats, [module]: FORMATS[at + 1] };
}

/**
 * Each limit `report` exceeds (a module's largest buffer, a heap, the host), as the bytes that
 * must shrink there, so that a step is judged by what it frees where memory is short.
 */
function shortfalls(report: CheckReport): ((r: CheckReport) => number)[] {
  const out: ((r: CheckReport) => number)[] = [];
  for (const wide of report.modules.filter((m) => m.largestUnitBytes > report.device.maxBufferBytes)) {
    out.push((r) => r.modules.find((m) => m.module === wide.module)!.largestUnitBytes);
  }
  report.heaps.forEach((h, i) => {
    if (h.limitBytes !== null && h.bytes > h.limitBytes) out.push((r) => r.heaps[i].bytes);
  });
  if (report.memoryLimitBytes !== null && report.totalBytes > report.memoryLimitBytes) out.push((r) => r.totalBytes);
  return out;
}

/**
 * The formats for `weights`: given ones are checked as they are; 'auto' starts every module at
 * the reference's f32 and, while a limit is exceeded, steps down the module whose step frees
 * the most bytes where it is exceeded, until everything fits or no step helps (then the
 * report says what does not fit).
 */
export async function fitWeights(store: TensorHeaders, device: BackendInfo, weights: ModuleWeights | 'auto', options: FitOptions = {}): Promise<CheckReport> {
  if (weights !== 'auto') return checkFit(store, device, weights, options);
  // The host's memory is read once, not at every step.
  const fixed: FitOptions = { ...options, hostBytes: options.hostBytes === undefined ? await hostMemoryBytes() : options.hostBytes };
  let report = await checkFit(store, device, resolveWeights('f32'), fixed);
  for (;;) {
    // The first exceeded limit that a step can relieve (one at its floor may leave others that can).
    let best: { report: CheckReport; freed: number } | null = null;
    for (const measure of shortfalls(report)) {
      for (const module of WEIGHTED) {
        const next = stepDown(report.weights, module);
        if (next === null) continue;
        const candidate = await checkFit(store, device, next, fixed);
        const freed = measure(report) - measure(candidate);
        if (freed > 0 && (best === null || freed > best.freed)) best = { report: candidate, freed };
      }
      if (best !== null) break;
    }
    if (best === null) break;
    report = best.report;
  }
  return { ...report, weightsChosen: true };
}
