// Compute peaks for the Thinker benchmark's floors, per thread count, built only for bench/.
// - peak_f32: independent f32x4 multiply and add chains, 6 + 6 accumulators plus 2 constants,
//   so that all live vectors fit the 16 SIMD registers V8 allocates on x64 (more would spill
//   to the stack and measure loads and stores instead).
// - peak_dot: i32x4.dot_i16x8_s + i32x4.add chains, the instruction pair an integer-dot
//   GEMV (q8/q4 weights times 16-bit activations) spends per 8 multiply-adds.
// - peak_relaxed_dot (relaxed-SIMD build only): i32x4.relaxed_dot_i8x16_i7x16_add_s chains,
//   16 multiply-adds each, what the relaxed build's q4 GEMV spends (kernels/wasm/linear.c).
#include <stdint.h>
#include <wasm_simd128.h>
#include <emscripten.h>
#include "../lib/timed_threads.h"

typedef struct { int iters; int kind; float result; } Job;

static void* f32_job(Job* j) {
  v128_t m = wasm_f32x4_splat(0.9999999f), c = wasm_f32x4_splat(1e-7f);
  v128_t p0 = wasm_f32x4_splat(1), p1 = wasm_f32x4_splat(2), p2 = wasm_f32x4_splat(3);
  v128_t p3 = wasm_f32x4_splat(4), p4 = wasm_f32x4_splat(5), p5 = wasm_f32x4_splat(6);
  v128_t s0 = wasm_f32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0;
  for (int it = 0; it < j->iters; it++) {
    p0 = wasm_f32x4_mul(p0, m); s0 = wasm_f32x4_add(s0, c);
    p1 = wasm_f32x4_mul(p1, m); s1 = wasm_f32x4_add(s1, c);
    p2 = wasm_f32x4_mul(p2, m); s2 = wasm_f32x4_add(s2, c);
    p3 = wasm_f32x4_mul(p3, m); s3 = wasm_f32x4_add(s3, c);
    p4 = wasm_f32x4_mul(p4, m); s4 = wasm_f32x4_add(s4, c);
    p5 = wasm_f32x4_mul(p5, m); s5 = wasm_f32x4_add(s5, c);
  }
  v128_t s = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(p0, p1), wasm_f32x4_add(p2, p3)), wasm_f32x4_add(p4, p5));
  s = wasm_f32x4_add(s, wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_add(s0, s1), wasm_f32x4_add(s2, s3)), wasm_f32x4_add(s4, s5)));
  j->result = wasm_f32x4_extract_lane(s, 0);
  return 0;
}

static v128_t dot_inputs[4];

static void* dot_job(Job* j) {
  v128_t s0 = wasm_i32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  volatile v128_t* in = dot_inputs;
  for (int it = 0; it < j->iters; it++) {
    // Loaded every iteration (volatile) so the compiler cannot hoist the products.
    v128_t a = in[0], b = in[1], c = in[2], d = in[3];
    s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(a, b));
    s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(c, d));
    s2 = wasm_i32x4_add(s2, wasm_i32x4_dot_i16x8(a, c));
    s3 = wasm_i32x4_add(s3, wasm_i32x4_dot_i16x8(b, d));
    s4 = wasm_i32x4_add(s4, wasm_i32x4_dot_i16x8(a, d));
    s5 = wasm_i32x4_add(s5, wasm_i32x4_dot_i16x8(b, c));
    s6 = wasm_i32x4_add(s6, wasm_i32x4_dot_i16x8(a, a));
    s7 = wasm_i32x4_add(s7, wasm_i32x4_dot_i16x8(d, d));
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3)), wasm_i32x4_add(wasm_i32x4_add(s4, s5), wasm_i32x4_add(s6, s7)));
  j->result = (float)wasm_i32x4_extract_lane(s, 0);
  return 0;
}

#ifdef __wasm_relaxed_simd__
typedef signed char i8x16_t __attribute__((vector_size(16)));
typedef int i32x4_t __attribute__((vector_size(16)));
#define RELAXED_DOT(x, w, acc) ((v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((i8x16_t)(x), (i8x16_t)(w), (i32x4_t)(acc)))

static void* relaxed_dot_job(Job* j) {
  v128_t s0 = wasm_i32x4_splat(0), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
  volatile v128_t* in = dot_inputs;
  for (int it = 0; it < j->iters; it++) {
    v128_t a = in[0], b = in[1], c = in[2], d = in[3];
    s0 = RELAXED_DOT(a, b, s0);
    s1 = RELAXED_DOT(c, d, s1);
    s2 = RELAXED_DOT(a, c, s2);
    s3 = RELAXED_DOT(b, d, s3);
    s4 = RELAXED_DOT(a, d, s4);
    s5 = RELAXED_DOT(b, c, s5);
    s6 = RELAXED_DOT(a, a, s6);
    s7 = RELAXED_DOT(d, d, s7);
  }
  v128_t s = wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_add(s0, s1), wasm_i32x4_add(s2, s3)), wasm_i32x4_add(wasm_i32x4_add(s4, s5), wasm_i32x4_add(s6, s7)));
  j->result = (float)wasm_i32x4_extract_lane(s, 0);
  return 0;
}
#endif

static void* run_job(void* arg) {
  Job* j = (Job*)arg;
#ifdef __wasm_relaxed_simd__
  if (j->kind == 2) return relaxed_dot_job(j);
#endif
  return j->kind ? dot_job(j) : f32_job(j);
}

/* Milliseconds (run_timed) for `iters` rounds of loop `kind` on each of `threads` threads. */
static double run(int kind, int iters, int threads) {
  Job jobs[TIMED_MAX_THREADS];
  if (threads > TIMED_MAX_THREADS) threads = TIMED_MAX_THREADS;
  for (int t = 0; t < threads; t++) jobs[t] = (Job){ iters, kind, 0 };
  double ms = run_timed(run_job, jobs, sizeof(Job), threads);
  for (int t = 0; t < threads; t++) timed_sink += jobs[t].result;
  return ms;
}

/** 12 f32x4 ops per iteration per thread: 48 FLOPs. */
EMSCRIPTEN_KEEPALIVE double peak_f32(int iters, int threads) { return run(0, iters, threads); }
/** 8 dot_i16x8 (+ 8 adds) per iteration per thread: 64 multiply-adds = 128 integer ops. */
EMSCRIPTEN_KEEPALIVE double peak_dot(int iters, int threads) { return run(1, iters, threads); }
#ifdef __wasm_relaxed_simd__
/** 8 relaxed 8-bit dots per iteration per thread: 128 multiply-adds = 256 integer ops. */
EMSCRIPTEN_KEEPALIVE double peak_relaxed_dot(int iters, int threads) { return run(2, iters, threads); }
#endif
