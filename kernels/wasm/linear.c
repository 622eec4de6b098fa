/*
 * y = x·Wᵀ (+ bias) for every weight format, and the plain f32 matmul.
 * M == 1 (decode) runs a GEMV that streams each weight row once (f32 one row at a time,
 * the others several), dequantizing in registers (f32 is bound by memory bandwidth, q8/q4
 * by their integer dot products); rows are split across the pool. M > 1 packs blocks of W,
 * dequantized to f32, into [k][8] panels that stay in cache while a 4×8 register tile runs
 * over every row block of x.
 */
#include "omni.h"
#include <string.h>

/* ------------------------------------------------------------------ dequantization */

/* 16 int8 values times scale → out[0..16). */
static inline void store_scaled(float *out, v128_t q, float scale) {
  v128_t s = wasm_f32x4_splat(scale);
  v128_t lo = wasm_i16x8_extend_low_i8x16(q), hi = wasm_i16x8_extend_high_i8x16(q);
  wasm_v128_store(out, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(lo)), s));
  wasm_v128_store(out + 4, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(lo)), s));
  wasm_v128_store(out + 8, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_low_i16x8(hi)), s));
  wasm_v128_store(out + 12, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_extend_high_i16x8(hi)), s));
}

void dequantize_row(const weight_t *w, int row, int k0, int count, float *out) {
  switch (w->format) {
    case FORMAT_F32:
      memcpy(out, (const float *)w->data + (size_t)row * w->cols + k0, (size_t)count * 4);
      return;
    case FORMAT_F16: {
      const uint16_t *src = (const uint16_t *)w->data + (size_t)row * w->cols + k0;
      int k = 0;
      for (; k + 4 <= count; k += 4) {
        wasm_v128_store(out + k, f16x4_to_f32x4(wasm_u32x4_load16x4(src + k)));
      }
      for (; k < count; k++) out[k] = f16_to_f32(src[k]);
      return;
    }
    default: {
      int pc = padded_cols(w->cols);
      size_t scale_base = (size_t)row * (pc / QUANT_GROUP);
      for (int k = 0; k < count;) {
        int col = k0 + k;
        float scale = group_scale(w->scales, w->scale_f16, scale_base + col / QUANT_GROUP);
        int end = (col / QUANT_GROUP + 1) * QUANT_GROUP - k0;
        if (end > count) end = count;
        size_t idx = (size_t)row * pc + col;
        if (end - k == QUANT_GROUP) {
          v128_t first, second;
          if (w->format == FORMAT_Q8) {
            first = wasm_v128_load((const int8_t *)w->data + idx);
            second = wasm_v128_load((const int8_t *)w->data + idx + 16);
          } else {
            v128_t b = wasm_v128_load((const uint8_t *)w->data + idx / 2);
            v128_t even = wasm_i8x16_sub(wasm_v128_and(b, wasm_i8x16_const_splat(15)), wasm_i8x16_const_splat(8));
            v128_t odd = wasm_i8x16_sub(wasm_u8x16_shr(b, 4), wasm_i8x16_const_splat(8));
            first = wasm_i8x16_shuffle(even, odd, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
            second = wasm_i8x16_shuffle(even, odd, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
          }
          store_scaled(out + k, first, scale);
          store_scaled(out + k + 16, second, scale);
          k += QUANT_GROUP;
          continue;
        }
        if (w->format == FORMAT_Q8) {
          const int8_t *q = (const int8_t *)w->data + idx;
          for (int j = 0; k < end; k++, j++) out[k] = (float)q[j] * scale;
        } else {
          const uint8_t *q = (const uint8_t *)w->data;
          for (; k < end; k++, idx++) out[k] = (float)((int)((q[idx >> 1] >> ((idx & 1) * 4)) & 15) - 8) * scale;
        }
      }
    }
  }
}

/* ------------------------------------------------------------------ GEMV (M == 1) */

typedef struct {
  const float *x;       /* [K] */
  const int16_t *xq;    /* q8/q4: x as two int16 parts per group (quantize_activations), or one (quantize_activations_int16) */
  const float *xscale;  /* q8/q4: one scale per group */
  const v128_t *xoffset; /* q4 with int16 activations: per group {−8·Σq, 0, 0, 0} */
  weight_t w;
  const float *bias;
  float *y;
} gemv_ctx;

static inline void gemv_store4(const gemv_ctx *c, int n, v128_t sums) {
  if (c->bias) sums = wasm_f32x4_add(sums, wasm_v128_load(c->bias + n));
  wasm_v128_store(c->y + n, sums);
}

static inline void gemv_store1(const gemv_ctx *c, int n, float sum) {
  c->y[n] = c->bias ? sum + c->bias[n] : sum;
}

/*
 * One row at a time, four sums: the weights are read as one sequential stream. Eight rows
 * side by side (x loaded once for all) measured 1.8–2.6× slower on 4864×896 streamed from
 * memory, the shape of a decode step's MLP; as fast on 896×4864.
 */
static void gemv_f32(void *p, int begin, int end, int thread) {
  (void)thread;
  const gemv_ctx *c = p;
  const int K = c->w.cols;
  const float *x = c->x;
  for (int n = begin; n < end; n++) {
    const float *w = (const float *)c->w.data + (size_t)n * K;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 16 <= K; k += 16) {
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(x + k), wasm_v128_load(w + k)));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_mul(wasm_v128_load(x + k + 4), wasm_v128_load(w + k + 4)));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_mul(wasm_v128_load(x + k + 8), wasm_v128_load(w + k + 8)));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_mul(wasm_v128_load(x + k + 12), wasm_v128_load(w + k + 12)));
    }
    for (; k + 4 <= K; k += 4) a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(x + k), wasm_v128_load(w + k)));
    float sum = hsum(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)));
    for (; k < K; k++) sum += x[k] * w[k];
    gemv_store1(c, n, sum);
  }
}

