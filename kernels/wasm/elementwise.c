/* Elementwise ops: silu(gate)·up, GELU (erf and tanh forms), add/mul with row broadcast, and avgPoolRows. */
#include "omni.h"

/* Elements per parallel chunk: enough work to amortize the pool's hand-off. */
#define ELEMENT_GRAIN 16384

typedef struct {
  const float *a, *b;
  float *y;
  int n, b_len; /* b_len: a's size (same shape) or one row of a (broadcast) */
  int mode;
} element_ctx;

static void silu_mul_range(void *p, int begin, int end, int thread) {
  (void)thread;
  const element_ctx *c = p;
  int i = begin;
  for (; i + 4 <= end; i += 4) {
    v128_t g = wasm_v128_load(c->a + i);
    v128_t sigmoid_inv = wasm_f32x4_add(wasm_f32x4_const_splat(1.0f), exp_f32x4(wasm_f32x4_neg(g)));
    wasm_v128_store(c->y + i, wasm_f32x4_mul(wasm_f32x4_div(g, sigmoid_inv), wasm_v128_load(c->b + i)));
  }
  for (; i < end; i++) c->y[i] = c->a[i] / (1.0f + exp_f32(-c->a[i])) * c->b[i];
}

OMNI_EXPORT void omni_silu_mul(const float *gate, const float *up, float *y, int n) {
  element_ctx c = { .a = gate, .b = up, .y = y, .n = n };
  omni_parallel_for(n, ELEMENT_GRAIN, silu_mul_range, &c);
}

/*
 * erfc(z)·e^{z²} = t·Q(t) with t = 1/(1 + 0.3·z): Q is a degree-10 polynomial fitted
 * (weighted least squares, relative error) to erfc on z ∈ [0, 11]; it is good to
 * 7e-10 in exact arithmetic and ~3e-7 evaluated in f32. Past z = 11 erfc underflows f32.
 */
static const float ERFC_Q[11] = {
  0.1692764014005661f, 0.16878710687160492f, 0.16664591431617737f, 0.11525589227676392f,
  0.25019973516464233f, -0.24539749324321747f, 0.7172501087188721f, -0.7849157452583313f,
  0.7091972827911377f, -0.31992900371551514f, 0.053629785776138306f,
};

/*
 * GELU(x) = x·Φ(x) with Φ from erfc, so negative x keeps its relative accuracy (the
 * textbook 0.5·x·(1 + erf) cancels there). e^{−x²/2} is taken with x split into a
 * 12-bit head (whose square is exact) and a tail, so the rounding of x² does not
 * turn into a relative error of x²·2^-24 in the exponential.
 */
static inline v128_t gelu_erf_f32x4(v128_t x) {
  v128_t a = wasm_f32x4_abs(x);
  v128_t z = wasm_f32x4_mul(a, wasm_f32x4_const_splat(0.70710678118654752f));
  v128_t t = wasm_f32x4_div(wasm_f32x4_const_splat(1.0f), wasm_f32x4_add(wasm_f32x4_const_splat(1.0f), wasm_f32x4_mul(z, wasm_f32x4_const_splat(0.3f))));
  v128_t q = wasm_f32x4_splat(ERFC_Q[10]);
  for (int j = 9; j >= 0; j--) q = wasm_f32x4_add(wasm_f32x4_mul(q, t), wasm_f32x4_splat(ERFC_Q[j]));
  v128_t head = wasm_v128_and(a, wasm_i32x4_const_splat((int32_t)0xfffff000));
  v128_t tail = wasm_f32x4_sub(a, head);
  v128_t gauss = exp_f32x4(wasm_f32x4_mul(wasm_f32x4_mul(head, head), wasm_f32x4_const_splat(-0.5f)));
  /* e^{−d} for the small d = tail·(a + head)/2 ≤ x²·2^-12, by four Taylor terms. */
  v128_t d = wasm_f32x4_mul(wasm_f32x4_mul(tail, wasm_f32x4_add(a, head)), wasm_f32x4_const_splat(0.5f));
  v128_t correction = wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f),
    wasm_f32x4_mul(d, wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f),
      wasm_f32x4_mul(d, wasm_f32x4_sub(wasm_f32x4_const_splat(0.5f), wasm_f32x4_mul(d, wasm_f32x4_const_splat(1.0f / 6.0f)))))));
  v128_t erfc = wasm_f32x4_mul(wasm_f32x4_mul(gauss, correction), wasm_f32x4_mul(t, q));
  erfc = wasm_v128_andnot(erfc, wasm_f32x4_gt(z, wasm_f32x4_const_splat(11.0f)));
  v128_t half_erfc = wasm_f32x4_mul(erfc, wasm_f32x4_const_splat(0.5f));
  v128_t phi = wasm_v128_bitselect(half_erfc, wasm_f32x4_sub(wasm_f32x4_const_splat(1.0f), half_erfc), wasm_f32x4_lt(x, wasm_f32x4_splat(0)));
  return wasm_f32x4_mul(x, phi);
}

