/*
 * Attention with an online softmax over the visible keys of each query. Every mask kind
 * leaves a query one contiguous run of keys, so the mask is a [first, last) range.
 * A work unit is one query and all heads, so a chunk of key and value rows is read whole,
 * once, for every head that reads it.
 */
#include "omni.h"
#include <string.h>

enum { MASK_NONE = 0, MASK_CAUSAL = 1, MASK_SEGMENTS = 2, MASK_BLOCK_WINDOW = 3 };
/* Keys per chunk: scores and exponentials are taken a chunk at a time. */
#define KEY_CHUNK 64
/*
 * Keys per split of a query's keys at the least (flash-decoding, see attention_units): one
 * chunk. At 256, a decode step over 384 cached keys ran on one thread (40 µs on a 2-thread
 * pool, 23 µs split in two); the combine costs a few hundred flops per split and head.
 */
#define MIN_SPLIT_KEYS KEY_CHUNK

/*
 * One layer's 8-bit KV cache of `rows` rows (rounded up to a multiple of 4) and Hkv heads of D
 * elements (padded with zero codes to Dp, a multiple of 16), in one allocation of
 * omni_kv8_bytes. Per row and head each vector x is stored as codes c = round(x / s), |c| ≤ 127,
 * with s = max|x| / 127:
 *   keys   [rows / 4][Hkv][Dp / 4][4][4] bytes c + 128, the 8-bit dot's second operand: per
 *          block of 4 rows, 4 elements of each row side by side, so a lane of the dot sums
 *          4 elements of one row (kv8_scores);
 *   values [rows / 4][Hkv][Dp][4] signed bytes: per block, the 4 rows side by side per element,
 *          so a lane of the dot sums one element over 4 rows (kv8_values);
 *   key scales, value scales [Hkv][rows] f32, so 4 consecutive rows' scales are one load.
 */
typedef struct {
  uint8_t *keys;
  int8_t *values;
  float *key_scales, *value_scales;
  int rows, Hkv, Dp;
} kv8_t;

static kv8_t kv8_at(void *base, int rows, int Hkv, int D) {
  kv8_t c = { .rows = (rows + 3) & ~3, .Hkv = Hkv, .Dp = (D + 15) & ~15 };
  const size_t codes = (size_t)c.rows * Hkv * c.Dp;
  c.keys = base;
  c.values = (int8_t *)base + codes;
  c.key_scales = (float *)((uint8_t *)base + 2 * codes);
  c.value_scales = c.key_scales + (size_t)Hkv * c.rows;
  return c;
}

typedef struct {
  const float *q, *k, *v;
  kv8_t kv8; /* omni_attention_kv8: the cache that k and v stand for */
  float *y;
  int T, kv_length, Hq, Hkv, D;
  float scale;
  int mask, query_start, block_size, back, ahead;
  const int32_t *bounds;
  int segments;
  int splits;
  float *partials; /* splits > 1: per unit and head [max, sum, out[D]] */
} attention_ctx;

static void key_range(const attention_ctx *c, int i, int *first, int *last) {
  *first = 0;
  *last = c->kv_length;
  switch (c->mask) {
    case MASK_CAUSAL:
      if (c->query_start + i + 1 < *last) *last = c->query_start + i + 1;
      break;
    case MASK_SEGMENTS:
      for (int s = 0; s < c->segments; s++) {
        if (i >= c->bounds[s] && i < c->bounds[s + 1]) {
          *first = c->bounds[s];
          *last = c->bounds[s + 1];
          break;
        }
      }
      break;
    case MASK_BLOCK_WINDOW: {
      long qb = i / c->block_size;
      long lo = (qb - c->back) * (long)c->block_size, hi = (qb + c->ahead + 1) * (long)c->block_size;
      if (lo > 0) *first = (int)lo;
      if (hi < *last) *last = (int)hi;
      break;
    }
  }
}

static float dot(const float *a, const float *b, int D) {
  v128_t s = wasm_f32x4_splat(0);
  int d = 0;
  for (; d + 4 <= D; d += 4) s = madd(wasm_v128_load(a + d), wasm_v128_load(b + d), s);
  float sum = hsum(s);
  for (; d < D; d++) sum += a[d] * b[d];
  return sum;
}

/*
 * Scores of n keys (row stride `stride`) for one query head, or for two that share them
 * (`pair`, a constant where this is inlined): sa[j] = qa·k_j·scale, and sb[j] likewise.
 * Four keys per pass. The loads bound this loop (a fused multiply-add in place of the
 * multiply and add gained 5 %), so with two heads each key vector loaded feeds both.
 */
static inline __attribute__((always_inline)) void scores_of(const float *qa, const float *qb, const int pair, const float *k, int stride,
                                                             int n, int D, float scale, float *sa, float *sb) {
  int j = 0;
  for (; j + 4 <= n && (D & 3) == 0; j += 4) {
    const float *key = k + (size_t)j * stride;
    v128_t a[4], b[4];
    for (int r = 0; r < 4; r++) a[r] = b[r] = wasm_f32x4_splat(0);
    for (int d = 0; d < D; d += 4) {
      v128_t va = wasm_v128_load(qa + d), vb = pair ? wasm_v128_load(qb + d) : va;
      for (int r = 0; r < 4; r++) {
        v128_t x = wasm_v128_load(key + (size_t)r * stride + d);
        a[r] = madd(va, x, a[r]);
        if (pair) b[r] = madd(vb, x, b[r]);
      }
    }
    wasm_v128_store(sa + j, wasm_f32x4_mul(hsum4(a[0], a[1], a[2], a[3]), wasm_f32x4_splat(scale)));
    if (pair) wasm_v128_store(sb + j, wasm_f32x4_mul(hsum4(b[0], b[1], b[2], b[3]), wasm_f32x4_splat(scale)));
  }
  for (; j < n; j++) {
    sa[j] = dot(qa, k + (size_t)j * stride, D) * scale;
    if (pair) sb[j] = dot(qb, k + (size_t)j * stride, D) * scale;
  }
}

