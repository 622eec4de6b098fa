/** Every stage in this thread, on one backend: the Talker shares the Thinker's weights. */
import type { Backend, BackendInfo, Checkpoint } from '@omniweb/core';
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

export class InThreadPipeline implements Pipeline {
  readonly info: CheckpointInfo;
  readonly #backend: Backend;
  readonly #modules: LoadedModules;
  readonly #stages: Stages;

  private constructor(backend: Backend, info: CheckpointInfo, modules: LoadedModules) {
    this.#backend = backend;
    this.info = info;
    this.#modules = modules;
    const { thinker, audioEncoder, visionEncoder, talker, token2wav } = modules;
    this.#stages = {
      perception: new LocalPerception(backend, info.preprocessor, audioEncoder!, visionEncoder!),
      thinker: new LocalThinker(thinker!),
      talker: talker ? new LocalTalker(talker) : null,
      speech: token2wav ? new LocalSpeech(token2wav) : null,
    };
  }

  /** Loads every module onto `backend` (which the pipeline then owns); `started` as in `loadModules`. */
  static async load(
    backend: Backend, checkpoint: Checkpoint, info: CheckpointInfo, formats: ModuleWeights, started: (module: ModuleName) => void,
  ): Promise<InThreadPipeline> {
    const modules = await loadModules(backend, checkpoint, info.config, formats, new Set(pipelineModules(info)), started);
    return new InThreadPipeline(backend, info, modules);
  }

  get device(): BackendInfo {
    return this.#backend.info;
  }

  stages(): Stages {
    return this.#stages;
  }

  /** In this thread a stage's failure leaves its state as its module guarantees: nothing to rebuild. */
  async recover(): Promise<Recovery> {
    return { restarted: [], contextLost: false };
  }

  async close(): Promise<void> {
    disposeModules(this.#modules);
    this.#backend.destroy();
  }
}
