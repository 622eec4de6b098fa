// How emcc builds relaxed-SIMD wasm here (the kernels, scripts/build-wasm.mjs, and the
// benchmark's compute peak, bench/thinker/build.mjs).
//
// Relaxed SIMD needs clang ≥ 16 (Debian's emscripten 3.1.6 ships clang 14), and its binaryen
// (version 108) predates the final opcodes: it reads them as other instructions. So a relaxed
// build compiles with clang-16 at -O3 and links at -O1 with BigInt i64s, where emcc runs no
// binaryen pass that rewrites the module (ERROR_ON_WASM_CHANGES_AFTER_LINK checks it).

/** Added to emcc's environment for both steps: emcc then runs clang-16 and wasm-ld-16. */
export const RELAXED_EMCC_ENV = { EM_LLVM_ADD_VERSION: '16', EM_CLANG_ADD_VERSION: '16' };
/** Added when compiling each source to an object (with its own -O3). */
export const RELAXED_COMPILE_FLAGS = ['-mrelaxed-simd'];
/** Added when linking the objects. */
export const RELAXED_LINK_FLAGS = ['-O1', '-mrelaxed-simd', '-sWASM_BIGINT', '-sERROR_ON_WASM_CHANGES_AFTER_LINK'];