/*
 * A chunk of scores s[0..n) → e^{s − m} in place, with m the running max of the head's
 * scores so far (updated); the head's running sum is rescaled and grows by the chunk's.
 * Returns e^{old m − m}, the factor its running output takes.
 */
static float softmax_chunk(float *s, int n, float *max, float *total) {
  float chunk_max = s[0];
  int j = 0;
  if (n >= 4) {
    v128_t m = wasm_v128_load(s);
    for (j = 4; j + 4 <= n; j += 4) m = wasm_f32x4_pmax(m, wasm_v128_load(s + j));
    chunk_max = hmax(m);
  }
  for (; j < n; j++) chunk_max = s[j] > chunk_max ? s[j] : chunk_max;
  float new_max = chunk_max > *max ? chunk_max : *max;
  float alpha = exp_f32(*max - new_max);
  *max = new_max;
  *total = *total * alpha + exp_shifted(s, s, n, new_max);
  return alpha;
}

/* acc + (p0·r0 + p1·r1): one add on acc's chain per pair of value rows (with relaxed SIMD, a multiply and a fused multiply-add beside it). */
static inline v128_t add_pair(v128_t acc, v128_t p0, v128_t r0, v128_t p1, v128_t r1) {
  return wasm_f32x4_add(acc, madd(p0, r0, wasm_f32x4_mul(p1, r1)));
}

/* out[d0..D) = out·alpha + Σ_j p_j v_j, four outputs per pass: what the sixteen-wide passes of accumulate_values leave. */
static void accumulate_values_tail(float *out, float alpha, const float *p, const float *v, int stride, int n, int d0, int D) {
  int d = d0;
  for (; d + 4 <= D; d += 4) {
    v128_t acc = wasm_f32x4_mul(wasm_v128_load(out + d), wasm_f32x4_splat(alpha));
    for (int j = 0; j < n; j++) acc = madd(wasm_f32x4_splat(p[j]), wasm_v128_load(v + (size_t)j * stride + d), acc);
    wasm_v128_store(out + d, acc);
  }
  for (; d < D; d++) {
    float acc = out[d] * alpha;
    for (int j = 0; j < n; j++) acc += p[j] * v[(size_t)j * stride + d];
    out[d] = acc;
  }
}

/*
 * oa[0..D) = oa·alpha_a + Σ_j pa_j v_j over n value rows, and (`pair`) ob likewise with the
 * second head's weights from the same rows, each row vector loaded once for both. Sixteen
 * outputs per pass: four independent sums per head, where one alone waits on each add's
 * latency (2× slower at D = 64), fed two rows per step (a decode step's attention 6 % faster
 * than one row).
 */
static inline __attribute__((always_inline)) void accumulate_values(float *oa, float *ob, const int pair, float alpha_a, float alpha_b,
                                                                     const float *pa, const float *pb, const float *v, int stride, int n, int D) {
  int d = 0;
  for (; d + 16 <= D; d += 16) {
    v128_t a[4], b[4];
    for (int l = 0; l < 4; l++) {
      a[l] = wasm_f32x4_mul(wasm_v128_load(oa + d + 4 * l), wasm_f32x4_splat(alpha_a));
      b[l] = pair ? wasm_f32x4_mul(wasm_v128_load(ob + d + 4 * l), wasm_f32x4_splat(alpha_b)) : a[l];
    }
    const float *row = v + d;
    int j = 0;
    for (; j + 2 <= n; j += 2, row += 2 * (size_t)stride) {
      const float *next = row + stride;
      v128_t pa0 = wasm_v128_load32_splat(pa + j), pa1 = wasm_v128_load32_splat(pa + j + 1);
      v128_t pb0 = pair ? wasm_v128_load32_splat(pb + j) : pa0, pb1 = pair ? wasm_v128_load32_splat(pb + j + 1) : pa1;
      for (int l = 0; l < 4; l++) {
        v128_t r = wasm_v128_load(row + 4 * l), s = wasm_v128_load(next + 4 * l);
        a[l] = add_pair(a[l], pa0, r, pa1, s);
        if (pair) b[l] = add_pair(b[l], pb0, r, pb1, s);
      }
    }
    if (j < n) {
      v128_t pa0 = wasm_v128_load32_splat(pa + j), pb0 = pair ? wasm_v128_load32_splat(pb + j) : pa0;
      for (int l = 0; l < 4; l++) {
        v128_t r = wasm_v128_load(row + 4 * l);
        a[l] = madd(pa0, r, a[l]);
        if (pair) b[l] = madd(pb0, r, b[l]);
      }
    }
    for (int l = 0; l < 4; l++) {
      wasm_v128_store(oa + d + 4 * l, a[l]);
      if (pair) wasm_v128_store(ob + d + 4 * l, b[l]);
    }
  }
  if (d < D) {
    accumulate_values_tail(oa, alpha_a, pa, v, stride, n, d, D);
    if (pair) accumulate_values_tail(ob, alpha_b, pb, v, stride, n, d, D);
  }
}

/* Scratch per thread: per query head, the running output [D] and a chunk of scores; then where touch_bytes' sum goes. */
static size_t unit_scratch_bytes(int Hq, int D) { return (size_t)Hq * (D + KEY_CHUNK) * 4 + 4; }

/*
 * Reads one byte of every 64-byte line of the next chunk's key and value rows, all at once,
 * before the chunk needs them: their misses overlap, where the chunk's own loads, spread
 * over its arithmetic, wait on memory one stretch at a time (wasm has no prefetch
 * instruction). Returns the bytes' sum, which the caller stores so that the loads stay.
 * A decode step's attention over 4096 keys (14 heads, 2 KV heads) coming from memory: 550 →
 * 485 µs a layer on one thread, 285 → 260 on two; the 0.5B q4 decode at 4096, one thread,
 * 27 → 24.7 ms. From cache it costs 8 %. The same loads spread over the chunk's heads gained
 * nothing, nor did one load per 128 bytes. Only a single query (a decode step) touches: it
 * reads the cache once, from memory; the queries of a prefill chunk read it from cache.
 */
