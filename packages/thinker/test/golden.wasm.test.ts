// TEMPORARY path: core's index does not export the wasm backend yet.
import { createWasmBackend } from '../../core/src/wasm/index.js';
import { F32_TOL, goldenSuite } from './goldenSuite.js';

goldenSuite('wasm', () => createWasmBackend(), 'f32', F32_TOL);
goldenSuite('wasm', () => createWasmBackend(), 'f16', 2e-3);
goldenSuite('wasm', () => createWasmBackend(), 'q8', 5e-2);
goldenSuite('wasm exact GEMV', () => createWasmBackend({ quantizedActivations: 'exact' }), 'q8', 5e-2);
goldenSuite('wasm int8 GEMV', () => createWasmBackend({ quantizedActivations: 'int8' }), 'q8', 5e-2);
goldenSuite('wasm', () => createWasmBackend(), 'q4', 0.6);
goldenSuite('wasm int16 GEMV', () => createWasmBackend({ quantizedActivations: 'int16' }), 'q4', 0.6);
