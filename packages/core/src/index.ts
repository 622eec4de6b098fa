export * from './errors.js';
export type * from './backend.js';
export * from './quant.js';
export * from './relativeError.js';
export * from './weights/index.js';
export * from './config.js';
export * from './webgpu/index.js';
export * from './wasm/index.js';
export * from './createBackend.js';