/*
 * 0.5·x·(1 + tanh(u)), u = √(2/π)(x + 0.044715x³). With m = e^{−2|u|}, 1 + tanh(u) is
 * 2/(1 + m) for u ≥ 0 and 2m/(1 + m) for u < 0: neither form cancels or overflows.
 */
static inline v128_t gelu_tanh_f32x4(v128_t x) {
  v128_t u = wasm_f32x4_mul(wasm_f32x4_const_splat(0.7978845608028654f),
    wasm_f32x4_add(x, wasm_f32x4_mul(wasm_f32x4_const_splat(0.044715f), wasm_f32x4_mul(x, wasm_f32x4_mul(x, x)))));
  v128_t m = exp_f32x4(wasm_f32x4_mul(wasm_f32x4_abs(u), wasm_f32x4_const_splat(-2.0f)));
  v128_t numerator = wasm_v128_bitselect(wasm_f32x4_add(m, m), wasm_f32x4_const_splat(2.0f), wasm_f32x4_lt(u, wasm_f32x4_splat(0)));
  v128_t one_plus_tanh = wasm_f32x4_div(numerator, wasm_f32x4_add(wasm_f32x4_const_splat(1.0f), m));
  return wasm_f32x4_mul(wasm_f32x4_mul(x, wasm_f32x4_const_splat(0.5f)), one_plus_tanh);
}

static void gelu_range(void *p, int begin, int end, int thread) {
  (void)thread;
  const element_ctx *c = p;
  for (int i = begin; i < end; i += 4) {
    v128_t x;
    int lanes = end - i < 4 ? end - i : 4;
    if (lanes == 4) {
      x = wasm_v128_load(c->a + i);
    } else {
      float tmp[4] = { 0, 0, 0, 0 };
      for (int j = 0; j < lanes; j++) tmp[j] = c->a[i + j];
      x = wasm_v128_load(tmp);
    }
    v128_t y = c->mode ? gelu_tanh_f32x4(x) : gelu_erf_f32x4(x);
    if (lanes == 4) {
      wasm_v128_store(c->y + i, y);
    } else {
      float tmp[4];
      wasm_v128_store(tmp, y);
      for (int j = 0; j < lanes; j++) c->y[i + j] = tmp[j];
    }
  }
}

/* mode 0: erf, 1: tanh. */
OMNI_EXPORT void omni_gelu(const float *x, float *y, int n, int mode) {
  element_ctx c = { .a = x, .y = y, .n = n, .mode = mode };
  omni_parallel_for(n, ELEMENT_GRAIN, gelu_range, &c);
}

static void binary_range(void *p, int begin, int end, int thread) {
  (void)thread;
  const element_ctx *c = p;
  const int L = c->b_len;
  const int add = c->mode == 0;
  for (int i = begin; i < end;) {
    /* Runs of a that line up with one stretch of b (the whole tensor, or one row). */
    int j = i % L;
    int run = L - j < end - i ? L - j : end - i;
    const float *a = c->a + i, *b = c->b + j;
    float *y = c->y + i;
    int k = 0;
    if (add) {
      for (; k + 4 <= run; k += 4) wasm_v128_store(y + k, wasm_f32x4_add(wasm_v128_load(a + k), wasm_v128_load(b + k)));
      for (; k < run; k++) y[k] = a[k] + b[k];
    } else {
      for (; k + 4 <= run; k += 4) wasm_v128_store(y + k, wasm_f32x4_mul(wasm_v128_load(a + k), wasm_v128_load(b + k)));
      for (; k < run; k++) y[k] = a[k] * b[k];
    }
    i += run;
  }
}

