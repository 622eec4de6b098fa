import type { Backend } from './backend.js';
import { OmniError, isOmniError } from './errors.js';
import { createWasmBackend } from './wasm/index.js';
import { createWebGPUBackend } from './webgpu/index.js';

export type DeviceChoice = 'auto' | 'webgpu' | 'wasm';

export interface CreateBackendOptions {
  device?: DeviceChoice;
  /** wasm threads (default: 2 where the pthread build can run). */
  threads?: number;
}

/**
 * The one place that picks a device. 'auto' takes WebGPU when an adapter exists and falls
 * back to wasm otherwise; an explicit choice fails with a typed error instead of falling back.
 */
export async function createBackend(opts: CreateBackendOptions = {}): Promise<Backend> {
  const device = opts.device ?? 'auto';
  if (device !== 'auto' && device !== 'webgpu' && device !== 'wasm') {
    throw new OmniError('BAD_INPUT', `device must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(device)}`);
  }
  if (device === 'wasm') return createWasmBackend({ threads: opts.threads });
  if (device === 'webgpu') return createWebGPUBackend();
  try {
    return await createWebGPUBackend();
  } catch (e) {
    if (!isOmniError(e, 'NO_ADAPTER')) throw e;
    return createWasmBackend({ threads: opts.threads });
  }
}
