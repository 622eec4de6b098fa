/*
 * Rotary embedding: frequency j turns the pair (j, j + half) ('half' style) or
 * (2j, 2j + 1) ('interleaved') by positions[stream[j]][t]·invFreq[j]; only the first
 * `heads` heads turn, and dimensions past 2·half pass through.
 */
#include "omni.h"
#include <string.h>

typedef struct {
  float *y;
  const int32_t *positions, *stream;
  const float *inv_freq;
  int T, H, D, half, heads, interleaved;
} rotary_ctx;

static void rotary_rows(void *p, int begin, int end, int thread) {
  (void)thread;
  const rotary_ctx *c = p;
  float cosines[c->half], sines[c->half];
  for (int t = begin; t < end; t++) {
    for (int j = 0; j < c->half; j++) {
      /* The angle is one f32 product, as the reference forms it in float32. */
      float angle = (float)c->positions[(size_t)c->stream[j] * c->T + t] * c->inv_freq[j];
      cosines[j] = cosf(angle);
      sines[j] = sinf(angle);
    }
    for (int h = 0; h < c->heads; h++) {
      float *x = c->y + ((size_t)t * c->H + h) * c->D;
      if (c->interleaved) {
        for (int j = 0; j < c->half; j++) {
          float x1 = x[2 * j], x2 = x[2 * j + 1];
          x[2 * j] = x1 * cosines[j] - x2 * sines[j];
          x[2 * j + 1] = x2 * cosines[j] + x1 * sines[j];
        }
      } else {
        float *second = x + c->half;
        int j = 0;
        for (; j + 4 <= c->half; j += 4) {
          v128_t x1 = wasm_v128_load(x + j), x2 = wasm_v128_load(second + j);
          v128_t cs = wasm_v128_load(cosines + j), sn = wasm_v128_load(sines + j);
          wasm_v128_store(x + j, wasm_f32x4_sub(wasm_f32x4_mul(x1, cs), wasm_f32x4_mul(x2, sn)));
          wasm_v128_store(second + j, wasm_f32x4_add(wasm_f32x4_mul(x2, cs), wasm_f32x4_mul(x1, sn)));
        }
        for (; j < c->half; j++) {
          float x1 = x[j], x2 = second[j];
          x[j] = x1 * cosines[j] - x2 * sines[j];
          second[j] = x2 * cosines[j] + x1 * sines[j];
        }
      }
    }
  }
}

/* y may be x (in place); otherwise x is copied to y first. */
OMNI_EXPORT void omni_rotary(const float *x, float *y, const int32_t *positions, const float *inv_freq, const int32_t *stream,
                             int T, int H, int D, int half, int heads, int interleaved) {
  if (y != x) memcpy(y, x, (size_t)T * H * D * 4);
  rotary_ctx c = { y, positions, stream, inv_freq, T, H, D, half, heads, interleaved };
  int grain = 8192 / (heads * D + 1) + 1;
  omni_parallel_for(T, grain, rotary_rows, &c);
}
