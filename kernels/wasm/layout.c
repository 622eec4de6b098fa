/* Data movement: embedding rows (any weight format), gatherRows and transpose of 32-bit elements. */
#include "omni.h"
#include <string.h>

typedef struct {
  weight_t w;
  const int32_t *ids;
  float *y;
} embedding_ctx;

static void embedding_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const embedding_ctx *c = p;
  for (int t = begin; t < end; t++) dequantize_row(&c->w, c->ids[t], 0, c->w.cols, c->y + (size_t)t * c->w.cols);
}

/* ids are checked by the caller to lie in [0, rows). */
OMNI_EXPORT void omni_embedding(const void *data, int format, int scale_f16, int rows, int cols, const int32_t *ids, int count, float *y) {
  embedding_ctx c = { { data, rows, cols, format, scale_f16 }, ids, y };
  omni_parallel_for(count, 16384 / (cols + 1) + 1, embedding_rows, &c);
}

OMNI_EXPORT void omni_gather_rows(const uint32_t *x, const int32_t *ids, int count, int cols, uint32_t *y) {
  for (int i = 0; i < count; i++) memcpy(y + (size_t)i * cols, x + (size_t)ids[i] * cols, (size_t)cols * 4);
}

typedef struct {
  const uint32_t *x;
  uint32_t *y;
  int M, N;
} transpose_ctx;

/* Tiles of 4 rows of x, 4×4 blocks through registers. */
static void transpose_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const transpose_ctx *c = p;
  const int M = c->M, N = c->N;
  for (int m = begin * 4; m < end * 4 && m < M; m += 4) {
    int n = 0;
    if (m + 4 <= M) {
      for (; n + 4 <= N; n += 4) {
        v128_t r0 = wasm_v128_load(c->x + (size_t)m * N + n), r1 = wasm_v128_load(c->x + (size_t)(m + 1) * N + n);
        v128_t r2 = wasm_v128_load(c->x + (size_t)(m + 2) * N + n), r3 = wasm_v128_load(c->x + (size_t)(m + 3) * N + n);
        v128_t t0 = wasm_i32x4_shuffle(r0, r1, 0, 4, 1, 5), t1 = wasm_i32x4_shuffle(r0, r1, 2, 6, 3, 7);
        v128_t t2 = wasm_i32x4_shuffle(r2, r3, 0, 4, 1, 5), t3 = wasm_i32x4_shuffle(r2, r3, 2, 6, 3, 7);
        wasm_v128_store(c->y + (size_t)n * M + m, wasm_i32x4_shuffle(t0, t2, 0, 1, 4, 5));
        wasm_v128_store(c->y + (size_t)(n + 1) * M + m, wasm_i32x4_shuffle(t0, t2, 2, 3, 6, 7));
        wasm_v128_store(c->y + (size_t)(n + 2) * M + m, wasm_i32x4_shuffle(t1, t3, 0, 1, 4, 5));
        wasm_v128_store(c->y + (size_t)(n + 3) * M + m, wasm_i32x4_shuffle(t1, t3, 2, 3, 6, 7));
      }
    }
    for (int i = m; i < m + 4 && i < M; i++) {
      for (int j = n; j < N; j++) c->y[(size_t)j * M + i] = c->x[(size_t)i * N + j];
    }
  }
}

OMNI_EXPORT void omni_transpose(const uint32_t *x, uint32_t *y, int M, int N) {
  transpose_ctx c = { x, y, M, N };
  int blocks = (M + 3) / 4;
  omni_parallel_for(blocks, 4096 / (4 * N + 1) + 1, transpose_rows, &c);
}
