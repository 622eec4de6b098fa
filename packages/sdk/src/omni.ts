/**
 * The entry point: `Omni.check` says whether a model fits a device, `Omni.load` brings it up,
 * `omni.session()` opens a conversation.
 */
import {
  blobFiles, createBackend, defaultModelCache, loadOmniConfig, OmniError, openCheckpoint,
  type Backend, type BackendInfo, type CheckpointInput, type DeviceChoice, type LoadWarning, type WasmBackendOptions, type ModelCache, type OmniConfig,
} from '@omniweb/core';
import { TALKER_SAMPLING } from '@omniweb/talker';
import { Sampler, type CachePolicy, type SamplingOptions } from '@omniweb/thinker';
import { resolveSampleOptions, SAMPLE_RATE, synthesisSeed } from '@omniweb/vocoder';
import { InThreadPipeline, loadCheckpointInfo, systemText, TurnDriver, WorkerPipeline, type Pipeline, type SpeechSynthesis } from '@omniweb/orchestrator';
import { fitWeights, parseWeights, type CheckReport, type ModuleName, type ModuleWeights, type WeightsOption } from './check.js';
import { OmniSession, type TurnScheduler } from './session.js';

export interface LoadProgress {
  /** The module being loaded. */
  module: ModuleName | 'tokenizer';
  /** Checkpoint tensor bytes read so far, of `bytesTotal` in all. */
  bytesDone: number;
  bytesTotal: number;
}

export interface CheckOptions {
  /**
   * A checkpoint folder in the official layout: a Node path, an http(s) URL, the picked files
   * themselves (a `FileList` or `File[]`), or `CheckpointFiles`.
   */
  model: CheckpointInput | PickedFiles;
  /** Default 'auto': WebGPU when an adapter exists, else wasm. */
  device?: DeviceChoice;
  /**
   * Where the wasm backend runs (device 'wasm', or 'auto' without an adapter): its `threads`,
   * the q8/q4 GEMV's `quantizedActivations`, the kernel build (`simd`) and whether its 8-bit
   * dot may take bytes above 127 (`dotBytes`); see `WasmBackendOptions` (defaults: 2 threads where
   * threads can run, 'auto', 'auto', 'auto').
   */
  wasm?: WasmBackendOptions;
  /**
   * Matrix precision, for every module or per module (unnamed modules get f32); token2wav stays
   * float32. 'auto' (default): the most precise formats that fit the device (see `Omni.load`).
   */
  weights?: WeightsOption;
  /**
   * 'in-thread' (default): every stage in the calling thread on one backend. 'workers': one
   * worker per stage (perception, Thinker, Talker, token2wav), each with its own backend, so
   * the stages overlap, the calling thread stays free and each stage's weights get a wasm heap
   * of their own; the Talker's worker holds its own copy of the Thinker's token table (the
   * Talker reads it), and `model` must be a path, a URL or the picked files. A failed worker
   * is restarted with its weights reloaded.
   */
  pipeline?: PipelineKind;
  /** false: the talker and token2wav are not loaded (less memory; sessions are text only). Default true. */
  speech?: boolean;
  /**
   * For folders `omniweb convert` wrote: where verified files are kept between loads.
   * 'auto': the best cache the context offers (OPFS, else the Cache API, else memory), opened
   * by every thread that reads the checkpoint; a `ModelCache` object (in-thread only: it
   * cannot cross to a worker); null or absent: none.
   */
  cache?: 'auto' | ModelCache | null;
  /** Hears what does not stop the load, e.g. `cache-full` (the load goes on without the cache); with workers, from every worker. */
  onWarning?: (warning: LoadWarning) => void;
}

export interface LoadOptions extends CheckOptions {
  onProgress?: (progress: LoadProgress) => void;
  signal?: AbortSignal;
  /**
   * With pipeline 'workers': the URL of the stage worker script, `@omniweb/orchestrator/worker`
   * as the app's bundler emitted it. Default: the script next to the orchestrator module
   * (right in Node and for unbundled ES modules).
   */
  workerUrl?: string | URL;
}

export type PipelineKind = 'in-thread' | 'workers';

/** LoadProgress.module of each stage worker as it starts loading. */
const STAGE_MODULE = { perception: 'audio', thinker: 'thinker', talker: 'talker', speech: 'token2wav' } as const;

