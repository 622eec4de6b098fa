import { OmniError } from '../errors.js';
import { WebGPUBackendImpl, type WebGPUBackend } from './backend.js';
import { acquireDevice, adapterName, type DeviceRequest } from './device.js';
import { chooseTuning } from './tuning.js';

export type { WebGPUBackend } from './backend.js';

export interface WebGPUBackendOptions extends DeviceRequest {
  /**
   * Cap on one device buffer (default: the device's storage binding and buffer limits).
   * Bigger weights are split by rows; tests lower it to exercise the split.
   */
  maxBufferBytes?: number;
}

/**
 * The WebGPU backend: `navigator.gpu` in browsers and workers, Dawn from the optional `webgpu`
 * package in Node, or a caller's `gpu` / `device` (e.g. to share one with other code).
 * Throws OmniError('NO_ADAPTER') when no adapter exists.
 */
export async function createWebGPUBackend(opts: WebGPUBackendOptions = {}): Promise<WebGPUBackend> {
  if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', 'createWebGPUBackend: options must be an object');
  const { maxBufferBytes } = opts;
  if (maxBufferBytes !== undefined && (!Number.isInteger(maxBufferBytes) || maxBufferBytes < 16)) {
    throw new OmniError('BAD_INPUT', `createWebGPUBackend: maxBufferBytes must be an integer ≥ 16, got ${String(maxBufferBytes)}`);
  }
  const { device, adapterInfo, owned } = await acquireDevice(opts);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  return new WebGPUBackendImpl(
    device, adapterInfo, owned, adapterName(adapterInfo),
    Math.min(maxBufferBytes ?? limit, limit), chooseTuning(device.limits),
  );
}
