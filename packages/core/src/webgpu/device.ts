import { OmniError } from '../errors.js';

export interface DeviceRequest {
  gpu?: GPU;
  device?: GPUDevice;
  powerPreference?: GPUPowerPreference;
}

export interface AcquiredDevice {
  device: GPUDevice;
  adapterInfo: GPUAdapterInfo | undefined;
  /** Whether we created the device (and so destroy it with the backend). */
  owned: boolean;
}

let nodeGpu: Promise<GPU | null> | null = null;
/** Why the `webgpu` package did not load, for the NO_ADAPTER message. */
let nodeGpuFailure: unknown = null;

/**
 * Node has no navigator.gpu: load Dawn from the optional `webgpu` package. The specifier is a
 * variable so that bundlers never pull the package into browser builds.
 */
export function loadNodeGpu(): Promise<GPU | null> {
  nodeGpu ??= (async () => {
    const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string';
    if (!isNode) return null;
    const specifier = 'webgpu';
    const dawn = (await import(/* @vite-ignore */ specifier)) as {
      create(options: string[]): GPU;
      globals: Record<string, unknown>;
    };
    // tfjs-backend-webgpu reads GPUBufferUsage & co. as globals; browsers define them.
    for (const [name, value] of Object.entries(dawn.globals)) {
      if (!(name in globalThis)) Object.defineProperty(globalThis, name, { value, configurable: true, writable: true });
    }
    return dawn.create([]);
  })().catch((e: unknown) => {
    nodeGpuFailure = e;
    return null;
  });
  return nodeGpu;
}

export async function acquireDevice(request: DeviceRequest): Promise<AcquiredDevice> {
  if (request.device) {
    const info = (request.device as GPUDevice & { adapterInfo?: GPUAdapterInfo }).adapterInfo;
    return { device: request.device, adapterInfo: info, owned: false };
  }
  const gpu = request.gpu ?? (globalThis.navigator as Navigator | undefined)?.gpu ?? (await loadNodeGpu());
  if (!gpu) {
    const why = nodeGpuFailure instanceof Error ? ` (${nodeGpuFailure.message})` : '';
    throw new OmniError(
      'NO_ADAPTER',
      `WebGPU is not available: no navigator.gpu here, and in Node the optional "webgpu" package did not load${why}`,
      { cause: nodeGpuFailure ?? undefined },
    );
  }
  const adapter = await gpu.requestAdapter({ powerPreference: request.powerPreference });
  if (!adapter) throw new OmniError('NO_ADAPTER', 'navigator.gpu.requestAdapter() found no WebGPU adapter');
  const features: GPUFeatureName[] = adapter.features.has('shader-f16') ? ['shader-f16'] : [];
  const { limits } = adapter;
  try {
    const device = await adapter.requestDevice({
      requiredFeatures: features,
      requiredLimits: {
        maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
        maxBufferSize: limits.maxBufferSize,
        maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
        maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
        maxComputeWorkgroupSizeY: limits.maxComputeWorkgroupSizeY,
        maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
      },
    });
    return { device, adapterInfo: adapter.info, owned: true };
  } catch (e) {
    throw new OmniError('NO_ADAPTER', `the WebGPU adapter refused a device: ${(e as Error).message}`, { cause: e });
  }
}

export function adapterName(info: GPUAdapterInfo | undefined): string {
  const parts = info ? [info.vendor, info.architecture, info.description, info.device].filter((p) => p) : [];
  return parts.length > 0 ? parts.join(' ') : 'WebGPU adapter';
}
