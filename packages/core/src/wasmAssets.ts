/**
 * Where the emscripten kernel modules (scripts/build-wasm.mjs) live: `packages/core/assets/`.
 * This file sits at the top of src/ so that '../assets/' resolves the same from the sources
 * (tests, tsx) and from the bundle dist/index.js; it is the only place that names them.
 * Each module finds its own .wasm (and the pthread build its worker script) next to itself.
 */
export interface WasmAsset {
  /** The ES module whose default export is the emscripten factory. */
  module: URL;
  /** Its wasm binary, read directly in Node (whose fetch cannot read file: URLs). */
  wasm: URL;
}

export const wasmAssets: { singleThreaded: WasmAsset; threaded: WasmAsset } = {
  singleThreaded: {
    module: new URL('../assets/omni-kernels.mjs', import.meta.url),
    wasm: new URL('../assets/omni-kernels.wasm', import.meta.url),
  },
  threaded: {
    module: new URL('../assets/omni-kernels-mt.mjs', import.meta.url),
    wasm: new URL('../assets/omni-kernels-mt.wasm', import.meta.url),
  },
};