/*
 * Halves placed in the top 16 bits of each lane → floats, exact for every finite half
 * (subnormals too): an arithmetic shift by 3 moves exponent and mantissa into float
 * position and keeps the sign in bit 31 (the mask clears its copies in bits 28–30), then
 * 2^112 rebiases them. Two integer ops where f16x4_to_f32x4 spends several more, also to map
 * Inf/NaN: the wasm backend refuses f16 weights that hold those, so the GEMV never meets them.
 * (The GEMV is bound by these conversions, not by memory: each op saved per 4 weights shows.)
 */
static inline v128_t f16_top_to_f32(v128_t top) {
  v128_t bits = wasm_v128_and(wasm_i32x4_shr(top, 3), wasm_i32x4_const_splat((int32_t)0x8FFFE000));
  return wasm_f32x4_mul(bits, wasm_f32x4_const_splat(0x1p112f));
}
static inline v128_t f16_lo(v128_t h) { return f16_top_to_f32(wasm_i16x8_shuffle(wasm_i32x4_splat(0), h, 0, 8, 1, 9, 2, 10, 3, 11)); }
static inline v128_t f16_hi(v128_t h) { return f16_top_to_f32(wasm_i16x8_shuffle(wasm_i32x4_splat(0), h, 4, 12, 5, 13, 6, 14, 7, 15)); }

static void gemv_f16(void *p, int begin, int end, int thread) {
  (void)thread;
  const gemv_ctx *c = p;
  const int K = c->w.cols;
  const float *x = c->x;
  int n = begin;
  for (; n + 4 <= end; n += 4) {
    const uint16_t *w0 = (const uint16_t *)c->w.data + (size_t)n * K;
    const uint16_t *w1 = w0 + K, *w2 = w1 + K, *w3 = w2 + K;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    int k = 0;
    for (; k + 8 <= K; k += 8) {
      v128_t xa = wasm_v128_load(x + k), xb = wasm_v128_load(x + k + 4);
      v128_t h0 = wasm_v128_load(w0 + k), h1 = wasm_v128_load(w1 + k);
      v128_t h2 = wasm_v128_load(w2 + k), h3 = wasm_v128_load(w3 + k);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_add(wasm_f32x4_mul(xa, f16_lo(h0)), wasm_f32x4_mul(xb, f16_hi(h0))));
      a1 = wasm_f32x4_add(a1, wasm_f32x4_add(wasm_f32x4_mul(xa, f16_lo(h1)), wasm_f32x4_mul(xb, f16_hi(h1))));
      a2 = wasm_f32x4_add(a2, wasm_f32x4_add(wasm_f32x4_mul(xa, f16_lo(h2)), wasm_f32x4_mul(xb, f16_hi(h2))));
      a3 = wasm_f32x4_add(a3, wasm_f32x4_add(wasm_f32x4_mul(xa, f16_lo(h3)), wasm_f32x4_mul(xb, f16_hi(h3))));
    }
    v128_t sums = hsum4(a0, a1, a2, a3);
    if (k < K) {
      float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      for (; k < K; k++) {
        t0 += x[k] * f16_to_f32(w0[k]);
        t1 += x[k] * f16_to_f32(w1[k]);
        t2 += x[k] * f16_to_f32(w2[k]);
        t3 += x[k] * f16_to_f32(w3[k]);
      }
      sums = wasm_f32x4_add(sums, wasm_f32x4_make(t0, t1, t2, t3));
    }
    gemv_store4(c, n, sums);
  }
  for (; n < end; n++) {
    const uint16_t *w0 = (const uint16_t *)c->w.data + (size_t)n * K;
    v128_t a0 = wasm_f32x4_splat(0);
    int k = 0;
    for (; k + 8 <= K; k += 8) {
      v128_t h0 = wasm_v128_load(w0 + k);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(x + k), f16_lo(h0)));
      a0 = wasm_f32x4_add(a0, wasm_f32x4_mul(wasm_v128_load(x + k + 4), f16_hi(h0)));
    }
    float sum = hsum(a0);
    for (; k < K; k++) sum += x[k] * f16_to_f32(w0[k]);
    gemv_store1(c, n, sum);
  }
}

/*
 * Quantized GEMV with integer dot products. Each group of x is split into two int16
 * parts, x ≈ s·(hi + lo·2^-15) with |lo| ≤ 2^14, so the integer sums carry ~30 bits of
 * x and the result matches an f32 dot product with the dequantized weights (one int16
 * part alone leaves errors of 2^-16 of the group's largest |x|, too coarse where a row
 * weighs small entries of x). Weights are widened i8 → i16 once and multiplied with
 * i32x4.dot_i16x8 by both parts; one f32 multiply-add per group applies the scales.
 */
