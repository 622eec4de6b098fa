import { OmniError } from '../errors.js';
import { wgsl } from '../generated/wgsl.js';

/** GPUBufferUsage / GPUMapMode bits (fixed by the spec), so no global constants are needed in Node. */
export const BufferUsage = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
const MAP_MODE_READ = 0x1;
/** How long a failed read waits for `device.lost` to settle before calling the failure something else. */
const LOST_GRACE_MS = 1000;

/** Usage of every tensor and weight buffer; COPY_SRC | STORAGE also lets tfjs wrap them. */
export const STORAGE_USAGE = BufferUsage.STORAGE | BufferUsage.COPY_SRC | BufferUsage.COPY_DST;

/** A uniform field written as f32 bits (every other field is a u32). */
export interface F32 { readonly f32: number }
export const f32 = (value: number): F32 => ({ f32: value });

/** Every kernel's parameter struct fits one slot (64 four-byte fields). */
const UNIFORM_SLOT_BYTES = 256;
const UNIFORM_SLOTS = 512;

export interface Kernel {
  /** kernels/wgsl sources, concatenated in this order. */
  modules: readonly string[];
  /** Values of the shader's `override` constants. */
  constants?: Record<string, number>;
}

/**
 * Command batching, pipeline cache, uniform ring and buffer lifetimes on one GPUDevice.
 * Dispatches accumulate in one compute pass and are submitted when the caller reads or syncs,
 * when the uniform ring is full, or every `dispatchesPerSubmit` dispatches.
 */
export class GpuRuntime {
  readonly device: GPUDevice;
  /** Largest buffer we create (a tensor, or one part of a split weight). */
  readonly maxBufferBytes: number;
  private readonly maxWorkgroupsPerDim: number;
  private readonly dispatchesPerSubmit: number;
  private readonly pipelines = new Map<string, GPUComputePipeline>();
  private readonly modulesByCode = new Map<string, GPUShaderModule>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private dispatchesInBatch = 0;
  private readonly uniformRing: GPUBuffer;
  private readonly uniformHost = new ArrayBuffer(UNIFORM_SLOT_BYTES * UNIFORM_SLOTS);
  private readonly uniformU32 = new Uint32Array(this.uniformHost);
  private readonly uniformF32 = new Float32Array(this.uniformHost);
  private uniformSlotsUsed = 0;
  /** Buffers to destroy once the batch that may use them is submitted. */
  private releaseAfterSubmit: GPUBuffer[] = [];
  private readonly live = new Set<GPUBuffer>();
  private firstError: string | null = null;
  private lostReason: string | null = null;
  private destroyed = false;

  constructor(device: GPUDevice, maxBufferBytes: number, dispatchesPerSubmit: number) {
    this.device = device;
    this.maxBufferBytes = maxBufferBytes;
    this.maxWorkgroupsPerDim = device.limits.maxComputeWorkgroupsPerDimension;
    this.dispatchesPerSubmit = dispatchesPerSubmit;
    this.uniformRing = device.createBuffer({
      size: this.uniformHost.byteLength,
      usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST,
    });
    device.addEventListener('uncapturederror', (event) => {
      this.firstError ??= (event as GPUUncapturedErrorEvent).error.message;
    });
    void device.lost.then((info) => {
      this.lostReason = `${info.reason}: ${info.message}`;
    });
  }

  /** Resolves once `device.lost` has settled (and `lostReason` is set: that reaction was registered first) or after `ms`. */
  private async lostWithin(ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([this.device.lost, new Promise((resolve) => { timer = setTimeout(resolve, ms); })]);
    clearTimeout(timer);
  }

  /** Throws DEVICE_LOST once the device is gone or this backend was destroyed. */
  assertAlive(): void {
    if (this.destroyed) throw new OmniError('DEVICE_LOST', 'this WebGPU backend was destroyed; create a new one');
    if (this.lostReason !== null) {
      throw new OmniError('DEVICE_LOST', `the GPU device was lost (${this.lostReason}); rebuild the backend`);
    }
  }

