import { createWebGPUBackend } from '@omniweb/core';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('webgpu', () => createWebGPUBackend(), 'f32', F32_TOL);