static inline v128_t dot_group(v128_t w_lo, v128_t w_hi, const int16_t *xq) {
  v128_t w0 = wasm_i16x8_extend_low_i8x16(w_lo), w1 = wasm_i16x8_extend_high_i8x16(w_lo);
  v128_t w2 = wasm_i16x8_extend_low_i8x16(w_hi), w3 = wasm_i16x8_extend_high_i8x16(w_hi);
  v128_t hi = wasm_i32x4_add(wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xq)), wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xq + 8)));
  hi = wasm_i32x4_add(hi, wasm_i32x4_add(wasm_i32x4_dot_i16x8(w2, wasm_v128_load(xq + 16)), wasm_i32x4_dot_i16x8(w3, wasm_v128_load(xq + 24))));
  v128_t lo = wasm_i32x4_add(wasm_i32x4_dot_i16x8(w0, wasm_v128_load(xq + 32)), wasm_i32x4_dot_i16x8(w1, wasm_v128_load(xq + 40)));
  lo = wasm_i32x4_add(lo, wasm_i32x4_add(wasm_i32x4_dot_i16x8(w2, wasm_v128_load(xq + 48)), wasm_i32x4_dot_i16x8(w3, wasm_v128_load(xq + 56))));
  return wasm_f32x4_add(wasm_f32x4_convert_i32x4(hi), wasm_f32x4_mul(wasm_f32x4_convert_i32x4(lo), wasm_f32x4_const_splat(0x1p-15f)));
}

/* q8: a group's 32 bytes as two vectors of int8. q4: the low nibbles (even elements) and high nibbles (odd), minus 8. */
static inline void load_group(int format, const uint8_t *row, int g, v128_t *lo, v128_t *hi) {
  if (format == FORMAT_Q8) {
    *lo = wasm_v128_load(row + g * 32);
    *hi = wasm_v128_load(row + g * 32 + 16);
  } else {
    v128_t b = wasm_v128_load(row + g * 16);
    *lo = wasm_i8x16_sub(wasm_v128_and(b, wasm_i8x16_const_splat(15)), wasm_i8x16_const_splat(8));
    *hi = wasm_i8x16_sub(wasm_u8x16_shr(b, 4), wasm_i8x16_const_splat(8));
  }
}

/* Groups whose combined scales are prepared at once (a few KB on the stack). */
#define SCALE_BLOCK 256

/* out[j] = (weight scale of row n, group g0 + j) · (x scale of that group), j < count. */
static void combined_scales(const weight_t *w, const float *xscale, int groups, int n, int g0, int count, float *out) {
  size_t base = (size_t)n * groups + g0;
  const float *xs = xscale + g0;
  int j = 0;
  if (w->scale_f16) {
    const uint16_t *ws = (const uint16_t *)w->scales + base;
    for (; j + 4 <= count; j += 4) {
      wasm_v128_store(out + j, wasm_f32x4_mul(f16x4_to_f32x4(wasm_u32x4_load16x4(ws + j)), wasm_v128_load(xs + j)));
    }
    for (; j < count; j++) out[j] = f16_to_f32(ws[j]) * xs[j];
  } else {
    const float *ws = (const float *)w->scales + base;
    for (; j + 4 <= count; j += 4) wasm_v128_store(out + j, wasm_f32x4_mul(wasm_v128_load(ws + j), wasm_v128_load(xs + j)));
    for (; j < count; j++) out[j] = ws[j] * xs[j];
  }
}

static void gemv_quantized(void *p, int begin, int end, int thread) {
  (void)thread;
  const gemv_ctx *c = p;
  const int groups = padded_cols(c->w.cols) / QUANT_GROUP;
  const int format = c->w.format;
  const size_t row_bytes = (size_t)groups * (format == FORMAT_Q8 ? 32 : 16);
  const uint8_t *data = c->w.data;
  float scales[4][SCALE_BLOCK];
  int n = begin;
  for (; n + 4 <= end; n += 4) {
    const uint8_t *r0 = data + (size_t)n * row_bytes;
    const uint8_t *r1 = r0 + row_bytes, *r2 = r1 + row_bytes, *r3 = r2 + row_bytes;
    v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int g0 = 0; g0 < groups; g0 += SCALE_BLOCK) {
      int count = groups - g0 < SCALE_BLOCK ? groups - g0 : SCALE_BLOCK;
      for (int r = 0; r < 4; r++) combined_scales(&c->w, c->xscale, groups, n + r, g0, count, scales[r]);
      for (int j = 0; j < count; j++) {
        int g = g0 + j;
        const int16_t *xq = c->xq + g * 2 * QUANT_GROUP;
        v128_t lo, hi;
        load_group(format, r0, g, &lo, &hi);
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(dot_group(lo, hi, xq), wasm_v128_load32_splat(&scales[0][j])));
        load_group(format, r1, g, &lo, &hi);
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(dot_group(lo, hi, xq), wasm_v128_load32_splat(&scales[1][j])));
        load_group(format, r2, g, &lo, &hi);
        acc2 = wasm_f32x4_add(acc2, wasm_f32x4_mul(dot_group(lo, hi, xq), wasm_v128_load32_splat(&scales[2][j])));
        load_group(format, r3, g, &lo, &hi);
        acc3 = wasm_f32x4_add(acc3, wasm_f32x4_mul(dot_group(lo, hi, xq), wasm_v128_load32_splat(&scales[3][j])));
      }
    }
    gemv_store4(c, n, hsum4(acc0, acc1, acc2, acc3));
  }
  for (; n < end; n++) {
    const uint8_t *r0 = data + (size_t)n * row_bytes;
    v128_t acc0 = wasm_f32x4_splat(0);
    for (int g0 = 0; g0 < groups; g0 += SCALE_BLOCK) {
      int count = groups - g0 < SCALE_BLOCK ? groups - g0 : SCALE_BLOCK;
      combined_scales(&c->w, c->xscale, groups, n, g0, count, scales[0]);
      for (int j = 0; j < count; j++) {
        v128_t lo, hi;
        load_group(format, r0, g0 + j, &lo, &hi);
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(dot_group(lo, hi, c->xq + (g0 + j) * 2 * QUANT_GROUP), wasm_v128_load32_splat(&scales[0][j])));
      }
    }
    gemv_store1(c, n, hsum(acc0));
  }
}