  createBuffer(bytes: number, what: string, mappedAtCreation = false): GPUBuffer {
    if (bytes > this.maxBufferBytes) {
      throw new OmniError(
        'OUT_OF_MEMORY',
        `${what} needs a ${bytes}-byte buffer; this device allows at most ${this.maxBufferBytes} bytes per buffer`,
      );
    }
    // Some kernels read storage as 16-byte vectors, and no binding may be empty.
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, mappedAtCreation });
    this.live.add(buffer);
    return buffer;
  }

  /** A new buffer holding `data`, filled at creation so it precedes any later dispatch. */
  upload(data: ArrayBufferView, what: string): GPUBuffer {
    const buffer = this.createBuffer(data.byteLength, what, true);
    new Uint8Array(buffer.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buffer.unmap();
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    if (!this.live.delete(buffer)) return;
    if (this.encoder) this.releaseAfterSubmit.push(buffer);
    else buffer.destroy();
  }

  pipeline(kernel: Kernel): GPUComputePipeline {
    const key = `${kernel.modules.join('+')}|${JSON.stringify(kernel.constants ?? {})}`;
    let pipeline = this.pipelines.get(key);
    if (!pipeline) {
      const code = kernel.modules.map((name) => {
        const source = wgsl[name];
        if (source === undefined) throw new OmniError('INTERNAL', `WGSL module "${name}" is missing; run scripts/build-wgsl.mjs`);
        return source;
      }).join('\n');
      let module = this.modulesByCode.get(code);
      if (!module) {
        module = this.device.createShaderModule({ code, label: kernel.modules.at(-1) });
        this.modulesByCode.set(code, module);
      }
      pipeline = this.device.createComputePipeline({
        layout: 'auto',
        label: kernel.modules.at(-1),
        compute: { module, entryPoint: 'main', constants: kernel.constants },
      });
      this.pipelines.set(key, pipeline);
    }
    return pipeline;
  }

  /** Workgroup grid for `count` workgroups laid out over x then y (kernels rebuild the linear id). */
  grid(count: number): [number, number] {
    const x = Math.min(count, this.maxWorkgroupsPerDim);
    const y = Math.ceil(count / Math.max(x, 1));
    if (y > this.maxWorkgroupsPerDim) {
      throw new OmniError('OUT_OF_MEMORY', `a dispatch of ${count} workgroups exceeds this device's grid limits`);
    }
    return [x, y];
  }

  /**
   * Queue one dispatch. `uniforms` fill the kernel's params struct at binding 0; `buffers` maps
   * the other binding numbers to whole buffers.
   */
  dispatch(
    kernel: Kernel,
    uniforms: readonly (number | F32)[],
    buffers: Record<number, GPUBuffer>,
    workgroups: readonly [number, number?, number?],
  ): void {
    const [x, y = 1, z = 1] = workgroups;
    if (x === 0 || y === 0 || z === 0) return;
    if (Math.max(x, y, z) > this.maxWorkgroupsPerDim) {
      throw new OmniError('OUT_OF_MEMORY', `grid [${x}, ${y}, ${z}] exceeds this device's limit of ${this.maxWorkgroupsPerDim} workgroups per dimension`);
    }
    const pipeline = this.pipeline(kernel);
    if (this.uniformSlotsUsed === UNIFORM_SLOTS) this.flush();
    const slot = this.uniformSlotsUsed++;
    const base = (slot * UNIFORM_SLOT_BYTES) / 4;
    uniforms.forEach((v, i) => {
      if (typeof v === 'number') this.uniformU32[base + i] = v >>> 0;
      else this.uniformF32[base + i] = v.f32;
    });
    const entries: GPUBindGroupEntry[] = [
      { binding: 0, resource: { buffer: this.uniformRing, offset: slot * UNIFORM_SLOT_BYTES, size: UNIFORM_SLOT_BYTES } },
    ];
    for (const [binding, buffer] of Object.entries(buffers)) entries.push({ binding: Number(binding), resource: { buffer } });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (++this.dispatchesInBatch >= this.dispatchesPerSubmit) this.flush();
  }

  /** Buffer-to-buffer copy in queue order with the dispatches (byte offsets, multiples of 4). */
  copy(src: GPUBuffer, srcByte: number, dst: GPUBuffer, dstByte: number, bytes: number): void {
    if (bytes === 0) return;
    const encoder = this.commandEncoder();
    this.endPass();
    encoder.copyBufferToBuffer(src, srcByte, dst, dstByte, bytes);
  }

  /** Submit everything queued so far. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    if (this.uniformSlotsUsed > 0) {
      this.device.queue.writeBuffer(this.uniformRing, 0, this.uniformHost, 0, this.uniformSlotsUsed * UNIFORM_SLOT_BYTES);
    }
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = null;
    this.uniformSlotsUsed = 0;
    this.dispatchesInBatch = 0;
    for (const buffer of this.releaseAfterSubmit) buffer.destroy();
    this.releaseAfterSubmit = [];
  }

  async read(buffer: GPUBuffer, byteOffset: number, byteLength: number): Promise<ArrayBuffer> {
    if (byteLength === 0) {
      this.flush();
      this.throwIfFailed();
      return new ArrayBuffer(0);
    }
    const staging = this.device.createBuffer({ size: byteLength, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST });
    this.commandEncoder();
    this.endPass();
    this.encoder!.copyBufferToBuffer(buffer, byteOffset, staging, 0, byteLength);
    this.flush();
    try {
      await staging.mapAsync(MAP_MODE_READ);
      this.throwIfFailed();
      return staging.getMappedRange().slice(0);
    } catch (e) {
      // Chromium rejects a pending mapping as soon as the device is destroyed, before `device.lost` settles: wait for it, so a lost device reads as DEVICE_LOST.
      await this.lostWithin(LOST_GRACE_MS);
      this.assertAlive();
      this.throwIfFailed();
      throw new OmniError('INTERNAL', `reading a GPU buffer failed: ${(e as Error).message}`, { cause: e });
    } finally {
      staging.destroy();
    }
  }

  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    this.throwIfFailed();
  }

  /** Surfaces a WebGPU validation or memory error raised by earlier work. */
  private throwIfFailed(): void {
    this.assertAlive();
    if (this.firstError !== null) {
      const message = this.firstError;
      this.firstError = null;
      throw new OmniError(
        message.includes('memory') ? 'OUT_OF_MEMORY' : 'INTERNAL',
        `WebGPU reported an error in earlier work: ${message}`,
      );
    }
  }

  destroy(): void {
    if (this.destroyed) return;
    this.encoder = null;
    this.pass = null;
    for (const buffer of this.live) buffer.destroy();
    for (const buffer of this.releaseAfterSubmit) buffer.destroy();
    this.live.clear();
    this.releaseAfterSubmit = [];
    this.uniformRing.destroy();
    this.destroyed = true;
  }

  private commandEncoder(): GPUCommandEncoder {
    this.encoder ??= this.device.createCommandEncoder();
    return this.encoder;
  }

  private computePass(): GPUComputePassEncoder {
    this.pass ??= this.commandEncoder().beginComputePass();
    return this.pass;
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }
}
