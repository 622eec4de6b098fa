/**
 * Every stage in its own worker: perception, the Thinker, the Talker and token2wav each open
 * the checkpoint and load their modules onto their own backend, so encoding, generation,
 * codec decoding and synthesis overlap on separate threads. A broken worker is replaced on
 * `recover()`; replacing the Thinker's loses every conversation's context.
 */
import { isOmniError, OmniError, type BackendInfo, type DeviceChoice, type LoadWarning, type WasmBackendOptions } from '@omniweb/core';
import type { Recovery } from './driver.js';
import type { Pipeline } from './inThread.js';
import type { CheckpointInfo, ModuleWeights } from './models.js';
import { defaultWorkerUrl } from './spawn.js';
import type { PerceptionStage, SpeechStage, Stages, TalkerStage, ThinkerStage } from './stages.js';
import { StageWorker } from './stageWorker.js';
import type { StageKind, StageLoad } from './workerHost.js';

export interface WorkerPipelineOptions {
  /** The checkpoint folder: a Node path, an http(s) URL, or the picked files (each worker opens it itself). */
  model: string | URL | readonly File[];
  device: DeviceChoice;
  /** The wasm backend's options, where a worker's backend is wasm (default: its defaults). */
  wasm?: WasmBackendOptions;
  formats: ModuleWeights;
  /** The stage worker script (`@omniweb/orchestrator/worker` as the app bundled it); default: the one next to this module. */
  workerUrl?: string | URL;
  /** Called as each stage's worker starts loading. */
  started?: (kind: StageKind) => void;
  /**
   * Checkpoint bytes read by all workers together, and the checkpoint's tensor bytes (each
   * worker reads its own part; the Talker's also reads the Thinker's token table, so the
   * count can pass the checkpoint's size); `kind` is the worker that read last.
   */
  onBytes?: (progress: { kind: StageKind; bytesDone: number; bytesTotal: number }) => void;
  /** Ends every worker and the load (ABORTED). */
  signal?: AbortSignal;
  /** 'auto': each worker opens the context's model cache for converted folders (default none). */
  cache?: StageLoad['cache'];
  /** Hears every worker's load warnings (e.g. a full model cache). */
  onWarning?: (warning: LoadWarning) => void;
}

interface StageWorkers {
  perception: StageWorker<PerceptionStage>;
  thinker: StageWorker<ThinkerStage>;
  talker: StageWorker<TalkerStage> | null;
  speech: StageWorker<SpeechStage> | null;
}

export class WorkerPipeline implements Pipeline {
  readonly info: CheckpointInfo;
  readonly #workers: StageWorkers;

  private constructor(info: CheckpointInfo, workers: StageWorkers) {
    this.info = info;
    this.#workers = workers;
  }

  /** Starts one worker per stage (speech stages only when the checkpoint can speak) and waits until all are loaded. */
  static async load(info: CheckpointInfo, options: WorkerPipelineOptions): Promise<WorkerPipeline> {
    const given = options.model;
    let model: StageLoad['model'];
    if (given instanceof URL) model = given.href;
    else if (typeof given === 'string') model = given;
    else if (Array.isArray(given) && given.every((f) => f instanceof File)) model = Object.fromEntries(given.map((f) => [f.name, f]));
    else throw new OmniError('BAD_INPUT', "pipeline 'workers' needs the model as a path, a URL or File objects, which each worker can open");
    const url = options.workerUrl ?? (await defaultWorkerUrl());
    const kinds: StageKind[] = info.speakers ? ['perception', 'thinker', 'talker', 'speech'] : ['perception', 'thinker'];
    const done = new Map<StageKind, number>();
    const onBytes = options.onBytes;
    const started = await Promise.allSettled(kinds.map((kind) => {
      options.started?.(kind);
      const progress = onBytes && ((bytesDone: number, bytesTotal: number) => {
        done.set(kind, bytesDone);
        const all = [...done.values()].reduce((a, b) => a + b, 0);
        onBytes({ kind, bytesDone: all, bytesTotal: Math.max(bytesTotal, all) });
      });
      const load = { kind, model, device: options.device, wasm: options.wasm ?? {}, formats: options.formats, preprocessor: info.preprocessor, cache: options.cache ?? null };
      return StageWorker.start(url, load, progress, options.signal, options.onWarning);
    }));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const s of started) if (s.status === 'fulfilled') s.value.terminate();
      // An abort is the cause of whatever else failed meanwhile.
      const aborted = started.find((s) => s.status === 'rejected' && isOmniError(s.reason, 'ABORTED'));
      throw ((aborted ?? failed) as PromiseRejectedResult).reason;
    }
    const byKind = new Map(kinds.map((kind, i) => [kind, (started[i] as PromiseFulfilledResult<StageWorker<object>>).value]));
    return new WorkerPipeline(info, {
      perception: byKind.get('perception') as StageWorker<PerceptionStage>,
      thinker: byKind.get('thinker') as StageWorker<ThinkerStage>,
      talker: (byKind.get('talker') ?? null) as StageWorker<TalkerStage> | null,
      speech: (byKind.get('speech') ?? null) as StageWorker<SpeechStage> | null,
    });
  }

  /** Where the Thinker runs. */
  get device(): BackendInfo {
    return this.#workers.thinker.info;
  }

  stages(): Stages {
    const w = this.#workers;
    return { perception: w.perception.stage, thinker: w.thinker.stage, talker: w.talker?.stage ?? null, speech: w.speech?.stage ?? null };
  }

  /** The worker of one stage (tests and benchmarks reach into it); null for a stage this pipeline lacks. */
  worker(kind: StageKind): StageWorker<object> | null {
    return this.#workers[kind];
  }

  async recover(): Promise<Recovery> {
    const broken = this.#all().filter((w) => w.broken !== null);
    for (const worker of broken) await worker.restart();
    return { restarted: broken.map((w) => w.kind), contextLost: broken.some((w) => w.kind === 'thinker') };
  }

  async close(): Promise<void> {
    for (const worker of this.#all()) worker.terminate();
  }

  #all(): StageWorker<object>[] {
    const w = this.#workers;
    const all: (StageWorker<object> | null)[] = [w.perception, w.thinker, w.talker, w.speech];
    return all.filter((x) => x !== null);
  }
}