/* Group k0 of x (zeros past K) into v[8]; returns its largest |x|, NaN if it holds one. */
static float load_activation_group(const float *x, int K, int k0, v128_t v[8]) {
  float padded[QUANT_GROUP];
  const float *values = x + k0;
  if (k0 + QUANT_GROUP > K) {
    for (int j = 0; j < QUANT_GROUP; j++) padded[j] = k0 + j < K ? x[k0 + j] : 0.0f;
    values = padded;
  }
  v128_t m = wasm_f32x4_splat(0);
  for (int i = 0; i < 8; i++) {
    v[i] = wasm_v128_load(values + 4 * i);
    m = wasm_f32x4_max(m, wasm_f32x4_abs(v[i]));
  }
  /* f32x4.max, unlike pmax, keeps a NaN. */
  m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
  m = wasm_f32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(m, 0);
}

/*
 * x → two int16 parts per group of 32 (see dot_group): hi = round(x/s) with
 * s = max|x| / 32767, lo = round((x/s − hi)·2^15); zeros past K. x/s is formed in f32
 * (within 2^-23 of exact), so the two parts hold x to f32 precision. Stored per group as
 * [32 hi][32 lo]; for q4 each part lists the even elements, then the odd ones, the order
 * load_group yields nibbles in. A group holding Inf or NaN gets a NaN scale, so the
 * result is NaN as an f32 dot product's would be.
 */
static void quantize_activations(const float *x, int K, int groups, int even_odd, int16_t *xq, float *xscale) {
  for (int g = 0; g < groups; g++) {
    int k0 = g * QUANT_GROUP;
    v128_t v[8];
    float amax = load_activation_group(x, K, k0, v);
    xscale[g] = amax <= 3.4028234663852886e38f ? amax / 32767.0f : NAN;
    v128_t inv = wasm_f32x4_splat(amax > 0 && amax <= 3.4028234663852886e38f ? 32767.0f / amax : 0.0f);
    v128_t hi[8], lo[8];
    for (int i = 0; i < 8; i++) {
      v128_t ratio = wasm_f32x4_mul(v[i], inv);
      v128_t whole = wasm_f32x4_nearest(ratio);
      hi[i] = wasm_i32x4_trunc_sat_f32x4(whole);
      lo[i] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_f32x4_sub(ratio, whole), wasm_f32x4_const_splat(32768.0f))));
    }
    int16_t *dst = xq + 2 * k0;
    for (int part = 0; part < 2; part++) {
      const v128_t *q = part == 0 ? hi : lo;
      /* Elements 8j … 8j + 7 as int16. */
      v128_t e0 = wasm_i16x8_narrow_i32x4(q[0], q[1]), e1 = wasm_i16x8_narrow_i32x4(q[2], q[3]);
      v128_t e2 = wasm_i16x8_narrow_i32x4(q[4], q[5]), e3 = wasm_i16x8_narrow_i32x4(q[6], q[7]);
      int16_t *out = dst + part * QUANT_GROUP;
      if (even_odd) {
        wasm_v128_store(out, wasm_i16x8_shuffle(e0, e1, 0, 2, 4, 6, 8, 10, 12, 14));
        wasm_v128_store(out + 8, wasm_i16x8_shuffle(e2, e3, 0, 2, 4, 6, 8, 10, 12, 14));
        wasm_v128_store(out + 16, wasm_i16x8_shuffle(e0, e1, 1, 3, 5, 7, 9, 11, 13, 15));
        wasm_v128_store(out + 24, wasm_i16x8_shuffle(e2, e3, 1, 3, 5, 7, 9, 11, 13, 15));
      } else {
        wasm_v128_store(out, e0);
        wasm_v128_store(out + 8, e1);
        wasm_v128_store(out + 16, e2);
        wasm_v128_store(out + 24, e3);
      }
    }
  }
}

/*
 * Int16-activation mode (omni_set_gemv_activations): each group of 32 elements of x is
 * rounded once per product to one int16 part, x̃ = s·q with s = max|x|/32767 and
 * q = round(x/s). The weights are widened straight from memory (v128.load8x8) and every
 * 8 of them cost one i32x4.dot_i16x8, half the work of the exact mode. The result is the
 * f32 dot product of the dequantized weights with x̃: each output moves from the exact
 * one by at most (1/65534)·Σ_g max_g|x|·Σ_{i∈g}|w_i| (half a step of each group's
 * largest |x| against that group's weights), 2^-8 of what the 8-bit weights already carry.
 * (Int8 activations, as llama.cpp's q8_0, would cost the same here — wasm SIMD has no
 * 8-bit dot product without relaxed SIMD — and changed greedy tokens of the golden tests.)
 */
enum { ACTIVATIONS_EXACT = 0, ACTIVATIONS_INT16 = 1 };
static int gemv_activations = ACTIVATIONS_EXACT;

/* 0: exact (two int16 parts), 1: one int16 part per element; returns 0, or −1 for an unknown mode. */
OMNI_EXPORT int omni_set_gemv_activations(int mode) {
  if (mode != ACTIVATIONS_EXACT && mode != ACTIVATIONS_INT16) return -1;
  gemv_activations = mode;
  return 0;
}