static uint32_t touch_bytes(const uint8_t *a, const uint8_t *b, size_t bytes) {
  uint32_t sum = 0;
  for (size_t o = 0; o < bytes; o += 64) sum += a[o] + b[o];
  return sum;
}

/*
 * Unit `unit`'s query (returned) and its run of keys [*first, *last): with several splits, one
 * of `splits` equal runs of the keys the query sees (flash-decoding: a decode step has one
 * query, too few units for the pool), their inner bounds on multiples of `align` rows.
 */
static int unit_keys(const attention_ctx *c, int unit, int align, int *first, int *last) {
  int split = unit % c->splits, i = unit / c->splits;
  key_range(c, i, first, last);
  if (c->splits > 1 && *last > *first) {
    long span = *last - *first;
    int from = *first + (int)(span * split / c->splits), to = *first + (int)(span * (split + 1) / c->splits);
    if (split > 0) from -= from % align;
    if (split + 1 < c->splits) to -= to % align;
    *first = from > *first ? from : *first;
    *last = to;
  }
  return i;
}

/*
 * A unit's result from each head's unnormalized output, running max and sum of exponentials:
 * with one split y, otherwise the unit's [max, sum, output[D]] per head for combine_splits.
 */
static void unit_output(const attention_ctx *c, int unit, int i, float *const *outs, const float *max, const float *total) {
  const int D = c->D, Hq = c->Hq;
  for (int h = 0; h < Hq; h++) {
    if (c->splits > 1) {
      float *part = c->partials + ((size_t)unit * Hq + h) * (D + 2);
      part[0] = max[h];
      part[1] = total[h];
      memcpy(part + 2, outs[h], (size_t)D * 4);
      continue;
    }
    float *y = c->y + ((size_t)i * Hq + h) * D;
    /* A query that sees no key gets zeros. */
    float inv = total[h] > 0 ? 1.0f / total[h] : 0.0f;
    for (int d = 0; d < D; d++) y[d] = outs[h][d] * inv;
  }
}

/*
 * A unit: one query, every head, and one run of its keys (unit_keys). Within a chunk of keys
 * the KV heads go in turn, each with the query heads that share it (GQA), so the chunk's rows
 * are read from memory once, whole and in order, and from cache for the other heads. Units per
 * KV head read every other 256 bytes of the rows; reading them whole made a decode step's
 * attention over 4096 keys (14 heads, 2 KV heads) coming from memory 10 % faster on 2 threads
 * (330 → 300 µs), 5 % on 1, and left it unchanged from cache.
 */
static void attention_units(void *p, int begin, int end, int thread) {
  const attention_ctx *c = p;
  const int D = c->D, Hq = c->Hq, group = Hq / c->Hkv, stride = c->Hkv * D;
  float *scratch = omni_thread_scratch(thread, unit_scratch_bytes(Hq, D));
  float *outs[Hq];
  for (int h = 0; h < Hq; h++) outs[h] = scratch + (size_t)h * (D + KEY_CHUNK);
  for (int unit = begin; unit < end; unit++) {
    int first, last;
    const int i = unit_keys(c, unit, 1, &first, &last);
    float max[Hq], total[Hq];
    for (int h = 0; h < Hq; h++) {
      max[h] = -INFINITY;
      total[h] = 0;
      memset(outs[h], 0, (size_t)D * 4);
    }
    uint32_t touched = 0;
    for (int j0 = first; j0 < last; j0 += KEY_CHUNK) {
      int n = last - j0 < KEY_CHUNK ? last - j0 : KEY_CHUNK, next = j0 + KEY_CHUNK;
      if (c->T == 1 && next < last) {
        size_t bytes = (size_t)(last - next < KEY_CHUNK ? last - next : KEY_CHUNK) * stride * 4;
        touched += touch_bytes((const uint8_t *)(c->k + (size_t)next * stride), (const uint8_t *)(c->v + (size_t)next * stride), bytes);
      }
      for (int kv_head = 0; kv_head < c->Hkv; kv_head++) {
        const float *k = c->k + (size_t)j0 * stride + kv_head * D, *v = c->v + (size_t)j0 * stride + kv_head * D;
        const int group_end = (kv_head + 1) * group;
        /* Query heads two at a time: each key and value vector loaded serves both. */
        for (int h = kv_head * group; h < group_end; h += 2) {
          float *oa = outs[h], *sa = oa + D;
          const float *qa = c->q + ((size_t)i * Hq + h) * D;
          if (h + 1 < group_end) {
            float *ob = outs[h + 1], *sb = ob + D;
            scores_of(qa, qa + D, 1, k, stride, n, D, c->scale, sa, sb);
            float alpha_a = softmax_chunk(sa, n, &max[h], &total[h]);
            float alpha_b = softmax_chunk(sb, n, &max[h + 1], &total[h + 1]);
            accumulate_values(oa, ob, 1, alpha_a, alpha_b, sa, sb, v, stride, n, D);
          } else {
            scores_of(qa, qa, 0, k, stride, n, D, c->scale, sa, sa);
            float alpha = softmax_chunk(sa, n, &max[h], &total[h]);
            accumulate_values(oa, oa, 0, alpha, alpha, sa, sa, v, stride, n, D);
          }
        }
      }
    }
    memcpy(scratch + (size_t)Hq * (D + KEY_CHUNK), &touched, sizeof touched);
    unit_output(c, unit, i, outs, max, total);
  }
}

