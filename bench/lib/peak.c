// A SIMD multiply/add loop for the compute floor of the model benchmarks (bench/lib/simdPeak.ts).
// Six multiply and six add chains: independent enough to fill the SIMD pipes, and with the two
// constants 14 live vectors, so the loop stays in registers on x86-64's 16 XMM registers (a loop
// with more chains than registers measures spills instead of arithmetic).
// Each instruction is one FLOP per lane: wasm SIMD has no fused multiply-add, as in our kernels.
#include <wasm_simd128.h>
#include <emscripten.h>

#define CHAINS 6

EMSCRIPTEN_KEEPALIVE float peak_loop(int iters) {
  v128_t mul[CHAINS], add[CHAINS];
  v128_t m = wasm_f32x4_splat(0.9999999f), c = wasm_f32x4_splat(1e-7f);
  for (int k = 0; k < CHAINS; k++) { mul[k] = wasm_f32x4_splat(1.0f + k); add[k] = wasm_f32x4_splat((float)k); }
  for (int it = 0; it < iters; it++) {
    for (int k = 0; k < CHAINS; k++) { mul[k] = wasm_f32x4_mul(mul[k], m); add[k] = wasm_f32x4_add(add[k], c); }
  }
  v128_t s = wasm_f32x4_splat(0);
  for (int k = 0; k < CHAINS; k++) s = wasm_f32x4_add(s, wasm_f32x4_add(mul[k], add[k]));
  return wasm_f32x4_extract_lane(s, 0);
}

/** FLOPs of one iteration: CHAINS multiplies and CHAINS adds of 4 lanes. */
EMSCRIPTEN_KEEPALIVE int peak_flops_per_iter(void) { return 2 * CHAINS * 4; }
