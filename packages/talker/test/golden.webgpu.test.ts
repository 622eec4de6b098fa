import { createWebGPUBackend } from '@omniweb/core';
import { goldenSuite } from './goldenSuite.js';

// Fed up front only: each Thinker decode step (lm_head over 151936 ids) costs seconds on SwiftShader.
goldenSuite('webgpu', () => createWebGPUBackend());
