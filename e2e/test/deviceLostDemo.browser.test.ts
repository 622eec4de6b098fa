// The demo page on WebGPU (SwiftShader here) loses its GPU device while a reply is streaming:
// the browser's own `GPUDevice.destroy()` on the device the SDK asked for, which fires
// `device.lost` as a GPU process crash or a driver reset would. The page must show that
// turn's DEVICE_LOST error, the SDK must bring the model back (on a new WebGPU device, or on
// wasm when no adapter is left) and the next turn must answer with text and speech.
import { afterAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { demoState, holdTalk, startDemoBrowser, type DemoBrowser } from '../demoPage.js';

const SAMPLES_PER_CODE = 480;
/** SwiftShader runs WGSL on the CPU: a few tokens and codes keep a turn within a minute, yet the reply streams long enough to be cut. */
const QUERY = '?device=webgpu&maxTokens=8&maxCodes=10';

/** What the test reaches in the page: every GPUDevice the page asked for, and a switch that makes adapters disappear. */
interface GpuProbe { gpuProbe: { devices: GPUDevice[]; adapterGone: boolean } }

/** Runs before the page's scripts: records the devices `requestDevice` gives, and answers `requestAdapter` with null once `adapterGone` is set (as a browser whose GPU is gone does). */
function probeGpu(): void {
  const probe: GpuProbe['gpuProbe'] = { devices: [], adapterGone: false };
  (window as unknown as GpuProbe).gpuProbe = probe;
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor?: GPUDeviceDescriptor) {
    const device = await requestDevice.call(this, descriptor);
    probe.devices.push(device);
    return device;
  };
  const requestAdapter = GPU.prototype.requestAdapter;
  GPU.prototype.requestAdapter = function (this: GPU, options?: GPURequestAdapterOptions) {
    return probe.adapterGone ? Promise.resolve(null) : requestAdapter.call(this, options);
  };
}

/** Once the first reply token is shown and the turn has not ended, destroys every device the page holds (in the same task, so the reply cannot end in between). */
function destroyDeviceMidAnswer(page: Page, adapterGone: boolean) {
  return page.evaluate((gone) => new Promise<{ textTokens: number; turnsEnded: number; devices: number }>((resolve) => {
    const poll = () => {
      const demo = window.omniDemo;
      if (demo.textTokens === 0) return void setTimeout(poll, 2);
      const probe = (window as unknown as GpuProbe).gpuProbe;
      probe.adapterGone = gone;
      for (const device of probe.devices) device.destroy();
      resolve({ textTokens: demo.textTokens, turnsEnded: demo.turns.length, devices: probe.devices.length });
    };
    poll();
  }), adapterGone);
}

let demo: Promise<DemoBrowser> | undefined;
const ready = () => (demo ??= startDemoBrowser());
afterAll(async () => { await (await demo)?.close(); });

describe.each([
  { adapterGone: false, recoveredOn: 'webgpu', devicesAfter: 2 },
  { adapterGone: true, recoveredOn: 'wasm', devicesAfter: 1 },
])('demo page on WebGPU, device lost mid-answer (adapter gone: $adapterGone)', ({ adapterGone, recoveredOn, devicesAfter }) => {
  it(`shows the turn's DEVICE_LOST error, recovers on ${recoveredOn}, and the next turn answers with text and speech`, async () => {
    const { open, pageErrors } = await ready();
    const page = await open(QUERY, probeGpu);
    const loaded = await demoState(page);
    expect(loaded.errors).toEqual([]);
    expect(loaded.device).toBe('webgpu');
    expect(loaded.pipeline).toBe('in-thread');

    await holdTalk(page, 1.5);
    const cut = await destroyDeviceMidAnswer(page, adapterGone);
    // Mid-answer: a reply token was out and the turn had not ended.
    expect(cut).toEqual({ textTokens: expect.any(Number), turnsEnded: 0, devices: 1 });
    expect(cut.textTokens).toBeGreaterThan(0);
    await page.waitForFunction(() => window.omniDemo.turns.length >= 1 && window.omniDemo.state === 'ready', null, { timeout: 240_000, polling: 100 });
    const failed = await demoState(page);
    expect(failed.errors).toHaveLength(1);
    expect(failed.errors[0]).toMatch(/^DEVICE_LOST: .*GPU device was lost.*restarted the perception, thinker, talker, speech stages with weights reloaded; the conversation starts afresh/);
    expect(await page.locator('#errors li').allTextContents()).toEqual(failed.errors);
    // Where the model runs now: a new WebGPU device, or wasm once no adapter is left; the panel says so.
    expect(failed.device).toBe(recoveredOn);
    expect(await page.evaluate(() => (window as unknown as GpuProbe).gpuProbe.devices.length)).toBe(devicesAfter);
    expect(await page.locator('#device-used').textContent()).toBe(`${recoveredOn} (${failed.deviceName}), in-thread`);

    await holdTalk(page, 1.5);
    await page.waitForFunction(() => window.omniDemo.turns.length >= 2 && !window.omniDemo.playing, null, { timeout: 240_000, polling: 100 });
    const state = await demoState(page);
    expect(state.errors).toEqual(failed.errors);
    const next = state.turns[1];
    expect(next.textTokens).toBeGreaterThan(0);
    expect(next.codes).toBeGreaterThan(0);
    expect(next.audioSamples).toBe(next.codes * SAMPLES_PER_CODE);
    expect(next.sampleRates).toEqual([24_000]);
    expect(pageErrors).toEqual([]);
    await page.close();
  });
});
