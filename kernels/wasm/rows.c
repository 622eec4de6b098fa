/* Row reductions over the last dimension: rmsnorm, layernorm, softmax, argmax. */
#include "omni.h"

typedef struct {
  const float *x, *w, *b;
  float *y;
  int32_t *index;
  int cols;
  float eps;
} rows_ctx;

/* Rows per parallel chunk, so that a chunk holds ~16K elements. */
static int row_grain(int cols) { return 16384 / (cols + 1) + 1; }

static float sum_of(const float *x, int n) {
  v128_t a = wasm_f32x4_splat(0), b = a;
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    a = wasm_f32x4_add(a, wasm_v128_load(x + k));
    b = wasm_f32x4_add(b, wasm_v128_load(x + k + 4));
  }
  for (; k + 4 <= n; k += 4) a = wasm_f32x4_add(a, wasm_v128_load(x + k));
  float s = hsum(wasm_f32x4_add(a, b));
  for (; k < n; k++) s += x[k];
  return s;
}

/* Σ (x − shift)²: shift 0 for rmsnorm, the mean for layernorm (two passes avoid E[x²] − E[x]² cancelling). */
static float squares_of(const float *x, int n, float shift) {
  v128_t s = wasm_f32x4_splat(shift);
  v128_t a = wasm_f32x4_splat(0), b = a;
  int k = 0;
  for (; k + 8 <= n; k += 8) {
    v128_t d0 = wasm_f32x4_sub(wasm_v128_load(x + k), s), d1 = wasm_f32x4_sub(wasm_v128_load(x + k + 4), s);
    a = wasm_f32x4_add(a, wasm_f32x4_mul(d0, d0));
    b = wasm_f32x4_add(b, wasm_f32x4_mul(d1, d1));
  }
  for (; k + 4 <= n; k += 4) {
    v128_t d0 = wasm_f32x4_sub(wasm_v128_load(x + k), s);
    a = wasm_f32x4_add(a, wasm_f32x4_mul(d0, d0));
  }
  float sum = hsum(wasm_f32x4_add(a, b));
  for (; k < n; k++) sum += (x[k] - shift) * (x[k] - shift);
  return sum;
}

/* y = (x − shift)·inv·w + b, with w and b optional. */
static void normalize_row(const float *x, const float *w, const float *b, float *y, int n, float shift, float inv) {
  v128_t s = wasm_f32x4_splat(shift), v = wasm_f32x4_splat(inv);
  int k = 0;
  for (; k + 4 <= n; k += 4) {
    v128_t r = wasm_f32x4_mul(wasm_f32x4_sub(wasm_v128_load(x + k), s), v);
    if (w) r = wasm_f32x4_mul(r, wasm_v128_load(w + k));
    if (b) r = wasm_f32x4_add(r, wasm_v128_load(b + k));
    wasm_v128_store(y + k, r);
  }
  for (; k < n; k++) {
    float r = (x[k] - shift) * inv;
    if (w) r *= w[k];
    if (b) r += b[k];
    y[k] = r;
  }
}

static void rmsnorm_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const rows_ctx *c = p;
  for (int r = begin; r < end; r++) {
    const float *x = c->x + (size_t)r * c->cols;
    float inv = 1.0f / sqrtf(squares_of(x, c->cols, 0.0f) / c->cols + c->eps);
    normalize_row(x, c->w, NULL, c->y + (size_t)r * c->cols, c->cols, 0.0f, inv);
  }
}

OMNI_EXPORT void omni_rmsnorm(const float *x, const float *w, float *y, int rows, int cols, float eps) {
  rows_ctx c = { .x = x, .w = w, .y = y, .cols = cols, .eps = eps };
  omni_parallel_for(rows, row_grain(cols), rmsnorm_rows, &c);
}

static void layernorm_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const rows_ctx *c = p;
  for (int r = begin; r < end; r++) {
    const float *x = c->x + (size_t)r * c->cols;
    float mean = sum_of(x, c->cols) / c->cols;
    float inv = 1.0f / sqrtf(squares_of(x, c->cols, mean) / c->cols + c->eps);
    normalize_row(x, c->w, c->b, c->y + (size_t)r * c->cols, c->cols, mean, inv);
  }
}

/* w and b may be 0 (no affine). */
OMNI_EXPORT void omni_layernorm(const float *x, const float *w, const float *b, float *y, int rows, int cols, float eps) {
  rows_ctx c = { .x = x, .w = w, .b = b, .y = y, .cols = cols, .eps = eps };
  omni_parallel_for(rows, row_grain(cols), layernorm_rows, &c);
}

static void softmax_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const rows_ctx *c = p;
  const int n = c->cols;
  for (int r = begin; r < end; r++) {
    const float *x = c->x + (size_t)r * n;
    float *y = c->y + (size_t)r * n;
    v128_t m = wasm_f32x4_splat(-INFINITY);
    int k = 0;
    for (; k + 4 <= n; k += 4) m = wasm_f32x4_max(m, wasm_v128_load(x + k));
    float max = hmax(m);
    for (; k < n; k++) max = fmaxf(max, x[k]);
    float sum = exp_shifted(x, y, n, max);
    v128_t inv = wasm_f32x4_splat(1.0f / sum);
    for (k = 0; k + 4 <= n; k += 4) wasm_v128_store(y + k, wasm_f32x4_mul(wasm_v128_load(y + k), inv));
    for (; k < n; k++) y[k] /= sum;
  }
}

OMNI_EXPORT void omni_softmax(const float *x, float *y, int rows, int cols) {
  rows_ctx c = { .x = x, .y = y, .cols = cols };
  omni_parallel_for(rows, row_grain(cols), softmax_rows, &c);
}

/* First index of the row's largest value; NaN never wins (a NaN first entry stays the answer, as in a plain scan). */
static void argmax_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const rows_ctx *c = p;
  const int n = c->cols;
  for (int r = begin; r < end; r++) {
    const float *x = c->x + (size_t)r * n;
    if (x[0] != x[0]) {
      c->index[r] = 0;
      continue;
    }
    /* pmax keeps the accumulator when the new value is NaN. */
    v128_t m = wasm_f32x4_splat(x[0]);
    int k = 0;
    for (; k + 4 <= n; k += 4) m = wasm_f32x4_pmax(m, wasm_v128_load(x + k));
    float max = hmax(m);
    for (; k < n; k++) max = x[k] > max ? x[k] : max;
    int best = 0;
    while (x[best] != max) best++;
    c->index[r] = best;
  }
}

OMNI_EXPORT void omni_argmax(const float *x, int32_t *index, int rows, int cols) {
  rows_ctx c = { .x = x, .index = index, .cols = cols };
  omni_parallel_for(rows, row_grain(cols), argmax_rows, &c);
}
