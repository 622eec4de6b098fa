/**
 * One stage in its own worker, as the driver's thread holds it. Every call races the worker's
 * death, so a crashed or terminated worker fails the call (INTERNAL) instead of leaving it
 * pending forever; such a failure, or a DEVICE_LOST or INTERNAL error from the stage, marks
 * the worker broken, and `restart()` replaces it with a fresh one that reloads its weights.
 */
import { OmniError, isOmniError, type BackendInfo, type LoadWarning } from '@omniweb/core';
import { proxy, releaseProxy, type Remote } from 'comlink';
import './errors.js';
import { connectWorker, type ConnectedWorker } from './spawn.js';
import type { StageHost, StageKind, StageLoad } from './workerHost.js';

/** Hears the checkpoint bytes a loading worker has read. */
export type LoadBytes = (bytesDone: number, bytesTotal: number) => void;

/** Calls after which a worker-side object is done with: its port is released. */
const FINAL_CALLS = new Set<PropertyKey>(['stop', 'close']);

function breaks(e: unknown): boolean {
  return !(e instanceof OmniError) || e.code === 'INTERNAL' || e.code === 'DEVICE_LOST';
}

export class StageWorker<Stage extends object> {
  readonly kind: StageKind;
  readonly #url: string | URL;
  readonly #load: StageLoad;
  #worker: ConnectedWorker<StageHost> | null = null;
  #stage: Stage | null = null;
  #info: BackendInfo | null = null;
  /** Why the worker can no longer be trusted; null while it is healthy. */
  #broken: OmniError | null = null;

  private constructor(url: string | URL, load: StageLoad) {
    this.kind = load.kind;
    this.#url = url;
    this.#load = load;
  }

  /**
   * Spawns the worker and has it load its stage; `progress` hears the checkpoint bytes it
   * reads; `signal` ends the worker and the load (ABORTED); `warning` hears the load's warnings.
   */
  static async start<Stage extends object>(
    url: string | URL, load: StageLoad, progress?: LoadBytes, signal?: AbortSignal, warning?: (w: LoadWarning) => void,
  ): Promise<StageWorker<Stage>> {
    const worker = new StageWorker<Stage>(url, load);
    await worker.#start(progress, signal, warning);
    return worker;
  }

  /** The stage; a new object after every restart (conversations of the old one are gone). */
  get stage(): Stage {
    if (!this.#stage) throw new OmniError('INTERNAL', `the ${this.kind} worker is not running`);
    return this.#stage;
  }

  get info(): BackendInfo {
    return this.#info!;
  }

  get broken(): OmniError | null {
    return this.#broken;
  }

  /** The worker's host object, unguarded: for tests and benchmarks. */
  get host(): Remote<StageHost> {
    if (!this.#worker) throw new OmniError('INTERNAL', `the ${this.kind} worker is not running`);
    return this.#worker.remote;
  }

  /**
   * Replaces the worker: a fresh one loads the stage again (on wasm when the device choice now
   * finds no GPU). When that fails too, the worker stays broken and the next recovery retries.
   */
  async restart(): Promise<void> {
    const why = this.#broken;
    this.terminate();
    try {
      try {
        await this.#start();
      } catch (e) {
        if (!(isOmniError(e, 'NO_ADAPTER') && this.#load.device !== 'wasm')) throw e;
        this.#load.device = 'wasm';
        await this.#start();
      }
    } catch (e) {
      this.#broken = why ?? (e instanceof OmniError ? e : new OmniError('INTERNAL', String(e)));
      throw e;
    }
  }

  terminate(): void {
    this.#worker?.terminate();
    this.#worker = null;
    this.#stage = null;
  }

  async #start(progress?: LoadBytes, signal?: AbortSignal, warning?: (w: LoadWarning) => void): Promise<void> {
    let died!: (why: string) => void;
    const death = new Promise<never>((_, reject) => {
      died = (why) => reject(new OmniError('INTERNAL', `the ${this.kind} worker stopped: ${why}`));
    });
    const worker = await connectWorker<StageHost>(this.#url, `omniweb-${this.kind}`, (why) => died(why));
    death.catch((e: OmniError) => this.#fail(worker, e));
    this.#worker = worker;
    this.#broken = null;
    const host = worker.remote;
    let onAbort: (() => void) | null = null;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new OmniError('ABORTED', `loading was aborted while the ${this.kind} worker loaded`));
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort);
    });
    try {
      this.#info = await Promise.race([host.load(this.#load, progress && proxy(progress), warning && proxy(warning)), death, aborted]);
    } catch (e) {
      worker.terminate();
      this.#worker = null;
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort!);
    }
    this.#stage = this.#guard(worker, host.stage, death, false) as Stage;
  }

  /** Marks the worker broken, unless it was already replaced (or terminated on purpose). */
  #fail(worker: ConnectedWorker<StageHost>, e: OmniError): void {
    if (worker === this.#worker) this.#broken ??= e;
  }

  /**
   * A view of a remote object whose calls race the worker's death; remote objects a call
   * returns (a conversation, a reply) are guarded the same way, and their port is released
   * once a final call (`stop`, `close`) was made and no call is in flight (a release
   * overtaking a reply would leave that call pending forever).
   */
  #guard(worker: ConnectedWorker<StageHost>, remote: unknown, death: Promise<never>, owned: boolean): object {
    const target = remote as Record<PropertyKey, (...args: unknown[]) => Promise<unknown>> & { [releaseProxy](): void };
    let pending = 0;
    let finished = false;
    let released = false;
    return new Proxy({}, {
      get: (_, prop) => {
        if (prop === 'then') return undefined; // not a thenable: it may be awaited as a value
        return async (...args: unknown[]) => {
          if (released) throw new OmniError('BAD_INPUT', `${String(prop)}: this ${this.kind} object was already stopped`);
          pending++;
          try {
            const result = await Promise.race([target[prop](...args), death]);
            return typeof result === 'function' ? this.#guard(worker, result, death, true) : result;
          } catch (e) {
            if (breaks(e)) this.#fail(worker, e instanceof OmniError ? e : new OmniError('INTERNAL', String(e)));
            throw e;
          } finally {
            pending--;
            finished ||= owned && FINAL_CALLS.has(prop);
            if (finished && pending === 0 && !released) {
              released = true;
              target[releaseProxy]();
            }
          }
        };
      },
    });
  }
}
