/*
 * Shared declarations of the wasm kernels: the thread pool every hot loop is split
 * through, weight formats, and SIMD helpers (f16 widening, exp) used by several files.
 * Pointers are byte offsets into the one wasm heap; the TypeScript backend passes them.
 */
#pragma once
#include <emscripten/emscripten.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <wasm_simd128.h>

#define OMNI_EXPORT EMSCRIPTEN_KEEPALIVE

/* Weight formats, as numbered by the TypeScript side (wasm/weights.ts). */
enum { FORMAT_F32 = 0, FORMAT_F16 = 1, FORMAT_Q8 = 2, FORMAT_Q4 = 3 };
/* Elements per quantization group (quant.ts). */
#define QUANT_GROUP 32

/* A matrix weight [rows, cols] in one of the formats (q8/q4: row blocks with their scales, linear.c). */
typedef struct {
  const void *data;
  int rows, cols, format, scale_f16;
} weight_t;

static inline int padded_cols(int cols) { return (cols + QUANT_GROUP - 1) / QUANT_GROUP * QUANT_GROUP; }

/* ---- thread pool (pool.c) */

/* Runs task(ctx, begin, end, thread) over [0, count) in chunks of `grain` on every pool thread. */
typedef void (*omni_task)(void *ctx, int begin, int end, int thread);
void omni_parallel_for(int count, int grain, omni_task task, void *ctx);
int omni_threads(void);
/* Per-thread scratch of at least `bytes`, 64-byte aligned, kept between calls; NULL if out of memory. */
void *omni_thread_scratch(int thread, size_t bytes);
/* Grows every pool thread's scratch to `bytes` before a parallel_for; −1 if memory ran out. */
int omni_reserve_thread_scratch(size_t bytes);
/* Scratch the main thread fills before a parallel_for, by slot; NULL if out of memory. */
enum { SCRATCH_ACTIVATIONS = 0, SCRATCH_PATCHES = 1, SCRATCH_ATTENTION_SPLITS = 2, SCRATCH_SLOTS = 3 };
void *omni_shared_scratch(int slot, size_t bytes);

/* ---- shared by kernel files (linear.c) */

/* Row `row`, elements [k0, k0 + count) of w as f32; k0 is a multiple of QUANT_GROUP for q8/q4. */
void dequantize_row(const weight_t *w, int row, int k0, int count, float *out);
/* x [M, lda] · Wᵀ (+ bias) → y [M, ldy]; 0, or −1 when scratch memory ran out. */
int linear_rows(const float *x, int lda, int M, const weight_t *w, const float *bias, float *y, int ldy);

/* ---- scalar helpers */

static inline float f16_to_f32(uint16_t h) {
  /* Exact: the half's bits moved into float position, rescaled by 2^112 (subnormals too). */
  union { uint32_t u; float f; } v = { (uint32_t)(h & 0x7fff) << 13 };
  float magnitude = v.f * 0x1p112f;
  if ((h & 0x7c00) == 0x7c00) {
    v.u = 0x7f800000u | ((uint32_t)(h & 0x3ff) << 13);
    magnitude = v.f;
  }
  return (h & 0x8000) ? -magnitude : magnitude;
}

static inline float group_scale(const void *scales, int scale_f16, size_t index) {
  return scale_f16 ? f16_to_f32(((const uint16_t *)scales)[index]) : ((const float *)scales)[index];
}

/* ---- SIMD helpers */

/*
 * acc + a·b. With relaxed SIMD one f32x4.relaxed_madd: a fused multiply-add where the CPU has
 * one (x86 FMA3), half the arithmetic of the multiply and add the baseline build issues; the
 * rounding then differs from the baseline build's by at most one rounding of the product.
 */
static inline v128_t madd(v128_t a, v128_t b, v128_t acc) {
#ifdef __wasm_relaxed_simd__
  typedef float f32x4_t __attribute__((vector_size(16)));
  return (v128_t)__builtin_wasm_relaxed_madd_f32x4((f32x4_t)a, (f32x4_t)b, (f32x4_t)acc);
#else
  return wasm_f32x4_add(acc, wasm_f32x4_mul(a, b));
#endif
}

