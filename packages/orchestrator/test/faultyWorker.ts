// A stage worker for the fault tests: the real StageHost, plus `fault(method, nth, kind)`, which
// makes the nth call of `method` from now on (on the stage or on an object it returned) fail: throw a
// plain Error, report a lost GPU device, or end the worker thread; `destroyDevice()`; and no GPU
// at all when the environment says so.
import { OmniError } from '@omniweb/core';
import { proxy, proxyMarker } from 'comlink';
import { serveInWorker, StageHost, type StageLoad } from '../src/workerHost.js';

type FaultKind = 'throw' | 'device-lost' | 'exit';

class FaultyHost extends StageHost {
  #faults = new Map<string, { nth: number; kind: FaultKind }>();
  #calls = new Map<string, number>();

  fault(method: string, nth: number, kind: FaultKind): void {
    this.#faults.set(method, { nth, kind });
    this.#calls.set(method, 0);
  }

  /** Destroys the stage's GPU device, as a driver reset or a lost GPU would. */
  destroyDevice(): void {
    (this.backend as unknown as { device: GPUDevice }).device.destroy();
  }

  /** With OMNIWEB_TEST_NO_GPU set (a worker copies the environment when it starts), no GPU device can be had. */
  override load(request: StageLoad, progress?: (bytesDone: number, bytesTotal: number) => void) {
    if (process.env.OMNIWEB_TEST_NO_GPU && request.device !== 'wasm') {
      return Promise.reject(new OmniError('NO_ADAPTER', 'no WebGPU adapter (simulated)'));
    }
    return super.load(request, progress);
  }

  override get stage() {
    return this.#wrap(super.stage);
  }

  #wrap<T extends object>(target: T): T {
    return new Proxy(target, {
      get: (t, prop, receiver) => {
        const value = Reflect.get(t, prop, receiver);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return async (...args: unknown[]) => {
          this.#trip(prop);
          const result = await (value as (...a: unknown[]) => unknown).apply(t, args);
          return result !== null && typeof result === 'object' && (result as Record<symbol, unknown>)[proxyMarker] ? proxy(this.#wrap(result)) : result;
        };
      },
    });
  }

  #trip(method: string): void {
    const count = (this.#calls.get(method) ?? 0) + 1;
    this.#calls.set(method, count);
    const fault = this.#faults.get(method);
    if (!fault || fault.nth !== count) return;
    this.#faults.delete(method);
    if (fault.kind === 'exit') process.exit(3);
    if (fault.kind === 'device-lost') throw new OmniError('DEVICE_LOST', 'the GPU device was lost (simulated)');
    throw new Error(`injected failure in ${method}`);
  }
}

void serveInWorker(new FaultyHost());