/* y per query head = Σ_s e^{max_s − M}·out_s / Σ_s e^{max_s − M}·sum_s over the splits (M: their largest max). */
static void combine_splits(const attention_ctx *c) {
  const int D = c->D, Hq = c->Hq;
  for (int i = 0; i < c->T; i++) {
    const float *base = c->partials + (size_t)i * c->splits * Hq * (D + 2);
    for (int h = 0; h < Hq; h++) {
      float m = -INFINITY, total = 0;
      for (int s = 0; s < c->splits; s++) m = fmaxf(m, base[((size_t)s * Hq + h) * (D + 2)]);
      float *y = c->y + ((size_t)i * Hq + h) * D;
      memset(y, 0, (size_t)D * 4);
      for (int s = 0; s < c->splits; s++) {
        const float *part = base + ((size_t)s * Hq + h) * (D + 2);
        if (part[1] == 0) continue;
        float w = exp_f32(part[0] - m);
        total += w * part[1];
        for (int d = 0; d < D; d++) y[d] += w * part[2 + d];
      }
      float inv = total > 0 ? 1.0f / total : 0.0f;
      for (int d = 0; d < D; d++) y[d] *= inv;
    }
  }
}

/*
 * Runs `units` over c's queries: splits the keys only when there are too few queries to share
 * out, into runs of at least MIN_SPLIT_KEYS, and into a number of units the pool's threads
 * share evenly (5 units on 2 threads took as long as 6). Returns 0, or −1 when scratch memory
 * ran out.
 */
static int run_attention(attention_ctx *c, omni_task units, size_t scratch_bytes) {
  const int T = c->T, threads = omni_threads(), want = 4 * threads;
  c->splits = 1;
  if (T < want) {
    int by_units = (want + T - 1) / T, by_keys = c->kv_length / MIN_SPLIT_KEYS;
    c->splits = by_units < by_keys ? by_units : by_keys;
    while (c->splits > 1 && T * c->splits > threads && (T * c->splits) % threads != 0) c->splits--;
    if (c->splits < 1) c->splits = 1;
  }
  if (omni_reserve_thread_scratch(scratch_bytes) != 0) return -1;
  if (c->splits > 1) {
    c->partials = omni_shared_scratch(SCRATCH_ATTENTION_SPLITS, (size_t)T * c->splits * c->Hq * (c->D + 2) * 4);
    if (!c->partials) return -1;
  }
  omni_parallel_for(T * c->splits, 1, units, c);
  if (c->splits > 1) combine_splits(c);
  return 0;
}

/* Returns 0, or −1 when scratch memory ran out. */
OMNI_EXPORT int omni_attention(const float *q, const float *k, const float *v, float *y,
                               int T, int kv_length, int Hq, int Hkv, int D, float scale,
                               int mask, int query_start, int block_size, int back, int ahead,
                               const int32_t *bounds, int segments) {
  attention_ctx c = {
    .q = q, .k = k, .v = v, .y = y, .T = T, .kv_length = kv_length, .Hq = Hq, .Hkv = Hkv, .D = D,
    .scale = scale, .mask = mask, .query_start = query_start, .block_size = block_size, .back = back,
    .ahead = ahead, .bounds = bounds, .segments = segments,
  };
  return run_attention(&c, attention_units, unit_scratch_bytes(Hq, D));
}

/* ---- attention over the 8-bit KV cache (kv8_t) */

OMNI_EXPORT size_t omni_kv8_bytes(int rows, int Hkv, int D) {
  kv8_t c = kv8_at(0, rows, Hkv, D);
  return (size_t)c.rows * Hkv * (2 * (size_t)c.Dp + 8);
}

/*
 * x[0..D) → codes[0..Dp) (zero past D), x ≈ code·s; returns s = max|x| / 127: 0 for a zero
 * vector, NaN when x holds Inf or NaN, so that whatever reads it turns NaN too.
 */
static float quantize_vector(const float *x, int D, int Dp, int8_t *codes) {
  float m = 0;
  int finite = 1;
  for (int d = 0; d < D; d++) {
    float a = fabsf(x[d]);
    finite &= a < INFINITY;
    m = a > m ? a : m;
  }
  memset(codes, 0, (size_t)Dp);
  if (!finite) return NAN;
  if (m == 0) return 0;
  const float inv = 127.0f / m;
  for (int d = 0; d < D; d++) codes[d] = (int8_t)nearbyintf(x[d] * inv);
  return m / 127.0f;
}

/* Byte offsets of element d of row r, head h, in the keys and in the values. */
static inline size_t key_at(const kv8_t *c, int r, int h, int d) {
  return ((size_t)(r >> 2) * c->Hkv + h) * c->Dp * 4 + (size_t)(d >> 2) * 16 + (r & 3) * 4 + (d & 3);
}
static inline size_t value_at(const kv8_t *c, int r, int h, int d) { return ((size_t)(r >> 2) * c->Hkv + h) * c->Dp * 4 + (size_t)d * 4 + (r & 3); }

/* Rows [row, row + count) ← k, v [count, Hkv, D], quantized. */
OMNI_EXPORT void omni_kv8_write(void *cache, int rows, int Hkv, int D, const float *k, const float *v, int row, int count) {
  const kv8_t c = kv8_at(cache, rows, Hkv, D);
  int8_t codes[c.Dp];
  for (int r = row; r < row + count; r++) {
    for (int h = 0; h < Hkv; h++) {
      const size_t from = ((size_t)(r - row) * Hkv + h) * D;
      c.key_scales[(size_t)h * c.rows + r] = quantize_vector(k + from, D, c.Dp, codes);
      for (int d = 0; d < c.Dp; d++) c.keys[key_at(&c, r, h, d)] = (uint8_t)(codes[d] + 128);
      c.value_scales[(size_t)h * c.rows + r] = quantize_vector(v + from, D, c.Dp, codes);
      for (int d = 0; d < c.Dp; d++) c.values[value_at(&c, r, h, d)] = codes[d];
    }
  }
}

