// WebGPU device loss, in Node on Dawn's SwiftShader (CPU; slow, so short text-only turns): a
// GPUDevice is destroyed between turns; the next turn fails with DEVICE_LOST, the stage comes
// back on a new device with its weights reloaded (the Thinker worker, or on wasm when no GPU
// can be had; in-thread, the whole pipeline), and the session answers again: a fresh
// conversation, so the same reply to the same first prompt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Remote } from 'comlink';
import { createBackend, openCheckpoint } from '@omniweb/core';
import { InThreadPipeline, WorkerPipeline, type CheckpointInfo } from '../src/index.js';
import { F32, textDriver, tinyModel, turn } from './pipelines.js';

let pipeline: WorkerPipeline;
let model: string;
let info: CheckpointInfo;
beforeAll(async () => {
  ({ model, info } = await tinyModel());
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

  it('a worker that finds no GPU any more when it restarts falls back to wasm', async () => {
    const driver = textDriver(pipeline, 3);
    await turn(driver, { text: 'Hello!' });
    await (pipeline.worker('thinker')!.host as unknown as Remote<{ destroyDevice(): void }>).destroyDevice();
    process.env.OMNIWEB_TEST_NO_GPU = '1';
    try {
      await expect(turn(driver, { text: 'Again.' })).rejects.toThrow(/GPU device was lost .*restarted the thinker stage/);
    } finally {
      delete process.env.OMNIWEB_TEST_NO_GPU;
    }
    expect(pipeline.worker('thinker')!.info.kind).toBe('wasm');
    expect(pipeline.worker('talker')!.info.kind).toBe('webgpu');
    const again = await turn(driver, { text: 'Hello!' });
    expect(again.ids).toHaveLength(3);
    driver.dispose();
  });

  it('in-thread: every stage moves to a new device, weights reloaded; the session goes on', async () => {
    const backend = await createBackend({ device: 'webgpu' });
    const checkpoint = await openCheckpoint(model);
    const local = await InThreadPipeline.load(backend, checkpoint, info, F32, () => {}, { model, device: 'webgpu' }).finally(() => checkpoint.close());
    try {
      const driver = textDriver(local, 3);
      const first = await turn(driver, { text: 'Hello!' });
      (backend as unknown as { device: GPUDevice }).device.destroy();
      await expect(turn(driver, { text: 'Again.' })).rejects.toThrow(
        /GPU device was lost .*restarted the perception, thinker, talker, speech stages with weights reloaded; the conversation starts afresh/,
      );
      expect(local.device.kind).toBe('webgpu');
      const again = await turn(driver, { text: 'Hello!' });
      expect(again.ids).toEqual(first.ids);
      driver.dispose();
    } finally {
      await local.close();
    }
  });
});
