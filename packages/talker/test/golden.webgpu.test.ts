import { createWebGPUBackend } from '@omniweb/core';
import { goldenSuite } from './goldenSuite.js';

goldenSuite('webgpu', () => createWebGPUBackend());