export interface SessionOptions {
  /** A speaker name from the checkpoint's spk_dict.pt (default: its first). */
  voice?: string;
  /** Without speech only: speech uses the fixed prompt of fact sheet §1. */
  systemPrompt?: string;
  /** Speak the replies (default: when the model can). */
  speech?: boolean;
  /** The Thinker's sampling (default greedy). */
  sampling?: SamplingOptions;
  /** Reply tokens at most per turn (default 512). */
  maxNewTokens?: number;
  /** The Talker's sampling (over the reference's defaults) and codes at most per reply (default 4096). */
  talker?: { sampling?: SamplingOptions; maxNewTokens?: number };
  /**
   * token2wav's DiT sampling: `solver` 'rk4' (the reference's, default), 'midpoint' or 'euler'
   * (2× and 4× fewer DiT evaluations per chunk, a mel further from the reference's), `steps`
   * time points (default 10), `guidanceScale`, `swayCoefficient`, the noise `seed`.
   */
  synthesis?: SpeechSynthesis;
  /** The Thinker's KV cache (default: plain, min(4096, max positions) rows; `sinkWindow` for endless sessions). */
  cache?: CachePolicy;
}

const CHECK_KEYS = new Set(['model', 'device', 'wasm', 'weights', 'pipeline', 'speech', 'cache', 'onWarning']);
const LOAD_KEYS = new Set([...CHECK_KEYS, 'onProgress', 'signal', 'workerUrl']);
const SESSION_KEYS = new Set(['voice', 'systemPrompt', 'speech', 'sampling', 'maxNewTokens', 'talker', 'synthesis', 'cache']);
const DEFAULT_MAX_NEW_TOKENS = 512;

function checkKeys(options: object, allowed: ReadonlySet<string>, where: string): void {
  const unknown = Object.keys(options).filter((k) => !allowed.has(k));
  if (unknown.length > 0) throw new OmniError('BAD_INPUT', `${where}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; known: ${[...allowed].join(', ')}`);
}

function isModelCache(x: unknown): x is ModelCache {
  const c = x as ModelCache;
  return typeof x === 'object' && x !== null && typeof c.get === 'function' && typeof c.put === 'function' && typeof c.delete === 'function';
}

function checkOptions<T extends CheckOptions>(options: T, keys: ReadonlySet<string>, where: string): T {
  if (options === null || typeof options !== 'object') throw new OmniError('BAD_INPUT', `${where} takes { model, device?, weights?, … }`);
  checkKeys(options, keys, where);
  if (options.model === undefined || options.model === null || options.model === '') throw new OmniError('BAD_INPUT', `${where}: model is required (the checkpoint folder: a path, URL or picked files)`);
  const { pipeline, speech, cache, onWarning, wasm } = options;
  if (wasm !== undefined && (wasm === null || typeof wasm !== 'object')) throw new OmniError('BAD_INPUT', `${where}: wasm must be an object of wasm backend options, got ${JSON.stringify(wasm)}`);
  if (pipeline !== undefined && pipeline !== 'in-thread' && pipeline !== 'workers') throw new OmniError('BAD_INPUT', `${where}: pipeline must be 'in-thread' or 'workers', got ${JSON.stringify(pipeline)}`);
  if (speech !== undefined && typeof speech !== 'boolean') throw new OmniError('BAD_INPUT', `${where}: speech must be true or false, got ${JSON.stringify(speech)}`);
  if (cache !== undefined && cache !== null && cache !== 'auto' && !isModelCache(cache)) {
    throw new OmniError('BAD_INPUT', `${where}: cache must be 'auto', a ModelCache (get, put, delete) or null, got ${JSON.stringify(cache)}`);
  }
  if (isModelCache(cache) && pipeline === 'workers') {
    throw new OmniError('BAD_INPUT', `${where}: a ModelCache object cannot cross to the stage workers; with pipeline 'workers' pass cache: 'auto' (each worker opens the context's cache)`);
  }
  if (onWarning !== undefined && typeof onWarning !== 'function') throw new OmniError('BAD_INPUT', `${where}: onWarning must be a function`);
  return options;
}

/** The cache the calling thread opens the checkpoint with. */
async function resolveCache(cache: CheckOptions['cache']): Promise<ModelCache | null> {
  return cache === 'auto' ? defaultModelCache() : cache ?? null;
}

/** Picked files as a `FileList` or `File[]`: they survive structured cloning, so stage workers can open them too. */
export type PickedFiles = FileList | readonly File[];

function pickedFiles(model: CheckOptions['model']): File[] | null {
  if (typeof FileList !== 'undefined' && model instanceof FileList) return [...model];
  if (Array.isArray(model) && model.length > 0 && model.every((f) => typeof File !== 'undefined' && f instanceof File)) return [...model];
  return null;
}

function checkpointInput(model: CheckOptions['model']): CheckpointInput {
  const files = pickedFiles(model);
  return files ? blobFiles(files) : (model as CheckpointInput);
}

function positiveInteger(value: unknown, what: string): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) throw new OmniError('BAD_INPUT', `${what} ${String(value)} must be an integer ≥ 1`);
  return value as number;
}