/*
 * Int16 activations of one product, laid out as the weights are read:
 * per group, q8 keeps element order; q4 lists elements 0,2,…,14 | 1,3,…,15 | 16,18,…,30 |
 * 17,…,31 (the low and high nibbles of bytes 0–7, then of bytes 8–15). `xoffset` holds per
 * group {−8·Σq, 0, 0, 0}: q4 nibbles are stored as value + 8, and this takes the 8 back out.
 * A group holding Inf or NaN gets a NaN scale, so the result is NaN as an f32 product's is.
 */
static void quantize_activations_int16(const float *x, int K, int groups, int nibbles, int16_t *xq, float *xscale, v128_t *xoffset) {
  for (int g = 0; g < groups; g++) {
    int k0 = g * QUANT_GROUP;
    v128_t v[8];
    float amax = load_activation_group(x, K, k0, v);
    int finite = amax <= 3.4028234663852886e38f;
    xscale[g] = finite ? amax / 32767.0f : NAN;
    v128_t inv = wasm_f32x4_splat(finite && amax > 0 ? 32767.0f / amax : 0.0f);
    v128_t q[8];
    for (int i = 0; i < 8; i++) q[i] = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(v[i], inv)));
    /* Elements 8j … 8j + 7 as int16. */
    v128_t e0 = wasm_i16x8_narrow_i32x4(q[0], q[1]), e1 = wasm_i16x8_narrow_i32x4(q[2], q[3]);
    v128_t e2 = wasm_i16x8_narrow_i32x4(q[4], q[5]), e3 = wasm_i16x8_narrow_i32x4(q[6], q[7]);
    int16_t *out = xq + k0;
    if (nibbles) {
      wasm_v128_store(out, wasm_i16x8_shuffle(e0, e1, 0, 2, 4, 6, 8, 10, 12, 14));
      wasm_v128_store(out + 8, wasm_i16x8_shuffle(e0, e1, 1, 3, 5, 7, 9, 11, 13, 15));
      wasm_v128_store(out + 16, wasm_i16x8_shuffle(e2, e3, 0, 2, 4, 6, 8, 10, 12, 14));
      wasm_v128_store(out + 24, wasm_i16x8_shuffle(e2, e3, 1, 3, 5, 7, 9, 11, 13, 15));
      v128_t sum = wasm_i32x4_add(wasm_i32x4_add(q[0], q[1]), wasm_i32x4_add(q[2], q[3]));
      sum = wasm_i32x4_add(sum, wasm_i32x4_add(wasm_i32x4_add(q[4], q[5]), wasm_i32x4_add(q[6], q[7])));
      int total = wasm_i32x4_extract_lane(sum, 0) + wasm_i32x4_extract_lane(sum, 1) + wasm_i32x4_extract_lane(sum, 2) +
                  wasm_i32x4_extract_lane(sum, 3);
      xoffset[g] = wasm_i32x4_make(-8 * total, 0, 0, 0);
    } else {
      wasm_v128_store(out, e0);
      wasm_v128_store(out + 8, e1);
      wasm_v128_store(out + 16, e2);
      wasm_v128_store(out + 24, e3);
    }
  }
}

/* Σ over one group of int16 activations × q8 weights, as four i32 lanes → f32 (|Σ| < 2^25). */
static inline v128_t dot_q8_int16(const int8_t *w, const int16_t *x) {
  v128_t d = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w), wasm_v128_load(x)),
                            wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 8), wasm_v128_load(x + 8)));
  d = wasm_i32x4_add(d, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 16), wasm_v128_load(x + 16)),
                                       wasm_i32x4_dot_i16x8(wasm_i16x8_load8x8(w + 24), wasm_v128_load(x + 24))));
  return wasm_f32x4_convert_i32x4(d);
}

/* The same for q4: nibbles n (value + 8) of 16 bytes, Σ n·q − 8·Σq. */
static inline v128_t dot_q4_int16(const uint8_t *w, const int16_t *x, v128_t offset) {
  v128_t b0 = wasm_u16x8_load8x8(w), b1 = wasm_u16x8_load8x8(w + 8);
  v128_t low = wasm_i16x8_const_splat(15);
  v128_t d = wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(b0, low), wasm_v128_load(x)),
                            wasm_i32x4_dot_i16x8(wasm_u16x8_shr(b0, 4), wasm_v128_load(x + 8)));
  d = wasm_i32x4_add(d, wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_v128_and(b1, low), wasm_v128_load(x + 16)),
                                       wasm_i32x4_dot_i16x8(wasm_u16x8_shr(b1, 4), wasm_v128_load(x + 24))));
  return wasm_f32x4_convert_i32x4(wasm_i32x4_add(d, offset));
}

static inline v128_t int16_group(int q4, const uint8_t *row, int g, const int16_t *x, v128_t offset) {
  return q4 ? dot_q4_int16(row + g * 16, x, offset) : dot_q8_int16((const int8_t *)row + g * 32, x);
}

/*
 * Rows [begin, end) for one weight format: `q4` is a constant where this is inlined, so each
 * format gets its own loops. Four rows at a time: streaming weights from memory (a decode
 * step's case), two rows measured up to 2× slower for q8, though faster from cache.
 */
