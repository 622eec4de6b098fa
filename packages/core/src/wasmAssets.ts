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

/** One build of the kernels: single-threaded, and with a pthread pool. */
export interface WasmBuild { singleThreaded: WasmAsset; threaded: WasmAsset }

// Literal URLs, so that bundlers which follow `new URL('…', import.meta.url)` find each file.
/** 'baseline': SIMD128 only; 'relaxed': the same kernels with relaxed SIMD's 8-bit dot product. */
export const wasmAssets: { baseline: WasmBuild; relaxed: WasmBuild } = {
  baseline: {
    singleThreaded: {
      module: new URL('../assets/omni-kernels.mjs', import.meta.url),
      wasm: new URL('../assets/omni-kernels.wasm', import.meta.url),
    },
    threaded: {
      module: new URL('../assets/omni-kernels-mt.mjs', import.meta.url),
      wasm: new URL('../assets/omni-kernels-mt.wasm', import.meta.url),
    },
  },
  relaxed: {
    singleThreaded: {
      module: new URL('../assets/omni-kernels-relaxed.mjs', import.meta.url),
      wasm: new URL('../assets/omni-kernels-relaxed.wasm', import.meta.url),
    },
    threaded: {
      module: new URL('../assets/omni-kernels-mt-relaxed.mjs', import.meta.url),
      wasm: new URL('../assets/omni-kernels-mt-relaxed.wasm', import.meta.url),
    },
  },
};
