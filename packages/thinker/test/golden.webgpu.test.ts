// TEMPORARY path: core's index does not export the WebGPU backend yet.
import { createWebGPUBackend } from '../../core/src/webgpu/index.js';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('webgpu', () => createWebGPUBackend(), 'f32', F32_TOL);
// Same bounds as on the oracle; only the full-sequence pass, since each decode step costs seconds on SwiftShader.
goldenSuite('webgpu', () => createWebGPUBackend(), 'f16', 2e-3, false);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q8', 5e-2, false);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q4', 0.6, false);