static inline __attribute__((always_inline)) void gemv_int16_rows(const gemv_ctx *c, int begin, int end, const int q4) {
  const int groups = padded_cols(c->w.cols) / QUANT_GROUP;
  const size_t row_bytes = (size_t)groups * (q4 ? 16 : 32);
  const uint8_t *data = c->w.data;
  float scales[4][SCALE_BLOCK];
  int n = begin;
  for (; n + 4 <= end; n += 4) {
    const uint8_t *r0 = data + (size_t)n * row_bytes;
    const uint8_t *r1 = r0 + row_bytes, *r2 = r1 + row_bytes, *r3 = r2 + row_bytes;
    v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0, acc2 = acc0, acc3 = acc0;
    for (int g0 = 0; g0 < groups; g0 += SCALE_BLOCK) {
      int count = groups - g0 < SCALE_BLOCK ? groups - g0 : SCALE_BLOCK;
      for (int r = 0; r < 4; r++) combined_scales(&c->w, c->xscale, groups, n + r, g0, count, scales[r]);
      for (int j = 0; j < count; j++) {
        int g = g0 + j;
        const int16_t *xq = c->xq + g * QUANT_GROUP;
        const v128_t offset = q4 ? c->xoffset[g] : wasm_i32x4_splat(0);
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(int16_group(q4, r0, g, xq, offset), wasm_v128_load32_splat(&scales[0][j])));
        acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(int16_group(q4, r1, g, xq, offset), wasm_v128_load32_splat(&scales[1][j])));
        acc2 = wasm_f32x4_add(acc2, wasm_f32x4_mul(int16_group(q4, r2, g, xq, offset), wasm_v128_load32_splat(&scales[2][j])));
        acc3 = wasm_f32x4_add(acc3, wasm_f32x4_mul(int16_group(q4, r3, g, xq, offset), wasm_v128_load32_splat(&scales[3][j])));
      }
    }
    gemv_store4(c, n, hsum4(acc0, acc1, acc2, acc3));
  }
  for (; n < end; n++) {
    const uint8_t *r0 = data + (size_t)n * row_bytes;
    v128_t acc0 = wasm_f32x4_splat(0);
    for (int g0 = 0; g0 < groups; g0 += SCALE_BLOCK) {
      int count = groups - g0 < SCALE_BLOCK ? groups - g0 : SCALE_BLOCK;
      combined_scales(&c->w, c->xscale, groups, n, g0, count, scales[0]);
      for (int j = 0; j < count; j++) {
        int g = g0 + j;
        const int16_t *xq = c->xq + g * QUANT_GROUP;
        const v128_t offset = q4 ? c->xoffset[g] : wasm_i32x4_splat(0);
        acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(int16_group(q4, r0, g, xq, offset), wasm_v128_load32_splat(&scales[0][j])));
      }
    }
    gemv_store1(c, n, hsum(acc0));
  }
}

static void gemv_int16(void *p, int begin, int end, int thread) {
  (void)thread;
  const gemv_ctx *c = p;
  if (c->w.format == FORMAT_Q4) gemv_int16_rows(c, begin, end, 1);
  else gemv_int16_rows(c, begin, end, 0);
}

/*
 * Rows per parallel chunk: at least 64 (rows of a few KB amortize the pool's hand-off), and
 * about 16 chunks per thread on tall matrices, so a vocabulary of rows is not thousands of
 * trips to the shared counter while a thread that lost its core still leaves work to take.
 * A weight under GEMV_SERIAL_BYTES (a decode step's k/v projections) runs on the calling
 * thread alone: it streams in microseconds, about what waking a worker costs, and on a busy
 * machine a worker that took one of its two chunks and then lost its core stalled the step
 * (a k/v projection measured 86 µs under load against 13 µs quiet).
 */
#define GEMV_GRAIN 64
#define GEMV_CHUNKS_PER_THREAD 16
#define GEMV_SERIAL_BYTES (256 * 1024)

static int gemv_grain(const weight_t *w) {
  size_t row_bytes = w->format == FORMAT_F32 ? (size_t)w->cols * 4
                   : w->format == FORMAT_F16 ? (size_t)w->cols * 2
                   : (size_t)padded_cols(w->cols) / QUANT_GROUP * ((w->format == FORMAT_Q8 ? 32 : 16) + (w->scale_f16 ? 2 : 4));
  if ((size_t)w->rows * row_bytes < GEMV_SERIAL_BYTES) return w->rows;
  int grain = w->rows / (GEMV_CHUNKS_PER_THREAD * omni_threads());
  return grain > GEMV_GRAIN ? grain : GEMV_GRAIN;
}

static int gemv(const float *x, const weight_t *w, const float *bias, float *y) {
  gemv_ctx c = { .x = x, .w = *w, .bias = bias, .y = y };
  const int grain = gemv_grain(w);
  if (w->format == FORMAT_F32) {
    omni_parallel_for(w->rows, grain, gemv_f32, &c);
  } else if (w->format == FORMAT_F16) {
    omni_parallel_for(w->rows, grain, gemv_f16, &c);
  } else if (gemv_activations == ACTIVATIONS_INT16) {
    int groups = padded_cols(w->cols) / QUANT_GROUP;
    /* One allocation: the int16 values, then the q4 offsets (16-byte aligned), then the scales. */
    uint8_t *scratch = omni_shared_scratch(SCRATCH_ACTIVATIONS, (size_t)groups * (2 * QUANT_GROUP + 16 + 4));
    if (!scratch) return -1;
    int16_t *xq = (int16_t *)scratch;
    v128_t *xoffset = (v128_t *)(scratch + (size_t)groups * 2 * QUANT_GROUP);
    float *xscale = (float *)(scratch + (size_t)groups * (2 * QUANT_GROUP + 16));
    quantize_activations_int16(x, w->cols, groups, w->format == FORMAT_Q4, xq, xscale, xoffset);
    c.xq = xq;
    c.xscale = xscale;
    c.xoffset = xoffset;
    omni_parallel_for(w->rows, grain, gemv_int16, &c);
  } else {
    int groups = padded_cols(w->cols) / QUANT_GROUP;
    int16_t *xq = omni_shared_scratch(SCRATCH_ACTIVATIONS, (size_t)groups * 2 * QUANT_GROUP * 2);
    float *xscale = omni_shared_scratch(SCRATCH_ACTIVATION_SCALES, (size_t)groups * 4);
    if (!xq || !xscale) return -1;
    quantize_activations(x, w->cols, groups, w->format == FORMAT_Q4, xq, xscale);
    c.xq = xq;
    c.xscale = xscale;
    omni_parallel_for(w->rows, grain, gemv_quantized, &c);
  }
  return 0;
}

