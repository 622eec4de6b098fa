import { createWebGPUBackend } from '@omniweb/core';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

// On SwiftShader each lm_head call (151936 rows) takes seconds: decoding runs for p1 only,
// the quantized formats check the full-sequence pass (same bounds as on the oracle).
goldenSuite('webgpu', () => createWebGPUBackend(), 'f32', F32_TOL, ['thinker_p1'], 40_000);
goldenSuite('webgpu', () => createWebGPUBackend(), 'f16', 2e-3, []);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q8', 5e-2, []);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q4', 0.6, []);