/* k, v [count, Hkv, D] ← rows [row, row + count), dequantized (what an eviction moves and re-rotates). */
OMNI_EXPORT void omni_kv8_read(const void *cache, int rows, int Hkv, int D, int row, int count, float *k, float *v) {
  const kv8_t c = kv8_at((void *)cache, rows, Hkv, D);
  for (int r = row; r < row + count; r++) {
    for (int h = 0; h < Hkv; h++) {
      const size_t to = ((size_t)(r - row) * Hkv + h) * D;
      const float ks = c.key_scales[(size_t)h * c.rows + r], vs = c.value_scales[(size_t)h * c.rows + r];
      for (int d = 0; d < D; d++) {
        k[to + d] = (float)(c.keys[key_at(&c, r, h, d)] - 128) * ks;
        v[to + d] = (float)c.values[value_at(&c, r, h, d)] * vs;
      }
    }
  }
}

/*
 * e^x for x ≤ 0 to ~3e-6 in 14 instructions where exp_f32x4 takes 25: its weights become 7-bit
 * codes (kv8_weights), so the 1-ulp exponential would buy nothing, and at 4 dots per key and
 * head it would cost more than the dots. Degree 5 after the reduction to |r| ≤ ln2/2 (degree 4,
 * ~5e-5, moved codes across their rounding boundaries against the oracle: errors to 1.4e-3 of
 * max|v|); below −87 it returns ~e^−87.
 */
static inline v128_t exp_coarse(v128_t x) {
  const kernel_constants *k = &omni_constants;
  x = wasm_f32x4_pmax(x, k->coarse_low);
  v128_t whole = rounded_bits(wasm_f32x4_mul(x, k->log2e)), n = rounded_float(whole);
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, k->ln2));
  v128_t p = madd(k->c5, r, k->c4);
  p = madd(p, r, k->c3);
  p = madd(p, r, k->c2);
  p = madd(p, r, k->one);
  p = madd(p, r, k->one);
  return wasm_f32x4_mul(p, wasm_i32x4_shl(wasm_i32x4_add(rounded_int(whole), k->exponent_bias), 23));
}

/*
 * Rows per chunk of the 8-bit kernel: its scores, exponentials and weight codes are taken a
 * chunk at a time, and the codes' step is the chunk's. Twice KEY_CHUNK: the next chunk's rows
 * are touched in one wave twice as large, and the per-chunk work (maxima, code steps) halves;
 * a decode step over 4096 keys from memory, 1 thread, Node 26: 205 → 182 µs (256: 187).
 */
#define KV8_CHUNK 128

/* Per query head of the 8-bit kernel, in its thread's scratch. */
typedef struct {
  float *out;     /* [Dp] running unnormalized output */
  float *scores;  /* [KV8_CHUNK] the chunk's scores, then its exponentials */
  int8_t *q8;     /* [Dp] query codes */
  int16_t *q16;   /* [Dp] the same, widened for the i16 dot */
  uint8_t *codes; /* [KV8_CHUNK] the chunk's weight codes */
  int32_t offset; /* −128·Σ query codes: takes the keys' +128 back out */
  float q_scale;  /* query scale · softmax scale */
  float top;      /* the chunk's largest score */
  float max;      /* the largest score so far */
  float total;    /* Σ e^{s − max} so far */
  float alpha;    /* the chunk's rescale of out and total, e^{old max − max} */
  float step;     /* the value of a weight code */
} kv8_head;

static size_t kv8_head_bytes(int Dp) { return (size_t)Dp * 4 + KV8_CHUNK * 4 + (size_t)Dp * 3 + KV8_CHUNK; }
/* The heads, then where touch_bytes' sum goes. */
static size_t kv8_scratch_bytes(int Hq, int Dp) { return (size_t)Hq * kv8_head_bytes(Dp) + 4; }

static kv8_head kv8_head_at(uint8_t *scratch, int h, int Dp) {
  uint8_t *at = scratch + (size_t)h * kv8_head_bytes(Dp);
  kv8_head head = { .out = (float *)at, .scores = (float *)(at + (size_t)Dp * 4) };
  head.q16 = (int16_t *)(head.scores + KV8_CHUNK);
  head.q8 = (int8_t *)(head.q16 + Dp);
  head.codes = (uint8_t *)(head.q8 + Dp);
  return head;
}

/* Lanes t of a block of rows [row, row + 4) with row + t in [lo, hi). */
static inline v128_t rows_seen(int row, int lo, int hi) {
  v128_t rows = wasm_i32x4_add(wasm_i32x4_splat(row), wasm_i32x4_make(0, 1, 2, 3));
  return wasm_v128_and(wasm_i32x4_ge(rows, wasm_i32x4_splat(lo)), wasm_i32x4_lt(rows, wasm_i32x4_splat(hi)));
}

/* 4 scores from their integer dots (the offset included), −∞ where row + t lies outside [lo, hi); returns max(top, them). */
static inline v128_t store_scores(float *s, v128_t dots, const kv8_head *h, const float *key_scales, int row, int lo, int hi, v128_t top) {
  v128_t f = wasm_f32x4_mul(wasm_f32x4_mul(wasm_f32x4_convert_i32x4(dots), wasm_f32x4_splat(h->q_scale)), wasm_v128_load(key_scales));
  if (row < lo || row + 4 > hi) f = wasm_v128_bitselect(f, wasm_f32x4_splat(-INFINITY), rows_seen(row, lo, hi));
  wasm_v128_store(s, f);
  return wasm_f32x4_pmax(top, f);
}

/*
 * Scores of the n rows from j0 (n a multiple of 4) for one query head, or two that share them
 * (`pair`): s_j = (Σ q·(k + 128) − 128·Σq)·q_scale·k_scale_j, exact integer sums, a block's 4
 * rows in the 4 lanes; each head's `top` becomes its largest. With `dots` (an engine whose
 * 8-bit dot reads the keys' bytes as unsigned) one dot per 4 elements of a block, otherwise the
 * keys widened to int16 lanes.
 */
