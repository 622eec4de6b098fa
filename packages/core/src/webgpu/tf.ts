import type { Tensor as TfTensor } from '@tensorflow/tfjs-core';
import type { ElementType } from '../backend.js';
import { loadNodeGpu } from './device.js';

/** tfjs's backend name: its WebGPU kernels are registered under it, so ours must use it too. */
const TF_BACKEND = 'webgpu';

let current: Promise<typeof import('@tensorflow/tfjs-core')> | null = null;
let currentDevice: GPUDevice | null = null;

/**
 * Make tfjs run its 'webgpu' backend on `device` (once per device), loading tfjs only now so
 * that our own kernels never pay for it. An earlier tfjs 'webgpu' backend on another device
 * is removed.
 */
function tfOn(device: GPUDevice, adapterInfo: GPUAdapterInfo | undefined): Promise<typeof import('@tensorflow/tfjs-core')> {
  if (current && currentDevice === device) return current;
  currentDevice = device;
  current = (async () => {
    await provideNavigatorGpu();
    const tf = await import('@tensorflow/tfjs-core');
    const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tfAlreadyOn(tf, device))) {
      // (findBackend would start the default factory, which opens a device of its own.)
      if (tf.findBackendFactory(TF_BACKEND)) tf.removeBackend(TF_BACKEND);
      tf.registerBackend(TF_BACKEND, () => new WebGPUBackend(device, adapterInfo), 3);
      if (!(await tf.setBackend(TF_BACKEND))) throw new Error('tfjs could not start its webgpu backend on our device');
    }
    return tf;
  })();
  current.catch(() => {
    current = null;
    currentDevice = null;
  });
  return current;
}

/** Whether tfjs already runs 'webgpu' on this device (e.g. the caller built us on tfjs's device). */
async function tfAlreadyOn(tf: typeof import('@tensorflow/tfjs-core'), device: GPUDevice): Promise<boolean> {
  if (tf.getBackend() !== TF_BACKEND) return false;
  await tf.ready();
  return (tf.backend() as unknown as { device?: GPUDevice }).device === device;
}

/** tfjs-backend-webgpu refuses to start without navigator.gpu, which Node does not have. */
async function provideNavigatorGpu(): Promise<void> {
  const nav = globalThis.navigator as (Navigator & { gpu?: GPU }) | undefined;
  if (nav?.gpu) return;
  const gpu = await loadNodeGpu();
  if (!gpu) return;
  if (nav) Object.defineProperty(nav, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
}

/** A tfjs tensor over `buffer` (row-major, `shape`), sharing it without a copy. */
export async function tfTensorOnDevice(
  device: GPUDevice, adapterInfo: GPUAdapterInfo | undefined, buffer: GPUBuffer, shape: readonly number[], dtype: ElementType,
): Promise<TfTensor> {
  const tf = await tfOn(device, adapterInfo);
  return tf.tensor({ buffer, zeroCopy: true }, [...shape], dtype === 'f32' ? 'float32' : 'int32');
}