/* ------------------------------------------------------------------ blocked matmul (M > 1) */

#define MR 4
#define NR 8
#define KC 256
/* Panels per N block: 64 columns of W, 64 KB of packed f32 at KC = 256. */
#define PANELS 8
/* Per thread: the packed panels, one [8][KC] block of dequantized rows, and a zero-padded [4][KC] block of x. */
#define MATMUL_SCRATCH_BYTES ((size_t)(PANELS * KC * NR + NR * KC + MR * KC) * 4)

typedef struct {
  const float *a;
  int lda, M, N, K;
  const weight_t *w;  /* y = a·Wᵀ, any format; or, when NULL, a dense f32 b: */
  const float *b;
  int transpose_b;    /* b [N, K] when set, else [K, N] */
  const float *bias;
  float *c;
  int ldc;
  int m_chunk, m_chunks;
} matmul_ctx;

/* 4×8 tile of a[0..4)[0..kc) · panel[kc][8] into acc (8 vectors: row i is acc[2i], acc[2i+1]). */
static inline void tile_4x8(int kc, const float *a, int lda, const float *panel, v128_t acc[8]) {
  v128_t c00 = wasm_f32x4_splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  const float *a0 = a, *a1 = a + lda, *a2 = a + 2 * lda, *a3 = a + 3 * lda;
  for (int k = 0; k < kc; k++) {
    v128_t p0 = wasm_v128_load(panel + k * NR), p1 = wasm_v128_load(panel + k * NR + 4);
    v128_t x0 = wasm_v128_load32_splat(a0 + k);
    v128_t x1 = wasm_v128_load32_splat(a1 + k);
    v128_t x2 = wasm_v128_load32_splat(a2 + k);
    v128_t x3 = wasm_v128_load32_splat(a3 + k);
    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(x0, p0));
    c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(x0, p1));
    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(x1, p0));
    c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(x1, p1));
    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(x2, p0));
    c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(x2, p1));
    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(x3, p0));
    c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(x3, p1));
  }
  acc[0] = c00; acc[1] = c01; acc[2] = c10; acc[3] = c11;
  acc[4] = c20; acc[5] = c21; acc[6] = c30; acc[7] = c31;
}