static inline __attribute__((always_inline)) void kv8_scores(const kv8_t *c, const int Dp, int kv_head, int j0, int n, int lo, int hi,
                                                             const int dots, kv8_head *a, kv8_head *b, const int pair) {
  const size_t block_stride = (size_t)c->Hkv * Dp * 4;
  const uint8_t *blocks = c->keys + key_at(c, j0, kv_head, 0);
  const float *key_scales = c->key_scales + (size_t)kv_head * c->rows + j0;
  const int nb = n / 4;
  v128_t top_a = wasm_f32x4_splat(-INFINITY), top_b = top_a;
  int t = 0;
#if RELAXED_DOT
  if (dots) {
    /*
     * Four blocks at a time, each query splat serving all four: 8 independent accumulators for
     * a pair, as a dot waits on the one before it in its own (VNNI latency), and 14 instructions
     * per 32 dots of 4 bytes where two blocks took 16 per 16.
     */
    for (; t + 4 <= nb; t += 4) {
      const uint8_t *block = blocks + (size_t)t * block_stride;
      v128_t sa[4], sb[4];
      for (int i = 0; i < 4; i++) {
        sa[i] = wasm_i32x4_splat(a->offset);
        sb[i] = wasm_i32x4_splat(b->offset);
      }
      for (int d = 0; d < Dp; d += 4) {
        v128_t xa = wasm_v128_load32_splat(a->q8 + d), xb = pair ? wasm_v128_load32_splat(b->q8 + d) : xa;
        for (int i = 0; i < 4; i++) {
          v128_t k = wasm_v128_load(block + (size_t)i * block_stride + 4 * d);
          sa[i] = dot_bytes_add(xa, k, sa[i]);
          if (pair) sb[i] = dot_bytes_add(xb, k, sb[i]);
        }
      }
      for (int i = 0; i < 4; i++) {
        const int at = 4 * (t + i);
        top_a = store_scores(a->scores + at, sa[i], a, key_scales + at, j0 + at, lo, hi, top_a);
        if (pair) top_b = store_scores(b->scores + at, sb[i], b, key_scales + at, j0 + at, lo, hi, top_b);
      }
    }
    for (; t < nb; t++) {
      const uint8_t *block = blocks + (size_t)t * block_stride;
      v128_t sa = wasm_i32x4_splat(a->offset), sb = wasm_i32x4_splat(b->offset);
      for (int d = 0; d < Dp; d += 4) {
        v128_t k = wasm_v128_load(block + 4 * d);
        sa = dot_bytes_add(wasm_v128_load32_splat(a->q8 + d), k, sa);
        if (pair) sb = dot_bytes_add(wasm_v128_load32_splat(b->q8 + d), k, sb);
      }
      top_a = store_scores(a->scores + 4 * t, sa, a, key_scales + 4 * t, j0 + 4 * t, lo, hi, top_a);
      if (pair) top_b = store_scores(b->scores + 4 * t, sb, b, key_scales + 4 * t, j0 + 4 * t, lo, hi, top_b);
    }
  }
#else
  (void)dots; /* no byte dot in the baseline build */
#endif
  /* A 16-byte unit widens to rows 0–1 and rows 2–3, two lanes of the i16 dot per row. */
  for (; t < nb; t++) {
    const uint8_t *block = blocks + (size_t)t * block_stride;
    v128_t a01 = wasm_i32x4_splat(0), a23 = a01, b01 = a01, b23 = a01;
    for (int d = 0; d < Dp; d += 4) {
      v128_t k = wasm_v128_load(block + 4 * d);
      v128_t k01 = wasm_u16x8_extend_low_u8x16(k), k23 = wasm_u16x8_extend_high_u8x16(k);
      v128_t xa = wasm_v128_load64_splat(a->q16 + d);
      a01 = wasm_i32x4_add(a01, wasm_i32x4_dot_i16x8(k01, xa));
      a23 = wasm_i32x4_add(a23, wasm_i32x4_dot_i16x8(k23, xa));
      if (pair) {
        v128_t xb = wasm_v128_load64_splat(b->q16 + d);
        b01 = wasm_i32x4_add(b01, wasm_i32x4_dot_i16x8(k01, xb));
        b23 = wasm_i32x4_add(b23, wasm_i32x4_dot_i16x8(k23, xb));
      }
    }
    v128_t sa = lane_pair_sums(a01, a23, wasm_i32x4_splat(a->offset)), sb = lane_pair_sums(b01, b23, wasm_i32x4_splat(b->offset));
    top_a = store_scores(a->scores + 4 * t, sa, a, key_scales + 4 * t, j0 + 4 * t, lo, hi, top_a);
    if (pair) top_b = store_scores(b->scores + 4 * t, sb, b, key_scales + 4 * t, j0 + 4 * t, lo, hi, top_b);
  }
  a->top = hmax(top_a);
  if (pair) b->top = hmax(top_b);
}

/* Codes of 4 weights: round(w · inv), as int32 lanes. */
static inline v128_t code4(const float *w, v128_t inv) { return rounded_int(rounded_bits(wasm_f32x4_mul(wasm_v128_load(w), inv))); }

/* The chunk's weights w (in h->scores) → codes round(w / step) with step = max w / 127 (0 when every w is 0). */
static void weight_codes(kv8_head *h, int n, float w_max) {
  const float *w = h->scores;
  if (!(w_max > 0)) {
    memset(h->codes, 0, (size_t)n);
    h->step = w_max == 0 ? 0 : NAN;
    return;
  }
  const v128_t inv = wasm_f32x4_splat(127.0f / w_max);
  int j = 0;
  for (; j + 16 <= n; j += 16) {
    v128_t low = wasm_u16x8_narrow_i32x4(code4(w + j, inv), code4(w + j + 4, inv));
    v128_t high = wasm_u16x8_narrow_i32x4(code4(w + j + 8, inv), code4(w + j + 12, inv));
    wasm_v128_store(h->codes + j, wasm_u8x16_narrow_i16x8(low, high));
  }
  for (; j < n; j += 4) {
    v128_t q = wasm_u16x8_narrow_i32x4(code4(w + j, inv), code4(w + j, inv));
    wasm_v128_store32_lane(h->codes + j, wasm_u8x16_narrow_i16x8(q, q), 0);
  }
  h->step = w_max / 127.0f;
}