export class Omni {
  readonly config: OmniConfig;
  /** Each module's matrix precision: the given `weights`, or those chosen to fit the device. */
  readonly weights: ModuleWeights;
  readonly #pipeline: Pipeline;
  readonly #sessions = new Set<OmniSession>();
  /** Turns of all sessions take the device one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Whether the load brought up the speech stages (Omni.load's `speech`). */
  readonly #speechLoaded: boolean;

  private constructor(pipeline: Pipeline, speechLoaded: boolean, weights: ModuleWeights) {
    this.#pipeline = pipeline;
    this.weights = weights;
    this.config = pipeline.info.config;
    this.#speechLoaded = speechLoaded;
  }

  /**
   * Bytes each module takes at the chosen precision, and each backend's heap with the chosen
   * pipeline and speech, against the device's limits, from the checkpoint's headers alone (no
   * weights are read).
   */
  static async check(options: CheckOptions): Promise<CheckReport> {
    const { model, device, wasm, weights, pipeline, speech, cache, onWarning } = checkOptions(options, CHECK_KEYS, 'Omni.check');
    const formats = parseWeights(weights);
    const checkpoint = await openCheckpoint(checkpointInput(model), { cache: await resolveCache(cache), onWarning });
    try {
      await loadOmniConfig(checkpoint);
      const backend = await createBackend({ ...wasm, device });
      try {
        return await fitWeights(checkpoint, backend.info, formats, { pipeline, speech });
      } finally {
        backend.destroy();
      }
    } finally {
      await checkpoint.close();
    }
  }

  /**
   * Opens the checkpoint, checks that it fits (OUT_OF_MEMORY otherwise) and loads every module.
   * Without `weights` (or with 'auto') each module gets the most precise format that fits: all
   * start at f32, and while a heap, the host's memory or a buffer limit is exceeded the module
   * whose step frees the most there goes one step down f32 → f16 → q8 → q4 (the encoders stop
   * at f16; token2wav stays f32). `omni.weights` says what was chosen; given weights are kept.
   */
  static async load(options: LoadOptions): Promise<Omni> {
    const {
      model, device, wasm, weights, onProgress, signal, pipeline = 'in-thread', workerUrl, speech = true, cache, onWarning,
    } = checkOptions(options, LOAD_KEYS, 'Omni.load');
    if (onProgress !== undefined && typeof onProgress !== 'function') throw new OmniError('BAD_INPUT', 'Omni.load: onProgress must be a function');
    if (workerUrl !== undefined && pipeline !== 'workers') throw new OmniError('BAD_INPUT', "Omni.load: workerUrl goes with pipeline: 'workers'");
    if (workerUrl !== undefined && typeof workerUrl !== 'string' && !(workerUrl instanceof URL)) throw new OmniError('BAD_INPUT', 'Omni.load: workerUrl must be a string or URL');
    const files = pickedFiles(model);
    if (pipeline === 'workers' && typeof model !== 'string' && !(model instanceof URL) && !files) {
      throw new OmniError('BAD_INPUT', "Omni.load: pipeline 'workers' needs model as a path, a URL or the picked files (FileList or File[]) that each worker opens itself; other CheckpointFiles load with pipeline 'in-thread'");
    }
    const choice = parseWeights(weights);
    let module: LoadProgress['module'] = 'tokenizer';
    const input = checkpointInput(model);
    const checkpoint = await openCheckpoint(input, {
      signal,
      onProgress: onProgress && (({ bytesDone, bytesTotal }) => onProgress({ module, bytesDone, bytesTotal })),
      cache: await resolveCache(cache),
      onWarning,
    });
    let backend: Backend | null = null;
    try {
      const config = await loadOmniConfig(checkpoint);
      backend = await createBackend({ ...wasm, device });
      const fit = await fitWeights(checkpoint, backend.info, choice, { pipeline, speech });
      const formats = fit.weights;
      if (!fit.fits) throw new OmniError('OUT_OF_MEMORY', `the model does not fit ${backend.info.name}: ${fit.problems.join('; ')}`);
      const started = (next: LoadProgress['module']) => {
        if (signal?.aborted) throw new OmniError('ABORTED', `loading was aborted before the ${next}`);
        module = next;
      };
      started('tokenizer');
      const loaded = await loadCheckpointInfo(checkpoint, config);
      // Without voices no speech stage is loaded, in-thread or in workers.
      const info = speech ? loaded : { ...loaded, speakers: null };
      if (pipeline === 'in-thread') return new Omni(await InThreadPipeline.load(backend, checkpoint, info, formats, started, { model: input, device: device ?? 'auto', wasm }), speech, formats);
      // The workers bring their own backends; this one only answered the fit check.
      backend.destroy();
      backend = null;
      const workers = await WorkerPipeline.load(info, {
        model: files ?? (model as string | URL), device: device ?? 'auto', wasm, formats, workerUrl, started: (kind) => started(STAGE_MODULE[kind]),
        cache: cache === 'auto' ? 'auto' : null, onWarning,
        onBytes: onProgress && (({ kind, bytesDone, bytesTotal }) => onProgress({ module: STAGE_MODULE[kind], bytesDone, bytesTotal })),
        signal,
      });
      return new Omni(workers, speech, formats);
    } catch (e) {
      backend?.destroy();
      throw e;
    } finally {
      await checkpoint.close();
    }
  }

