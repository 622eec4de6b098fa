/**
 * The kernel benchmark inside Chromium: our wasm backend (threaded: the page is
 * cross-origin isolated) against tfjs-backend-wasm, and our WebGPU backend against
 * tfjs-backend-webgpu on the same device. The driver (bench/kernels/browser.ts) calls
 * `window.omniBench.run()` and prints what it returns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { createWasmBackend, createWebGPUBackend } from '@omniweb/core';
import type { Row } from '../../lib/report.js';
import { measureRoofline, type Roofline } from '../../lib/roofline.js';
import { tfjsPeer } from '../../lib/tfjsPeer.js';
import { GEMV_SHAPES, MATMUL_SHAPES, runKernelBench, type BenchTarget } from '../suite.js';

async function run(quick: boolean): Promise<{ roofline: Roofline; rows: Row[]; threads: number }> {
  // A variable specifier: the probe is a prebuilt emscripten module served beside the page.
  const probeUrl = '/probe/roofline-web.mjs';
  const { default: probe } = await import(/* @vite-ignore */ probeUrl);
  const roofline = await measureRoofline(() => probe(), [1, 2]);
  setWasmPaths('/tfjs-wasm/');
  const wasm = await createWasmBackend();
  const gpu = await createWebGPUBackend();
  // Registers tfjs's WebGPU backend on our device, so both sides use one adapter.
  const one = gpu.tensor(new Float32Array(1), [1]);
  (await gpu.toTf(one)).dispose();
  gpu.dispose(one);
  const gemv = quick ? GEMV_SHAPES.slice(0, 2) : GEMV_SHAPES;
  const matmul = quick ? MATMUL_SHAPES.slice(0, 1) : MATMUL_SHAPES;
  const targets: BenchTarget[] = [
    {
      name: `wasm Chromium ${wasm.info.threads}T`, backend: wasm, peer: tfjsPeer(tf, 'wasm', 'tfjs-backend-wasm'),
      rooflineThreads: wasm.info.threads, formats: ['f32', 'q8', 'q4'], shapes: { gemv, matmul }, reps: quick ? 3 : 7,
    },
    {
      name: 'webgpu Chromium (SwiftShader)', backend: gpu, peer: tfjsPeer(tf, 'webgpu', 'tfjs-backend-webgpu'),
      rooflineThreads: 2, formats: ['f32', 'q8', 'q4'],
      shapes: { gemv: GEMV_SHAPES.slice(1, 2), matmul: [{ label: '256^3', m: 256, n: 256, k: 256 }] }, reps: 3,
    },
  ];
  const rows = await runKernelBench(targets, roofline);
  for (const t of targets) t.backend.destroy();
  return { roofline, rows, threads: wasm.info.threads };
}

declare global {
  // eslint-disable-next-line no-var -- read by the Playwright driver
  var omniBench: { run(quick: boolean): ReturnType<typeof run> };
}
globalThis.omniBench = { run };