/* s[0..4) → e^{s − shift}·scales where `seen`, else 0, in place; the exponentials add to sum, the weights' max to top. */
static inline void weigh4(float *s, v128_t shift, v128_t scales, v128_t seen, v128_t *sum, v128_t *top) {
  v128_t e = wasm_v128_and(exp_coarse(wasm_f32x4_sub(wasm_v128_load(s), shift)), seen);
  *sum = wasm_f32x4_add(*sum, e);
  v128_t w = wasm_f32x4_mul(e, scales);
  wasm_v128_store(s, w);
  *top = wasm_f32x4_pmax(*top, w);
}

/* The running max and its rescale e^{old max − max}, from the chunk's top score. */
static inline v128_t next_max(kv8_head *h) {
  const float new_max = h->top > h->max ? h->top : h->max;
  h->alpha = wasm_f32x4_extract_lane(exp_coarse(wasm_f32x4_splat(h->max - new_max)), 0);
  h->max = new_max;
  return wasm_f32x4_splat(new_max);
}

/*
 * The online softmax of a chunk's scores (as softmax_chunk) for one head or a pair, and the value
 * weights w_j = e^{s_j − max}·v_scale_j (0 outside [lo, hi)) as 7-bit codes (weight_codes). The
 * sum of exponentials stays f32. A pair's heads go through one loop, each other's latency hidden
 * behind the other's (the exponential is a chain of dependent multiply-adds).
 */
static inline __attribute__((always_inline)) void kv8_weights(const kv8_t *c, int kv_head, int j0, int n, int lo, int hi,
                                                              kv8_head *a, kv8_head *b, const int pair) {
  const v128_t shift_a = next_max(a), shift_b = pair ? next_max(b) : shift_a;
  const float *value_scales = c->value_scales + (size_t)kv_head * c->rows + j0;
  v128_t sum_a = wasm_f32x4_splat(0), top_a = sum_a, sum_b = sum_a, top_b = sum_a;
  for (int j = 0; j < n; j += 4) {
    const v128_t scales = wasm_v128_load(value_scales + j);
    /* Rows outside [lo, hi) weigh 0 (only a chunk's first or last block has any). */
    const v128_t seen = j0 + j < lo || j0 + j + 4 > hi ? rows_seen(j0 + j, lo, hi) : wasm_i32x4_splat(-1);
    weigh4(a->scores + j, shift_a, scales, seen, &sum_a, &top_a);
    if (pair) weigh4(b->scores + j, shift_b, scales, seen, &sum_b, &top_b);
  }
  a->total = a->total * a->alpha + hsum(sum_a);
  weight_codes(a, n, hmax(top_a));
  if (pair) {
    b->total = b->total * b->alpha + hsum(sum_b);
    weight_codes(b, n, hmax(top_b));
  }
}

/*
 * out = out·alpha + step·Σ_j code_j·v_j over the chunk's n rows from j0 (a multiple of 4), for
 * one head or a pair sharing the value blocks. The codes (0..127) are the dot's second operand,
 * so the relaxed build's byte dot is exact on every engine: one dot sums an element over a
 * block's 4 rows. The baseline build widens to int16 lanes, two rows per lane pair.
 */
static inline __attribute__((always_inline)) void kv8_values(const kv8_t *c, const int Dp, int kv_head, int j0, int n, kv8_head *a, kv8_head *b,
                                                             const int pair) {
  const float alpha_a = a->alpha, alpha_b = b->alpha, step_a = a->step, step_b = b->step;
  const size_t block_stride = (size_t)c->Hkv * Dp * 4;
  const int8_t *blocks = c->values + value_at(c, j0, kv_head, 0);
  for (int d = 0; d < Dp; d += 16) {
    v128_t sa[4], sb[4];
#if RELAXED_DOT
    for (int l = 0; l < 4; l++) sa[l] = sb[l] = wasm_i32x4_splat(0);
    for (int t = 0; t < n / 4; t++) {
      const int8_t *block = blocks + (size_t)t * block_stride + (size_t)d * 4;
      v128_t wa = wasm_v128_load32_splat(a->codes + 4 * t), wb = pair ? wasm_v128_load32_splat(b->codes + 4 * t) : wa;
      for (int l = 0; l < 4; l++) {
        v128_t x = wasm_v128_load(block + 16 * l);
        sa[l] = dot_bytes_add(x, wa, sa[l]);
        if (pair) sb[l] = dot_bytes_add(x, wb, sb[l]);
      }
    }
#else
    for (int l = 0; l < 4; l++) {
      v128_t a01 = wasm_i32x4_splat(0), a23 = a01, b01 = a01, b23 = a01;
      for (int t = 0; t < n / 4; t++) {
        v128_t x = wasm_v128_load(blocks + (size_t)t * block_stride + (size_t)d * 4 + 16 * l);
        v128_t x01 = wasm_i16x8_extend_low_i8x16(x), x23 = wasm_i16x8_extend_high_i8x16(x);
        v128_t wa = wasm_u16x8_extend_low_u8x16(wasm_v128_load32_splat(a->codes + 4 * t));
        a01 = wasm_i32x4_add(a01, wasm_i32x4_dot_i16x8(x01, wa));
        a23 = wasm_i32x4_add(a23, wasm_i32x4_dot_i16x8(x23, wa));
        if (pair) {
          v128_t wb = wasm_u16x8_extend_low_u8x16(wasm_v128_load32_splat(b->codes + 4 * t));
          b01 = wasm_i32x4_add(b01, wasm_i32x4_dot_i16x8(x01, wb));
          b23 = wasm_i32x4_add(b23, wasm_i32x4_dot_i16x8(x23, wb));
        }
      }
      sa[l] = lane_pair_sums(a01, a23, wasm_i32x4_splat(0));
      sb[l] = lane_pair_sums(b01, b23, wasm_i32x4_splat(0));
    }
#endif
    for (int l = 0; l < 4; l++) {
      float *oa = a->out + d + 4 * l;
      wasm_v128_store(oa, madd(wasm_f32x4_convert_i32x4(sa[l]), wasm_f32x4_splat(step_a), wasm_f32x4_mul(wasm_v128_load(oa), wasm_f32x4_splat(alpha_a))));
      if (pair) {
        float *ob = b->out + d + 4 * l;
        wasm_v128_store(ob, madd(wasm_f32x4_convert_i32x4(sb[l]), wasm_f32x4_splat(step_b), wasm_f32x4_mul(wasm_v128_load(ob), wasm_f32x4_splat(alpha_b))));
      }
    }
  }
}

