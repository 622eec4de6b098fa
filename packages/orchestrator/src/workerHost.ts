/**
 * What a stage worker runs: it opens the checkpoint itself, creates its own backend and loads
 * only its stage's modules, then serves the stage to the driver's thread over comlink.
 */
import {
  blobFiles, createBackend, defaultModelCache, loadOmniConfig, OmniError, openCheckpoint, type Backend, type BackendInfo, type DeviceChoice, type WasmBackendOptions,
  type LoadWarning,
} from '@omniweb/core';
import type { PreprocessorConfig } from '@omniweb/media';
import { expose, type Endpoint } from 'comlink';
import './errors.js';
import { disposeModules, loadModules, type LoadedModules, type ModuleName, type ModuleWeights } from './models.js';
import { LocalPerception } from './perceptionStage.js';
import { LocalSpeech } from './speechStage.js';
import { LocalTalker } from './talkerStage.js';
import { LocalThinker } from './thinkerStage.js';

export type StageKind = 'perception' | 'thinker' | 'talker' | 'speech';

/** The modules each stage's worker loads (the Talker's worker also loads the Thinker's token table for it). */
export const STAGE_MODULES: Record<StageKind, readonly ModuleName[]> = {
  perception: ['audio', 'vision'],
  thinker: ['thinker'],
  talker: ['talker'],
  speech: ['token2wav'],
};

/** Everything a worker needs to bring its stage up; all of it survives structured cloning. */
export interface StageLoad {
  kind: StageKind;
  /** The checkpoint folder: a Node path, an http(s) URL, or the picked files by name (Node clones a File as a nameless Blob). */
  model: string | Record<string, Blob>;
  device: DeviceChoice;
  /** The wasm backend's options (plain values: they clone). */
  wasm: WasmBackendOptions;
  formats: ModuleWeights;
  preprocessor: PreprocessorConfig;
  /** 'auto': open the worker's context's model cache (a cache object cannot be cloned); null: none. */
  cache: 'auto' | null;
}

type LocalStage = LocalPerception | LocalThinker | LocalTalker | LocalSpeech;

export class StageHost {
  #backend: Backend | null = null;
  #modules: LoadedModules = {};
  #stage: LocalStage | null = null;

  /**
   * Loads the stage; its device's description comes back. `progress` hears the checkpoint
   * bytes read, `warning` what does not stop the load (a full model cache).
   */
  async load(request: StageLoad, progress?: (bytesDone: number, bytesTotal: number) => void, warning?: (w: LoadWarning) => void): Promise<BackendInfo> {
    if (this.#stage) throw new OmniError('INTERNAL', `this worker already serves the ${request.kind} stage`);
    const checkpoint = await openCheckpoint(typeof request.model === 'string' ? request.model : blobFiles(request.model), {
      onProgress: progress && (({ bytesDone, bytesTotal }) => progress(bytesDone, bytesTotal)),
      cache: request.cache === 'auto' ? await defaultModelCache() : null,
      onWarning: warning && ((w) => warning({ kind: w.kind, message: `${request.kind} worker: ${w.message}` })),
    });
    try {
      const config = await loadOmniConfig(checkpoint);
      const backend = this.#backend = await createBackend({ ...request.wasm, device: request.device });
      this.#modules = await loadModules(backend, checkpoint, config, request.formats, new Set(STAGE_MODULES[request.kind]), () => {});
      this.#stage = this.#build(request);
      return backend.info;
    } catch (e) {
      this.close();
      throw e;
    } finally {
      await checkpoint.close();
    }
  }

  /** The loaded stage; its methods are what the driver calls. */
  get stage(): LocalStage {
    if (!this.#stage) throw new OmniError('INTERNAL', 'the stage worker has not loaded its stage');
    return this.#stage;
  }

  /** The stage's backend (fault tests reach its GPU device through it). */
  get backend(): Backend {
    if (!this.#backend) throw new OmniError('INTERNAL', 'the stage worker has no backend yet');
    return this.#backend;
  }

  close(): void {
    disposeModules(this.#modules);
    this.#modules = {};
    this.#stage = null;
    this.#backend?.destroy();
    this.#backend = null;
  }

  #build(request: StageLoad): LocalStage {
    const m = this.#modules;
    switch (request.kind) {
      case 'perception': return new LocalPerception(this.backend, request.preprocessor, m.audioEncoder!, m.visionEncoder!);
      case 'thinker': return new LocalThinker(m.thinker!);
      case 'talker': return new LocalTalker(m.talker!);
      case 'speech': return new LocalSpeech(m.token2wav!);
    }
  }
}

/**
 * Serves `target` (a `StageHost`, or any object whose methods take and return cloneable
 * values) on this worker's port: `self` in a browser, `parentPort` through comlink's node
 * adapter in Node.
 */
export async function serveInWorker(target: object): Promise<void> {
  expose(target, await workerEndpoint());
}

async function workerEndpoint(): Promise<Endpoint> {
  const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
  if (!isNode) return self as unknown as Endpoint;
  // Variable specifiers: bundlers for browsers never follow them.
  const threads = 'node:worker_threads';
  const adapter = 'comlink/dist/esm/node-adapter.mjs';
  const { parentPort } = (await import(/* @vite-ignore */ threads)) as typeof import('node:worker_threads');
  const { default: nodeEndpoint } = (await import(/* @vite-ignore */ adapter)) as { default: (port: object) => Endpoint };
  if (!parentPort) throw new OmniError('INTERNAL', 'the stage worker entry runs only inside a worker thread');
  return nodeEndpoint(parentPort);
}