static inline float hsum(v128_t v) {
  v128_t s = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

static inline float hmax(v128_t v) {
  v128_t s = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  s = wasm_f32x4_pmax(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

/* Lane i of the result is the sum of the lanes of a_i: four horizontal sums at once. */
static inline v128_t hsum4(v128_t a0, v128_t a1, v128_t a2, v128_t a3) {
  v128_t t0 = wasm_f32x4_add(wasm_i32x4_shuffle(a0, a1, 0, 4, 1, 5), wasm_i32x4_shuffle(a0, a1, 2, 6, 3, 7));
  v128_t t1 = wasm_f32x4_add(wasm_i32x4_shuffle(a2, a3, 0, 4, 1, 5), wasm_i32x4_shuffle(a2, a3, 2, 6, 3, 7));
  return wasm_f32x4_add(wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5), wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7));
}

/* Four halves (in the low 16 bits of each u32 lane) → floats, exactly, like f16_to_f32. */
static inline v128_t f16x4_to_f32x4(v128_t h) {
  v128_t bits = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_const_splat(0x7fff)), 13);
  v128_t magnitude = wasm_f32x4_mul(bits, wasm_f32x4_const_splat(0x1p112f));
  v128_t special = wasm_i32x4_eq(wasm_v128_and(h, wasm_i32x4_const_splat(0x7c00)), wasm_i32x4_const_splat(0x7c00));
  magnitude = wasm_v128_bitselect(wasm_v128_or(bits, wasm_i32x4_const_splat(0x70000000)), magnitude, special);
  v128_t sign = wasm_i32x4_shl(wasm_v128_and(h, wasm_i32x4_const_splat(0x8000)), 16);
  return wasm_v128_or(magnitude, sign);
}

/*
 * i32x4.relaxed_dot_i8x16_i7x16_add_s: acc + per lane the dot of 4 bytes of x (signed) with 4 of
 * b. Exact on every engine while b's bytes stay in 0..127; above that the engine decides (see
 * omni_unsigned_dot_bytes). RELAXED_DOT says whether this build has it.
 */
#ifdef __wasm_relaxed_simd__
#define RELAXED_DOT 1
typedef int8_t i8x16_t __attribute__((vector_size(16)));
typedef int32_t i32x4_t __attribute__((vector_size(16)));

static inline v128_t dot_bytes_add(v128_t x, v128_t b, v128_t acc) {
  return (v128_t)__builtin_wasm_relaxed_dot_i8x16_i7x16_add_s_i32x4((i8x16_t)x, (i8x16_t)b, (i32x4_t)acc);
}
#else
#define RELAXED_DOT 0
#endif

/* Set by omni_set_unsigned_dot_bytes (linear.c): the engine's 8-bit dot multiplies b's bytes above 127 as unsigned, exactly. */
extern int omni_unsigned_dot_bytes;

/* Lanes (0 + 1, 2 + 3) of rows01 then of rows23, plus offset: what an i16 dot over two lanes per sum leaves. */
static inline v128_t lane_pair_sums(v128_t rows01, v128_t rows23, v128_t offset) {
  return wasm_i32x4_add(wasm_i32x4_add(wasm_i32x4_shuffle(rows01, rows23, 0, 2, 4, 6), wasm_i32x4_shuffle(rows01, rows23, 1, 3, 5, 7)), offset);
}

/*
 * Constants that kernels read from memory (constants.c) rather than write as v128.const: V8
 * materializes a v128.const where it is used, from a general register in three instructions,
 * inside the loop; a load is one, or none where it folds into the arithmetic (exp over a
 * decode step's attention scores: 75 → 40 instructions per four; a q4 GEMV with f16 scales,
 * 4864×896 from cache on one thread: 5 % faster). They live in their own file so that clang
 * cannot fold them back into v128.const. (Node 20's q4 path kept its masks as v128.const:
 * read from memory there, it ran 1–2 % slower.)
 */
