import { createWasmBackend } from '@omniweb/core';
import { goldenSuite } from './goldenSuite.js';

goldenSuite('wasm', () => createWasmBackend(), { interleaved: true });
