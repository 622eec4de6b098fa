/** bench:e2e's page: the same hops and turns as in Node, with Web Workers (bundled by bench/e2e/node.ts). */
import { connectWorker } from '@omniweb/orchestrator';
import { Omni, type PipelineKind } from '@omniweb/sdk';
import { measureHops, measureTurns, type Echo, type HopResult, type TurnTimes } from './measure.js';

export interface E2ePageApi {
  hops(reps: number): Promise<HopResult[]>;
  turns(device: 'wasm' | 'webgpu', pipeline: PipelineKind, reps: number): Promise<TurnTimes & { loadMs: number; deviceName: string }>;
}

const api: E2ePageApi = {
  async hops(reps) {
    const worker = await connectWorker<Echo>(new URL('./build/echo.js', location.href), 'echo', (why) => console.error(`echo worker: ${why}`));
    try {
      return await measureHops(worker.remote as unknown as Echo, reps);
    } finally {
      worker.terminate();
    }
  },
  async turns(device, pipeline, reps) {
    const started = performance.now();
    const omni = await Omni.load({
      model: `${location.origin}/ckpt/`, device, pipeline,
      ...(pipeline === 'workers' && { workerUrl: new URL('./build/worker.js', location.href) }),
    });
    const loadMs = performance.now() - started;
    try {
      if (omni.device.kind !== device) throw new Error(`asked for ${device}, got ${omni.device.name}`);
      return { loadMs, deviceName: omni.device.name, ...(await measureTurns(omni, reps)) };
    } finally {
      await omni.close();
    }
  },
};

(globalThis as unknown as { e2eBench: E2ePageApi }).e2eBench = api;