typedef struct {
  v128_t round; /* 1.5·2^23, see rounded_bits */
  v128_t exp_low, exp_high, log2e, ln2_hi, ln2_lo, c7, c6, c5, c4, c3, c2, one, exponent_bias;
  v128_t half_bits, half_rebias; /* f16_top_to_f32 */
  v128_t coarse_low, ln2;        /* exp_coarse (attention.c) */
  v128_t low_nibble_bytes;       /* 0x0f in every byte */
} kernel_constants;
extern const kernel_constants omni_constants;

/*
 * v rounded to the nearest integer, ties to even (as f32x4.nearest), for |v| < 2^22: added to
 * 1.5·2^23, v is rounded at the unit bit and lands in the mantissa's low bits. rounded_bits
 * then rounded_int is an add and an integer subtract, where nearest and i32x4.trunc_sat (whose
 * saturation V8 builds from five x86 instructions) were two ops; rounded_float gives the float.
 */
static inline v128_t rounded_bits(v128_t v) { return wasm_f32x4_add(v, omni_constants.round); }
static inline v128_t rounded_int(v128_t bits) { return wasm_i32x4_sub(bits, omni_constants.round); }
static inline v128_t rounded_float(v128_t bits) { return wasm_f32x4_sub(bits, omni_constants.round); }

/*
 * e^x to ~1 ulp: x = n·ln2 + r with |r| ≤ ln2/2, e^r by its Taylor series to r^7
 * (truncation < 6e-9), then 2^n applied in two steps so results down to the
 * smallest subnormal are formed; below −104 the result is 0, above 88.7 it is ~FLT_MAX.
 */
static inline v128_t exp_f32x4(v128_t x) {
  const kernel_constants *k = &omni_constants;
  /* pmax/pmin with x first keep a NaN as f32x4.max/min do, in one x86 instruction each where those take six. */
  x = wasm_f32x4_pmin(wasm_f32x4_pmax(x, k->exp_low), k->exp_high);
  v128_t whole = rounded_bits(wasm_f32x4_mul(x, k->log2e)), n = rounded_float(whole);
  /* ln2 split so n·ln2_hi is exact for |n| < 2^9. */
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, k->ln2_hi));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, k->ln2_lo));
  v128_t p = k->c7;
  p = madd(p, r, k->c6);
  p = madd(p, r, k->c5);
  p = madd(p, r, k->c4);
  p = madd(p, r, k->c3);
  p = madd(p, r, k->c2);
  p = madd(p, r, k->one);
  p = madd(p, r, k->one);
  v128_t ni = rounded_int(whole);
  v128_t n1 = wasm_i32x4_shr(ni, 1);
  v128_t n2 = wasm_i32x4_sub(ni, n1);
  v128_t s1 = wasm_i32x4_shl(wasm_i32x4_add(n1, k->exponent_bias), 23);
  v128_t s2 = wasm_i32x4_shl(wasm_i32x4_add(n2, k->exponent_bias), 23);
  return wasm_f32x4_mul(wasm_f32x4_mul(p, s1), s2);
}

static inline float exp_f32(float x) { return wasm_f32x4_extract_lane(exp_f32x4(wasm_f32x4_splat(x)), 0); }

/* y[i] = e^{x[i] − shift} for i < n (y may be x); returns their sum. The core of every softmax. */
static inline float exp_shifted(const float *x, float *y, int n, float shift) {
  v128_t mv = wasm_f32x4_splat(shift), sum = wasm_f32x4_splat(0);
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    v128_t e = exp_f32x4(wasm_f32x4_sub(wasm_v128_load(x + i), mv));
    wasm_v128_store(y + i, e);
    sum = wasm_f32x4_add(sum, e);
  }
  float total = hsum(sum);
  for (; i < n; i++) total += y[i] = exp_f32(x[i] - shift);
  return total;
}
