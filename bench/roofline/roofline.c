// Machine floors measured in the same run as the benchmarks they judge:
// a SIMD streaming read (memory bandwidth) and a SIMD multiply-add loop (compute peak),
// each on 1..N threads. Built only for bench/, never shipped.
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <wasm_simd128.h>
#include <emscripten.h>

typedef struct { const float* p; size_t n; float result; int iters; } Job;

static void* read_job(void* arg) {
  Job* j = (Job*)arg;
  v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i + 16 <= j->n; i += 16) {
    a0 = wasm_f32x4_add(a0, wasm_v128_load(j->p + i));
    a1 = wasm_f32x4_add(a1, wasm_v128_load(j->p + i + 4));
    a2 = wasm_f32x4_add(a2, wasm_v128_load(j->p + i + 8));
    a3 = wasm_f32x4_add(a3, wasm_v128_load(j->p + i + 12));
  }
  v128_t s = wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3));
  j->result = wasm_f32x4_extract_lane(s, 0) + wasm_f32x4_extract_lane(s, 3);
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

static float run(void* (*fn)(void*), const float* p, size_t n, int iters, int threads) {
  pthread_t tid[16];
  Job jobs[16];
  if (threads > 16) threads = 16;
  size_t chunk = (n / threads) & ~(size_t)15;
  for (int t = 0; t < threads; t++) {
    jobs[t] = (Job){ p + chunk * t, chunk, 0, iters };
    if (t > 0) pthread_create(&tid[t], 0, fn, &jobs[t]);
  }
  fn(&jobs[0]);
  float r = jobs[0].result;
  for (int t = 1; t < threads; t++) { pthread_join(tid[t], 0); r += jobs[t].result; }
  return r;
}

EMSCRIPTEN_KEEPALIVE float* roofline_alloc(size_t n) {
  float* p = (float*)aligned_alloc(16, n * sizeof(float));
  for (size_t i = 0; i < n; i++) p[i] = (float)(i & 1023) * 1e-3f;
  return p;
}
EMSCRIPTEN_KEEPALIVE void roofline_free(float* p) { free(p); }
EMSCRIPTEN_KEEPALIVE float roofline_read(const float* p, size_t n, int threads) { return run(read_job, p, n, 0, threads); }
EMSCRIPTEN_KEEPALIVE float roofline_fma(int iters, int threads) { return run(fma_job, 0, 16 * threads, iters, threads); }
