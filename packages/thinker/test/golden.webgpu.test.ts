import { createWebGPUBackend } from '@omniweb/core';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

// On SwiftShader one lm_head call (151936 × 32) takes 7 s on an idle machine and over a minute
// on a busy one: decoding runs for p1 only, and the quantized formats check the full-sequence
// pass (same bounds as on the oracle).
const SLOW_STEP_MS = 90_000;
goldenSuite('webgpu', () => createWebGPUBackend(), 'f32', F32_TOL, ['thinker_p1'], SLOW_STEP_MS);
goldenSuite('webgpu', () => createWebGPUBackend(), 'f16', 2e-3, [], SLOW_STEP_MS);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q8', 5e-2, [], SLOW_STEP_MS);
goldenSuite('webgpu', () => createWebGPUBackend(), 'q4', 0.6, [], SLOW_STEP_MS);
