/**
 * `pnpm bench:kernels` — the kernel benchmark in Node: wasm (our SIMD kernels, 1 and 2
 * threads) vs tfjs-backend-wasm, and WebGPU on Dawn/SwiftShader vs tfjs-backend-webgpu
 * (a correctness device: its figures are for the record, not for tuning).
 * Prints a table and writes bench/results/kernels-node.json.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import * as core from '@omniweb/core';
import { formatTable } from '../lib/report.js';
import { measureRoofline } from '../lib/roofline.js';
import { tfjsPeer } from '../lib/tfjsPeer.js';
import { GEMV_SHAPES, MATMUL_SHAPES, runKernelBench, type BenchTarget } from './suite.js';

const here = fileURLToPath(new URL('.', import.meta.url));
// Dawn needs a Vulkan driver: on GPU-less machines, Chromium's SwiftShader (as the tests use).
process.env.VK_ICD_FILENAMES ??= '/usr/lib/chromium/vk_swiftshader_icd.json';
if (!process.env.XDG_RUNTIME_DIR) {
  process.env.XDG_RUNTIME_DIR = '/tmp/omniweb-xdg';
  mkdirSync(process.env.XDG_RUNTIME_DIR, { recursive: true, mode: 0o700 });
}
const require = createRequire(import.meta.url);
const quick = process.argv.includes('--quick');

const probePath = `${here}../.build/roofline-node.mjs`;
const { default: probeFactory } = await import(probePath);
const roofline = await measureRoofline(
  () => probeFactory({ wasmBinary: readFileSync(probePath.replace(/\.mjs$/, '.wasm')) }), [1, 2],
);
console.log(`roofline: read ${JSON.stringify(roofline.readGBps)} GB/s, SIMD peak ${JSON.stringify(roofline.peakGflops)} GFLOP/s`);

setWasmPaths(require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/]+$/, ''));
const tfWasm = tfjsPeer(tf, 'wasm', 'tfjs-backend-wasm matMul');
const gemv = quick ? GEMV_SHAPES.slice(0, 2) : GEMV_SHAPES;
const matmul = quick ? MATMUL_SHAPES.slice(0, 1) : MATMUL_SHAPES;

const targets: BenchTarget[] = [];
for (const threads of [1, 2]) {
  targets.push({
    name: `wasm Node ${threads}T`, backend: await core.createWasmBackend({ threads }), peer: tfWasm,
    rooflineThreads: threads, formats: ['f32', 'q8', 'q4'], shapes: { gemv, matmul }, reps: quick ? 3 : 9,
  });
}
const gpu = await core.createWebGPUBackend();
const tfGpu = tfjsPeer(tf, 'webgpu', 'tfjs-backend-webgpu matMul');
// Registers tfjs's WebGPU backend on our device so both run on the same adapter.
const probe = gpu.tensor(new Float32Array(1), [1]);
(await gpu.toTf(probe)).dispose();
gpu.dispose(probe);
targets.push({
  name: `webgpu Node (${gpu.info.name.split(" ").slice(0, 2).join(" ")})`, backend: gpu, peer: tfGpu, rooflineThreads: 2,
  formats: ['f32', 'q8', 'q4'],
  shapes: { gemv: gemv.slice(0, 2), matmul: [{ label: '256^3', m: 256, n: 256, k: 256 }] }, reps: 3,
});

const rows = await runKernelBench(targets, roofline, () => performance.now(), (l) => console.error(l));
console.log(formatTable(rows));
mkdirSync(`${here}../results`, { recursive: true });
const out = `${here}../results/kernels-node.json`;
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), roofline, rows }, null, 2));
console.log(`wrote ${out}`);
for (const t of targets) t.backend.destroy();
process.exit(0);
