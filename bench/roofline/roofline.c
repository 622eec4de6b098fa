// Machine floors measured in the same run as the benchmarks they judge:
// a SIMD streaming read (memory bandwidth) and a SIMD multiply-add loop (compute peak),
// each on 1..N threads. Built only for bench/, never shipped.
#include <stdint.h>
#include <stdlib.h>
#include <wasm_simd128.h>
#include <emscripten.h>
#include "../lib/timed_threads.h"

typedef struct { const float* p; size_t n; float result; int iters; } Job;

/*
 * The read loop sums in integer lanes (one-cycle adds), eight sums side by side, so that no
 * add latency can bound it and only the memory feeds it (four chains of four-cycle float adds
 * left that to chance).
 */
static void* read_job(void* arg) {
  Job* j = (Job*)arg;
  const v128_t* p = (const v128_t*)j->p;
  v128_t a0 = wasm_i32x4_splat(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  for (size_t i = 0; i + 32 <= j->n; i += 32, p += 8) {
    a0 = wasm_i32x4_add(a0, wasm_v128_load(p));
    a1 = wasm_i32x4_add(a1, wasm_v128_load(p + 1));
    a2 = wasm_i32x4_add(a2, wasm_v128_load(p + 2));
    a3 = wasm_i32x4_add(a3, wasm_v128_load(p + 3));
    a4 = wasm_i32x4_add(a4, wasm_v128_load(p + 4));
    a5 = wasm_i32x4_add(a5, wasm_v128_load(p + 5));
    a6 = wasm_i32x4_add(a6, wasm_v128_load(p + 6));
    a7 = wasm_i32x4_add(a7, wasm_v128_load(p + 7));
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_add(a0, a1), wasm_i32x4_add(a2, a3)), wasm_i32x4_add(wasm_i32x4_add(a4, a5), wasm_i32x4_add(a6, a7)));
  j->result = (float)(wasm_i32x4_extract_lane(s, 0) ^ wasm_i32x4_extract_lane(s, 3));
  return 0;
}

static void* fma_job(void* arg) {
  Job* j = (Job*)arg;
  // Independent multiply and add streams (12 + 12 registers) so the loop is bound by
  // SIMD issue width, not latency; wasm SIMD has no fused multiply-add, so each
  // instruction is one FLOP per lane, as it is in the GEMV/matmul kernels judged by it.
  v128_t mul[12], add[12];
  v128_t m = wasm_f32x4_splat(0.9999999f), c = wasm_f32x4_splat(1e-7f);
  for (int k = 0; k < 12; k++) { mul[k] = wasm_f32x4_splat(1.0f + k); add[k] = wasm_f32x4_splat((float)k); }
  for (int it = 0; it < j->iters; it++) {
    for (int k = 0; k < 12; k++) { mul[k] = wasm_f32x4_mul(mul[k], m); add[k] = wasm_f32x4_add(add[k], c); }
  }
  v128_t s = wasm_f32x4_splat(0);
  for (int k = 0; k < 12; k++) s = wasm_f32x4_add(s, wasm_f32x4_add(mul[k], add[k]));
  j->result = wasm_f32x4_extract_lane(s, 0);
  return 0;
}

/* Milliseconds (run_timed) for fn over n floats at p, split across `threads` threads. */
static double run(void* (*fn)(void*), const float* p, size_t n, int iters, int threads) {
  Job jobs[TIMED_MAX_THREADS];
  if (threads > TIMED_MAX_THREADS) threads = TIMED_MAX_THREADS;
  size_t chunk = (n / threads) & ~(size_t)31;
  for (int t = 0; t < threads; t++) jobs[t] = (Job){ p + chunk * t, chunk, 0, iters };
  double ms = run_timed(fn, jobs, sizeof(Job), threads);
  for (int t = 0; t < threads; t++) timed_sink += jobs[t].result;
  return ms;
}

EMSCRIPTEN_KEEPALIVE float* roofline_alloc(size_t n) {
  float* p = (float*)aligned_alloc(16, n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(i & 1023) * 1e-3f;
  return p;
}
EMSCRIPTEN_KEEPALIVE void roofline_free(float* p) { free(p); }
/* Milliseconds to read n floats at p on `threads` threads. */
EMSCRIPTEN_KEEPALIVE double roofline_read(const float* p, size_t n, int threads) { return run(read_job, p, n, 0, threads); }
/* Milliseconds for `iters` rounds of the multiply/add loop on each of `threads` threads. */
EMSCRIPTEN_KEEPALIVE double roofline_fma(int iters, int threads) { return run(fma_job, 0, 32 * threads, iters, threads); }
