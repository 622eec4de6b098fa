/**
 * Every stage in this thread, on one backend: the Talker shares the Thinker's weights. When
 * that backend's GPU device is lost, the pipeline brings every stage back on a new backend
 * (wasm if no GPU device can be had any more), reloading the weights from the checkpoint.
 */
import {
  createBackend, isOmniError, openCheckpoint, type Backend, type BackendInfo, type Checkpoint, type CheckpointInput, type DeviceChoice, type WasmBackendOptions,
} from '@omniweb/core';
import type { Recovery, StageSet } from './driver.js';
import { disposeModules, loadModules, type CheckpointInfo, type LoadedModules, type ModuleName, type ModuleWeights } from './models.js';
import { LocalPerception } from './perceptionStage.js';
import { LocalSpeech } from './speechStage.js';
import type { Stages } from './stages.js';
import { LocalTalker } from './talkerStage.js';
import { LocalThinker } from './thinkerStage.js';

/** A loaded pipeline as `Omni` holds it. */
export interface Pipeline extends StageSet {
  /** Where the Thinker runs. */
  readonly device: BackendInfo;
  close(): Promise<void>;
}

/** The modules a pipeline loads: speech only when the checkpoint can speak. */
export function pipelineModules(info: CheckpointInfo): ModuleName[] {
  return info.speakers ? ['thinker', 'audio', 'vision', 'talker', 'token2wav'] : ['thinker', 'audio', 'vision'];
}

/** Where to reload the pipeline from after a lost device. */
export interface InThreadSource {
  /** The checkpoint as `openCheckpoint` takes it (opened again to reload). */
  model: CheckpointInput;
  /** The device choice for a new backend, and the wasm backend's options. */
  device: DeviceChoice;
  wasm?: WasmBackendOptions;
}

export class InThreadPipeline implements Pipeline {
  readonly info: CheckpointInfo;
  readonly #formats: ModuleWeights;
  readonly #source: InThreadSource | null;
  #backend: Backend;
  #modules: LoadedModules;
  #stages: Stages;

  private constructor(backend: Backend, info: CheckpointInfo, formats: ModuleWeights, source: InThreadSource | null, modules: LoadedModules) {
    this.info = info;
    this.#formats = formats;
    this.#source = source;
    this.#backend = backend;
    this.#modules = modules;
    this.#stages = this.#build();
  }

  /**
   * Loads every module onto `backend` (which the pipeline then owns); `started` as in
   * `loadModules`. Without `source` a lost device is not recovered from.
   */
  static async load(
    backend: Backend, checkpoint: Checkpoint, info: CheckpointInfo, formats: ModuleWeights, started: (module: ModuleName) => void,
    source: InThreadSource | null = null,
  ): Promise<InThreadPipeline> {
    const modules = await loadModules(backend, checkpoint, info.config, formats, new Set(pipelineModules(info)), started);
    return new InThreadPipeline(backend, info, formats, source, modules);
  }

  get device(): BackendInfo {
    return this.#backend.info;
  }

  stages(): Stages {
    return this.#stages;
  }

  /**
   * A stage's failure in this thread leaves its state as its module guarantees: nothing to
   * rebuild, unless the device was lost — then everything is reloaded on a new backend.
   */
  async recover(error?: unknown): Promise<Recovery> {
    const source = this.#source;
    if (!source || !isOmniError(error, 'DEVICE_LOST')) return { restarted: [], contextLost: false };
    try {
      disposeModules(this.#modules);
      this.#backend.destroy();
    } catch {
      // The lost device took its buffers along; a backend may refuse calls once it is lost.
    }
    this.#modules = {};
    let backend: Backend;
    try {
      backend = await createBackend({ ...source.wasm, device: source.device });
    } catch (e) {
      if (!isOmniError(e, 'NO_ADAPTER')) throw e;
      backend = await createBackend({ ...source.wasm, device: 'wasm' });
    }
    this.#backend = backend;
    const checkpoint = await openCheckpoint(source.model);
    try {
      this.#modules = await loadModules(backend, checkpoint, this.info.config, this.#formats, new Set(pipelineModules(this.info)), () => {});
    } finally {
      await checkpoint.close();
    }
    this.#stages = this.#build();
    const s = this.#stages;
    const restarted = ['perception', 'thinker', ...(s.talker ? ['talker'] : []), ...(s.speech ? ['speech'] : [])];
    return { restarted, contextLost: true };
  }

  async close(): Promise<void> {
    disposeModules(this.#modules);
    this.#backend.destroy();
  }

  #build(): Stages {
    const { thinker, audioEncoder, visionEncoder, talker, token2wav } = this.#modules;
    return {
      perception: new LocalPerception(this.#backend, this.info.preprocessor, audioEncoder!, visionEncoder!),
      thinker: new LocalThinker(thinker!),
      talker: talker ? new LocalTalker(talker) : null,
      speech: token2wav ? new LocalSpeech(token2wav) : null,
    };
  }
}