  /** The device the model runs on. */
  get device(): BackendInfo {
    return this.#pipeline.device;
  }

  /** The voices of spk_dict.pt, in file order; empty when the model cannot speak. */
  get voices(): string[] {
    return [...(this.#pipeline.info.speakers?.keys() ?? [])];
  }

  get canSpeak(): boolean {
    return this.#pipeline.info.speakers !== null;
  }

  /** Opens a conversation; options are checked here, so a bad one fails before any turn. */
  session(options: SessionOptions = {}): OmniSession {
    if (this.#closed) throw new OmniError('BAD_INPUT', 'this Omni was closed; load the model again');
    if (options === null || typeof options !== 'object') throw new OmniError('BAD_INPUT', 'session takes an options object');
    checkKeys(options, SESSION_KEYS, 'omni.session');
    const { speakers, config } = this.#pipeline.info;
    const speech = options.speech ?? speakers !== null;
    if (typeof speech !== 'boolean') throw new OmniError('BAD_INPUT', `speech must be true or false, got ${JSON.stringify(options.speech)}`);
    if (speech && !this.#speechLoaded) {
      throw new OmniError('BAD_INPUT', 'speech: this model was loaded with speech: false (no talker or token2wav); pass speech: false, or load it again without that option');
    }
    if (speech && !speakers) {
      throw new OmniError('BAD_INPUT', 'speech: this checkpoint cannot speak (it lacks the talker, token2wav or spk_dict.pt, or disables audio output); pass speech: false');
    }
    let speaker = null;
    if (options.voice !== undefined) {
      if (!speech) throw new OmniError('BAD_INPUT', `voice ${JSON.stringify(options.voice)} was given but speech is off`);
      speaker = speakers!.get(options.voice) ?? null;
      if (!speaker) throw new OmniError('BAD_INPUT', `voice ${JSON.stringify(options.voice)} is not in spk_dict.pt; choose one of ${this.voices.join(', ')}`);
    } else if (speech) {
      speaker = speakers!.values().next().value!;
    }
    // Built now so that a bad sampling option fails here rather than after a prompt was fed.
    new Sampler(config.thinker.text.vocab, options.sampling);
    const talker = options.talker ?? {};
    if (talker === null || typeof talker !== 'object') throw new OmniError('BAD_INPUT', 'talker must be { sampling?, maxNewTokens? }');
    checkKeys(talker, new Set(['sampling', 'maxNewTokens']), 'omni.session talker');
    if (config.talker) new Sampler(config.talker.vocab, { ...TALKER_SAMPLING, ...talker.sampling });
    if (talker.maxNewTokens !== undefined) positiveInteger(talker.maxNewTokens, 'talker.maxNewTokens');
    const synthesis = options.synthesis ?? {};
    if (synthesis === null || typeof synthesis !== 'object') throw new OmniError('BAD_INPUT', 'synthesis must be { solver?, steps?, guidanceScale?, swayCoefficient?, seed? }');
    checkKeys(synthesis, new Set(['solver', 'steps', 'guidanceScale', 'swayCoefficient', 'seed']), 'omni.session synthesis');
    resolveSampleOptions(synthesis);
    synthesisSeed(synthesis);
    if (options.synthesis !== undefined && !speech) throw new OmniError('BAD_INPUT', 'synthesis shapes the spoken reply; this session does not speak (speech: false, or a model without speech)');
    const conversation = new TurnDriver(this.#pipeline, {
      systemText: systemText(speech, options.systemPrompt),
      speaker,
      sampling: options.sampling ?? {},
      maxNewTokens: options.maxNewTokens === undefined ? DEFAULT_MAX_NEW_TOKENS : positiveInteger(options.maxNewTokens, 'maxNewTokens'),
      talker,
      synthesis,
      cache: options.cache,
    });
    const session = new OmniSession(conversation, this.#schedule, SAMPLE_RATE, () => this.#sessions.delete(session));
    this.#sessions.add(session);
    return session;
  }

  /** Closes every session and frees the models and the device. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#sessions].map((s) => s.close()));
    await this.#pipeline.close();
  }

  readonly #schedule: TurnScheduler = (task) => {
    const run = this.#queue.then(task);
    this.#queue = run.catch(() => undefined);
    return run;
  };
}
