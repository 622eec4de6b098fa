/*
 * BigVGAN's anti-aliased SnakeBeta on time-major x [L, C] in one pass (see snakeBeta in
 * packages/core/src/backend.ts for the formula): ×2 upsampling by the `up` filter with
 * replicate padding, s = u + sin²(u·e^α)/(e^β + 1e-9), then ×2 decimation by `down`.
 * Four channels are carried side by side in one vector; the 2L upsampled values of a
 * group live in per-thread scratch.
 */
#include "omni.h"

typedef struct {
  const float *x, *alpha_log, *beta_log, *up, *down;
  float *y;
  int L, C, Ku, Kd;
} snake_ctx;

static inline int clamp_index(int i, int n) { return i < 0 ? 0 : i >= n ? n - 1 : i; }

/* Below this |x| the quadrant k = round(x·2/π) fits 13 bits, so k·PIO2_HI and k·PIO2_MID are exact. */
#define SIN_REDUCTION_LIMIT 12000.0f

/*
 * sin²(x): x = k·π/2 + r with |r| ≤ π/4 (π/2 split in three f32 parts, Cody–Waite), then
 * sin²(r) for even k and cos²(r) for odd k, by Taylor polynomials to r^11 and r^10
 * (truncation < 3e-9). Lanes beyond SIN_REDUCTION_LIMIT go through libm's sinf.
 */
static inline v128_t sin_squared_f32x4(v128_t x) {
  v128_t k = wasm_f32x4_nearest(wasm_f32x4_mul(x, wasm_f32x4_const_splat(0.63661977236758134f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(k, wasm_f32x4_const_splat(1.5703125f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(k, wasm_f32x4_const_splat(4.837512969970703e-4f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(k, wasm_f32x4_const_splat(7.549790126404332e-8f)));
  v128_t r2 = wasm_f32x4_mul(r, r);
  v128_t s = wasm_f32x4_const_splat(1.0f / 39916800.0f);
  s = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 362880.0f), wasm_f32x4_mul(s, r2));
  s = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 5040.0f), wasm_f32x4_mul(s, r2));
  s = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 120.0f), wasm_f32x4_mul(s, r2));
  s = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 6.0f), wasm_f32x4_mul(s, r2));
  s = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f), wasm_f32x4_mul(s, r2));
  s = wasm_f32x4_mul(s, r);
  v128_t c = wasm_f32x4_const_splat(1.0f / 3628800.0f);
  c = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 40320.0f), wasm_f32x4_mul(c, r2));
  c = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 720.0f), wasm_f32x4_mul(c, r2));
  c = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f / 24.0f), wasm_f32x4_mul(c, r2));
  c = wasm_f32x4_sub(wasm_f32x4_const_splat(0.5f), wasm_f32x4_mul(c, r2));
  c = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f), wasm_f32x4_mul(c, r2));
  v128_t odd = wasm_i32x4_eq(wasm_v128_and(wasm_i32x4_trunc_sat_f32x4(k), wasm_i32x4_const_splat(1)), wasm_i32x4_const_splat(1));
  v128_t v = wasm_v128_bitselect(c, s, odd);
  v128_t result = wasm_f32x4_mul(v, v);
  if (wasm_v128_any_true(wasm_f32x4_gt(wasm_f32x4_abs(x), wasm_f32x4_const_splat(SIN_REDUCTION_LIMIT)))) {
    float lanes[4];
    wasm_v128_store(lanes, x);
    for (int j = 0; j < 4; j++) {
      float sine = sinf(lanes[j]);
      lanes[j] = sine * sine;
    }
    result = wasm_v128_load(lanes);
  }
  return result;
}

/* Four channels c0..c0+3 of row t; lanes past C read 0. */
static inline v128_t load_channels(const snake_ctx *c, int t, int c0) {
  const float *row = c->x + (size_t)t * c->C + c0;
  if (c0 + 4 <= c->C) return wasm_v128_load(row);
  float lanes[4] = { 0, 0, 0, 0 };
  for (int j = 0; c0 + j < c->C; j++) lanes[j] = row[j];
  return wasm_v128_load(lanes);
}

static void snake_groups(void *p, int begin, int end, int thread) {
  const snake_ctx *c = p;
  const int L = c->L, Ku = c->Ku, Kd = c->Kd;
  const int crop = 3 * Ku / 2 - 3, pad_up = Ku / 2 - 1, pad_down = Kd / 2 - 1;
  float *snake = omni_thread_scratch(thread, (size_t)2 * L * 16);
  for (int group = begin; group < end; group++) {
    int c0 = group * 4;
    float alpha[4], inverse_beta[4];
    for (int j = 0; j < 4; j++) {
      int ch = c0 + j < c->C ? c0 + j : c->C - 1;
      alpha[j] = expf(c->alpha_log[ch]);
      inverse_beta[j] = 1.0f / (expf(c->beta_log[ch]) + 1e-9f);
    }
    v128_t alpha_v = wasm_v128_load(alpha), inverse_beta_v = wasm_v128_load(inverse_beta);
    for (int n = 0; n < 2 * L; n++) {
      v128_t u = wasm_f32x4_splat(0);
      for (int k = (n + crop) % 2; k < Ku; k += 2) {
        int t = clamp_index((n + crop - k) / 2 - pad_up, L);
        u = wasm_f32x4_add(u, wasm_f32x4_mul(wasm_f32x4_splat(c->up[k]), load_channels(c, t, c0)));
      }
      u = wasm_f32x4_mul(u, wasm_f32x4_const_splat(2.0f));
      wasm_v128_store(snake + (size_t)n * 4, wasm_f32x4_add(u, wasm_f32x4_mul(sin_squared_f32x4(wasm_f32x4_mul(u, alpha_v)), inverse_beta_v)));
    }
    for (int t = 0; t < L; t++) {
      v128_t acc = wasm_f32x4_splat(0);
      for (int k = 0; k < Kd; k++) {
        int n = clamp_index(2 * t + k - pad_down, 2 * L);
        acc = wasm_f32x4_add(acc, wasm_f32x4_mul(wasm_f32x4_splat(c->down[k]), wasm_v128_load(snake + (size_t)n * 4)));
      }
      float *row = c->y + (size_t)t * c->C + c0;
      if (c0 + 4 <= c->C) {
        wasm_v128_store(row, acc);
      } else {
        float lanes[4];
        wasm_v128_store(lanes, acc);
        for (int j = 0; c0 + j < c->C; j++) row[j] = lanes[j];
      }
    }
  }
}

/* Returns 0, or −1 when scratch memory ran out. */
OMNI_EXPORT int omni_snake_beta(const float *x, const float *alpha_log, const float *beta_log, const float *up, const float *down,
                                float *y, int L, int C, int Ku, int Kd) {
  if (omni_reserve_thread_scratch((size_t)2 * L * 16) != 0) return -1;
  snake_ctx c = { x, alpha_log, beta_log, up, down, y, L, C, Ku, Kd };
  omni_parallel_for((C + 3) / 4, 1, snake_groups, &c);
  return 0;
}