/* Packs columns [n0, n0 + nr) and k in [k0, k0 + kc) of the right operand into panel[kc][8], zero-padded. */
static void pack_panel(const matmul_ctx *c, int n0, int nr, int k0, int kc, float *panel, float *rows) {
  if (c->w || c->transpose_b) {
    for (int r = 0; r < nr; r++) {
      if (c->w) dequantize_row(c->w, n0 + r, k0, kc, rows + r * KC);
      else memcpy(rows + r * KC, c->b + (size_t)(n0 + r) * c->K + k0, (size_t)kc * 4);
    }
    for (int r = nr; r < NR; r++) memset(rows + r * KC, 0, (size_t)kc * 4);
    /* [8][kc] → [kc][8] by 4×4 transposes. */
    int k = 0;
    for (; k + 4 <= kc; k += 4) {
      for (int r = 0; r < NR; r += 4) {
        v128_t r0 = wasm_v128_load(rows + r * KC + k), r1 = wasm_v128_load(rows + (r + 1) * KC + k);
        v128_t r2 = wasm_v128_load(rows + (r + 2) * KC + k), r3 = wasm_v128_load(rows + (r + 3) * KC + k);
        v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
        v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        wasm_v128_store(panel + (k + 0) * NR + r, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
        wasm_v128_store(panel + (k + 1) * NR + r, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
        wasm_v128_store(panel + (k + 2) * NR + r, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
        wasm_v128_store(panel + (k + 3) * NR + r, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
      }
    }
    for (; k < kc; k++) {
      for (int r = 0; r < NR; r++) panel[k * NR + r] = rows[r * KC + k];
    }
  } else {
    for (int k = 0; k < kc; k++) {
      const float *src = c->b + (size_t)(k0 + k) * c->N + n0;
      float *dst = panel + k * NR;
      if (nr == NR) {
        wasm_v128_store(dst, wasm_v128_load(src));
        wasm_v128_store(dst + 4, wasm_v128_load(src + 4));
      } else {
        for (int r = 0; r < NR; r++) dst[r] = r < nr ? src[r] : 0.0f;
      }
    }
  }
}

static void matmul_block(void *p, int begin, int end, int thread) {
  const matmul_ctx *c = p;
  float *scratch = omni_thread_scratch(thread, MATMUL_SCRATCH_BYTES);
  float *panels = scratch, *rows = scratch + PANELS * KC * NR, *a_pad = rows + NR * KC;
  for (int task = begin; task < end; task++) {
    int nb = task / c->m_chunks, mb = task % c->m_chunks;
    int n0 = nb * PANELS * NR;
    int n_end = n0 + PANELS * NR < c->N ? n0 + PANELS * NR : c->N;
    int panels_here = (n_end - n0 + NR - 1) / NR;
    int m_begin = mb * c->m_chunk;
    int m_end = m_begin + c->m_chunk < c->M ? m_begin + c->m_chunk : c->M;
    for (int k0 = 0; k0 < c->K; k0 += KC) {
      int kc = c->K - k0 < KC ? c->K - k0 : KC;
      for (int pi = 0; pi < panels_here; pi++) {
        int pn = n0 + pi * NR;
        pack_panel(c, pn, n_end - pn < NR ? n_end - pn : NR, k0, kc, panels + pi * KC * NR, rows);
      }
      for (int m0 = m_begin; m0 < m_end; m0 += MR) {
        int mr = m_end - m0 < MR ? m_end - m0 : MR;
        const float *a = c->a + (size_t)m0 * c->lda + k0;
        int lda = c->lda;
        if (mr < MR) {
          for (int i = 0; i < MR; i++) {
            if (i < mr) memcpy(a_pad + i * KC, a + (size_t)i * lda, (size_t)kc * 4);
            else memset(a_pad + i * KC, 0, (size_t)kc * 4);
          }
          a = a_pad;
          lda = KC;
        }
        for (int pi = 0; pi < panels_here; pi++) {
          int pn = n0 + pi * NR;
          int nr = n_end - pn < NR ? n_end - pn : NR;
          v128_t acc[8];
          tile_4x8(kc, a, lda, panels + pi * KC * NR, acc);
          for (int i = 0; i < mr; i++) {
            float tile[NR];
            wasm_v128_store(tile, acc[2 * i]);
            wasm_v128_store(tile + 4, acc[2 * i + 1]);
            float *out = c->c + (size_t)(m0 + i) * c->ldc + pn;
            for (int j = 0; j < nr; j++) {
              float base = k0 > 0 ? out[j] : c->bias ? c->bias[pn + j] : 0.0f;
              out[j] = base + tile[j];
            }
          }
        }
      }
    }
  }
}

static int matmul_run(matmul_ctx *c) {
  if (c->M == 0 || c->N == 0) return 0;
  if (c->K == 0) {
    for (int m = 0; m < c->M; m++) {
      for (int n = 0; n < c->N; n++) c->c[(size_t)m * c->ldc + n] = c->bias ? c->bias[n] : 0.0f;
    }
    return 0;
  }
  /* Each thread's panels must exist before the pool runs: a failed allocation is reported here. */
  if (omni_reserve_thread_scratch(MATMUL_SCRATCH_BYTES) != 0) return -1;
  int n_blocks = (c->N + PANELS * NR - 1) / (PANELS * NR);
  int want = 2 * omni_threads();
  c->m_chunks = 1;
  if (n_blocks < want && c->M >= 2 * 16) {
    c->m_chunks = (want + n_blocks - 1) / n_blocks;
    if (c->m_chunks > c->M / 16) c->m_chunks = c->M / 16;
  }
  c->m_chunk = (c->M + c->m_chunks - 1) / c->m_chunks;
  c->m_chunk = (c->m_chunk + MR - 1) / MR * MR;
  c->m_chunks = (c->M + c->m_chunk - 1) / c->m_chunk;
  omni_parallel_for(n_blocks * c->m_chunks, 1, matmul_block, c);
  return 0;
}

/* Measured on 4864×896 q8 (2 threads): 4 GEMVs 1.5 ms, the packed matmul 2.5 ms; even at 8 rows. */
#define QUANTIZED_GEMV_MAX_ROWS 4

int linear_rows(const float *x, int lda, int M, const weight_t *w, const float *bias, float *y, int ldy) {
  if (M == 1) return gemv(x, w, bias, y);
  /* A few rows against quantized weights: the integer GEMV once per row beats dequantizing W into panels. */
  if (M <= QUANTIZED_GEMV_MAX_ROWS && (w->format == FORMAT_Q8 || w->format == FORMAT_Q4)) {
    for (int m = 0; m < M; m++) {
      if (gemv(x + (size_t)m * lda, w, bias, y + (size_t)m * ldy) != 0) return -1;
    }
    return 0;
  }
  matmul_ctx c = { .a = x, .lda = lda, .M = M, .N = w->rows, .K = w->cols, .w = w, .bias = bias, .c = y, .ldc = ldy };
  return matmul_run(&c);
}

/* Returns 0, or −1 when scratch memory could not be allocated (the caller reports OUT_OF_MEMORY). */
OMNI_EXPORT int omni_linear(const float *x, int M, const void *data, const void *scales, int format, int scale_f16,
                            int rows, int cols, const float *bias, float *y) {
  weight_t w = { data, scales, rows, cols, format, scale_f16 };
  return linear_rows(x, cols, M, &w, bias, y, rows);
}

OMNI_EXPORT int omni_matmul(const float *a, const float *b, int M, int K, int N, int transpose_b, float *y) {
  if (transpose_b && M == 1) {
    weight_t w = { b, NULL, N, K, FORMAT_F32, 0 };
    return gemv(a, &w, NULL, y);
  }
  matmul_ctx c = { .a = a, .lda = K, .M = M, .N = N, .K = K, .b = b, .transpose_b = transpose_b, .c = y, .ldc = N };
  return matmul_run(&c);
}