/* op 0: add, 1: mul. b has n elements, or b_len (a row of a) broadcast over a's rows. */
OMNI_EXPORT void omni_binary(const float *a, const float *b, float *y, int n, int b_len, int op) {
  element_ctx c = { .a = a, .b = b, .y = y, .n = n, .b_len = b_len, .mode = op };
  omni_parallel_for(n, ELEMENT_GRAIN, binary_range, &c);
}

typedef struct {
  const float *x;
  float *y;
  int columns, size;
} pool_ctx;

/* Window sums in f64: a window may hold thousands of rows. */
static void avg_pool_range(void *p, int begin, int end, int thread) {
  (void)thread;
  const pool_ctx *c = p;
  const int C = c->columns;
  for (int w = begin; w < end; w++) {
    for (int col = 0; col < C; col++) {
      double sum = 0;
      const float *src = c->x + (size_t)w * c->size * C + col;
      for (int r = 0; r < c->size; r++) sum += src[(size_t)r * C];
      c->y[(size_t)w * C + col] = (float)(sum / c->size);
    }
  }
}

OMNI_EXPORT void omni_avg_pool_rows(const float *x, float *y, int windows, int columns, int size) {
  pool_ctx c = { x, y, columns, size };
  int grain = ELEMENT_GRAIN / (columns * size + 1) + 1;
  omni_parallel_for(windows, grain, avg_pool_range, &c);
}

enum { UNARY_RELU = 0, UNARY_SIGMOID = 1, UNARY_TANH = 2, UNARY_SILU = 3, UNARY_SQRT = 4, UNARY_CLAMP = 5, UNARY_AFFINE = 6 };

typedef struct {
  const float *x;
  float *y;
  int kind;
  float p0, p1;
} unary_ctx;

static inline v128_t unary_f32x4(const unary_ctx *c, v128_t x) {
  switch (c->kind) {
    case UNARY_RELU: return wasm_f32x4_max(x, wasm_f32x4_splat(0));
    case UNARY_SIGMOID: return wasm_f32x4_div(wasm_f32x4_const_splat(1.0f), wasm_f32x4_add(wasm_f32x4_const_splat(1.0f), exp_f32x4(wasm_f32x4_neg(x))));
    case UNARY_SILU: return wasm_f32x4_div(x, wasm_f32x4_add(wasm_f32x4_const_splat(1.0f), exp_f32x4(wasm_f32x4_neg(x))));
    case UNARY_SQRT: return wasm_f32x4_sqrt(x);
    case UNARY_CLAMP: return wasm_f32x4_min(wasm_f32x4_max(x, wasm_f32x4_splat(c->p0)), wasm_f32x4_splat(c->p1));
    case UNARY_AFFINE: return wasm_f32x4_add(wasm_f32x4_mul(x, wasm_f32x4_splat(c->p0)), wasm_f32x4_splat(c->p1));
    default: {
      /* tanh must stay relative-accurate near 0, where 1 − 2/(e^{2x} + 1) cancels: libm's tanhf. */
      float lanes[4];
      wasm_v128_store(lanes, x);
      for (int j = 0; j < 4; j++) lanes[j] = tanhf(lanes[j]);
      return wasm_v128_load(lanes);
    }
  }
}

static void unary_range(void *p, int begin, int end, int thread) {
  (void)thread;
  const unary_ctx *c = p;
  int i = begin;
  for (; i + 4 <= end; i += 4) wasm_v128_store(c->y + i, unary_f32x4(c, wasm_v128_load(c->x + i)));
  if (i < end) {
    float lanes[4] = { 0, 0, 0, 0 };
    for (int j = 0; i + j < end; j++) lanes[j] = c->x[i + j];
    wasm_v128_store(lanes, unary_f32x4(c, wasm_v128_load(lanes)));
    for (int j = 0; i + j < end; j++) c->y[i + j] = lanes[j];
  }
}

/* kind as in the enum above; clamp takes [p0, p1], affine p0·x + p1. */
OMNI_EXPORT void omni_unary(const float *x, float *y, int n, int kind, float p0, float p1) {
  unary_ctx c = { x, y, kind, p0, p1 };
  omni_parallel_for(n, ELEMENT_GRAIN, unary_range, &c);
}