/* One chunk of n rows from j0 for every head: the KV heads in turn, each with the query heads that share it, two at a time. */
static inline __attribute__((always_inline)) void kv8_chunk(const attention_ctx *c, const int dots, kv8_head *heads, int j0, int n, int first, int last) {
  const kv8_t *kv = &c->kv8;
  const int group = c->Hq / c->Hkv, Dp = kv->Dp;
  for (int kv_head = 0; kv_head < c->Hkv; kv_head++) {
    const int group_end = (kv_head + 1) * group;
    for (int h = kv_head * group; h < group_end; h += 2) {
      kv8_head *a = &heads[h];
      if (h + 1 < group_end) {
        kv8_head *b = &heads[h + 1];
        kv8_scores(kv, Dp, kv_head, j0, n, first, last, dots, a, b, 1);
        kv8_weights(kv, kv_head, j0, n, first, last, a, b, 1);
        kv8_values(kv, Dp, kv_head, j0, n, a, b, 1);
      } else {
        kv8_scores(kv, Dp, kv_head, j0, n, first, last, dots, a, a, 0);
        kv8_weights(kv, kv_head, j0, n, first, last, a, a, 0);
        kv8_values(kv, Dp, kv_head, j0, n, a, a, 0);
      }
    }
  }
}

/*
 * attention_units over the 8-bit cache. Each unit quantizes its query per head (codes and scale
 * as the cache's vectors). Chunks are the cache's rows [128c, 128c + 128), whatever the threads
 * and splits, so the weights' codes, quantized per chunk, are too; rows of a chunk outside the
 * unit's keys weigh 0.
 */
static void kv8_attention_units(void *p, int begin, int end, int thread) {
  const attention_ctx *c = p;
  const kv8_t *kv = &c->kv8;
  const int D = c->D, Dp = kv->Dp, Hq = c->Hq;
  const int dots = RELAXED_DOT && omni_unsigned_dot_bytes;
  const size_t row_bytes = (size_t)c->Hkv * Dp;
  uint8_t *scratch = omni_thread_scratch(thread, kv8_scratch_bytes(Hq, Dp));
  kv8_head heads[Hq];
  float *outs[Hq];
  for (int h = 0; h < Hq; h++) outs[h] = (heads[h] = kv8_head_at(scratch, h, Dp)).out;
  for (int unit = begin; unit < end; unit++) {
    int first, last;
    const int i = unit_keys(c, unit, KV8_CHUNK, &first, &last);
    for (int h = 0; h < Hq; h++) {
      kv8_head *head = &heads[h];
      head->max = -INFINITY;
      head->total = 0;
      memset(head->out, 0, (size_t)Dp * 4);
      head->q_scale = quantize_vector(c->q + ((size_t)i * Hq + h) * D, D, Dp, head->q8) * c->scale;
      int32_t sum = 0;
      for (int d = 0; d < Dp; d++) sum += head->q16[d] = head->q8[d];
      head->offset = -128 * sum;
    }
    uint32_t touched = 0;
    const int end_row = (last + 3) & ~3;
    for (int j0 = first - first % KV8_CHUNK; j0 < last; j0 += KV8_CHUNK) {
      int n = end_row - j0 < KV8_CHUNK ? end_row - j0 : KV8_CHUNK, next = j0 + KV8_CHUNK;
      if (c->T == 1 && next < end_row) {
        size_t bytes = (size_t)(end_row - next < KV8_CHUNK ? end_row - next : KV8_CHUNK) * row_bytes;
        touched += touch_bytes(kv->keys + (size_t)next * row_bytes, (const uint8_t *)kv->values + (size_t)next * row_bytes, bytes);
      }
      if (dots) kv8_chunk(c, 1, heads, j0, n, first, last);
      else kv8_chunk(c, 0, heads, j0, n, first, last);
    }
    memcpy(scratch + (size_t)Hq * kv8_head_bytes(Dp), &touched, sizeof touched);
    float max[Hq], total[Hq];
    for (int h = 0; h < Hq; h++) {
      max[h] = heads[h].max;
      total[h] = heads[h].total;
    }
    unit_output(c, unit, i, outs, max, total);
  }
}

/* omni_attention with keys and values from an 8-bit cache of `rows` rows (kv8_t). Returns 0, or −1 when scratch memory ran out. */
OMNI_EXPORT int omni_attention_kv8(const float *q, const void *cache, int rows, float *y,
                                   int T, int kv_length, int Hq, int Hkv, int D, float scale,
                                   int mask, int query_start, int block_size, int back, int ahead,
                                   const int32_t *bounds, int segments) {
  attention_ctx c = {
    .q = q, .kv8 = kv8_at((void *)cache, rows, Hkv, D), .y = y, .T = T, .kv_length = kv_length, .Hq = Hq, .Hkv = Hkv, .D = D,
    .scale = scale, .mask = mask, .query_start = query_start, .block_size = block_size, .back = back,
    .ahead = ahead, .bounds = bounds, .segments = segments,
  };
  return run_attention(&c, kv8_attention_units, kv8_scratch_bytes(Hq, c.kv8.Dp));
}
