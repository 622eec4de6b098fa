import type { Backend } from './backend.js';
import { OmniError, isOmniError } from './errors.js';
import { createWasmBackend, type WasmBackendOptions } from './wasm/index.js';
import { createWebGPUBackend } from './webgpu/index.js';

export type DeviceChoice = 'auto' | 'webgpu' | 'wasm';

/** The device, and (`threads`, `quantizedActivations`, `simd`, `dotBytes`) the wasm backend's options where it is the one chosen. */
export interface CreateBackendOptions extends WasmBackendOptions {
  device?: DeviceChoice;
}

/**
 * The one place that picks a device. 'auto' takes WebGPU when an adapter exists and falls
 * back to wasm otherwise; an explicit choice fails with a typed error instead of falling back.
 */
export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  if (opts === null || typeof opts !== 'object') throw new OmniError('BAD_INPUT', 'createBackend: options must be an object');
  const { device = 'auto', ...wasm } = opts;
  if (device !== 'auto' && device !== 'webgpu' && device !== 'wasm') {
    throw new OmniError('BAD_INPUT', `device must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(device)}`);
  }
  if (device === 'wasm') return createWasmBackend(wasm);
  if (device === 'webgpu') return createWebGPUBackend();
  try {
    return await createWebGPUBackend();
  } catch (e) {
    if (!isOmniError(e, 'NO_ADAPTER')) throw e;
    return createWasmBackend(wasm);
  }
}
