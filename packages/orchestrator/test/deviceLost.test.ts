// WebGPU device loss in a stage worker, in Node on Dawn's SwiftShader (CPU; slow, so short
// text-only turns): the Thinker worker's GPUDevice is destroyed between turns; the next turn
// fails with DEVICE_LOST, the worker comes back on a new device with its weights reloaded,
// and the session answers again (a fresh conversation: the same reply to the same first prompt).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Remote } from 'comlink';
import { WorkerPipeline } from '../src/index.js';
import { F32, textDriver, tinyModel, turn } from './pipelines.js';

let pipeline: WorkerPipeline;
beforeAll(async () => {
  const { model, info } = await tinyModel();
  pipeline = await WorkerPipeline.load(info, { model, device: 'webgpu', formats: F32, workerUrl: new URL('./faultyWorker.ts', import.meta.url) });
});
afterAll(async () => { await pipeline?.close(); });

describe('a lost GPU device (WebGPU on SwiftShader)', () => {
  it('the Thinker worker gets a new device and reloads its weights; the session goes on', async () => {
    expect(pipeline.device.kind).toBe('webgpu');
    const driver = textDriver(pipeline, 3);
    const first = await turn(driver, { text: 'Hello!' });
    const stage = pipeline.stages().thinker;
    await (pipeline.worker('thinker')!.host as unknown as Remote<{ destroyDevice(): void }>).destroyDevice();
    await expect(turn(driver, { text: 'Again.' })).rejects.toThrow(/GPU device was lost .*restarted the thinker stage with weights reloaded; the conversation starts afresh/);
    expect(pipeline.stages().thinker).not.toBe(stage);
    expect(pipeline.worker('thinker')!.info.kind).toBe('webgpu');
    const again = await turn(driver, { text: 'Hello!' });
    expect(again.ids).toEqual(first.ids);
    driver.dispose();
  });
});
