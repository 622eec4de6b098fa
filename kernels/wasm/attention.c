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

typedef struct {
  const float *q, *k, *v;
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

/* Scratch per thread: per query head, the running output [D] and a chunk of scores; then where touch_rows' sum goes. */
static size_t unit_scratch_bytes(int Hq, int D) { return (size_t)Hq * (D + KEY_CHUNK) * 4 + 4; }

/*
 * Reads one byte of every 64-byte line of key and value rows [row, row + count), all at once,
 * before the chunk that needs them: their misses overlap, where the chunk's own loads, spread
 * over its arithmetic, wait on memory one stretch at a time (wasm has no prefetch
 * instruction). Returns the bytes' sum, which the caller stores so that the loads stay.
 * A decode step's attention over 4096 keys (14 heads, 2 KV heads) coming from memory: 550 →
 * 485 µs a layer on one thread, 285 → 260 on two; the 0.5B q4 decode at 4096, one thread,
 * 27 → 24.7 ms. From cache it costs 8 %. The same loads spread over the chunk's heads gained
 * nothing, nor did one load per 128 bytes. Only a single query (a decode step) touches: it
 * reads the cache once, from memory; the queries of a prefill chunk read it from cache.
 */
static uint32_t touch_rows(const float *k, const float *v, int row, int count, int stride) {
  const uint8_t *kb = (const uint8_t *)(k + (size_t)row * stride), *vb = (const uint8_t *)(v + (size_t)row * stride);
  uint32_t sum = 0;
  for (size_t o = 0; o < (size_t)count * stride * 4; o += 64) sum += kb[o] + vb[o];
  return sum;
}

/*
 * A unit: one query, every head, and one of `splits` runs of the query's visible keys
 * (flash-decoding: a decode step has one query, too few units for the pool). Within a chunk
 * of keys the KV heads go in turn, each with the query heads that share it (GQA), so the
 * chunk's rows are read from memory once, whole and in order, and from cache for the other
 * heads. Units per KV head read every other 256 bytes of the rows; reading them whole made a
 * decode step's attention over 4096 keys (14 heads, 2 KV heads) coming from memory 10 %
 * faster on 2 threads (330 → 300 µs), 5 % on 1, and left it unchanged from cache. With one
 * split the unit writes y; otherwise it leaves, per head, [running max, sum of exponentials,
 * unnormalized output[D]] for combine_splits.
 */
static void attention_units(void *p, int begin, int end, int thread) {
  const attention_ctx *c = p;
  const int D = c->D, Hq = c->Hq, group = Hq / c->Hkv, stride = c->Hkv * D;
  float *scratch = omni_thread_scratch(thread, unit_scratch_bytes(Hq, D));
  for (int unit = begin; unit < end; unit++) {
    int split = unit % c->splits;
    int i = unit / c->splits;
    int first, last;
    key_range(c, i, &first, &last);
    if (c->splits > 1 && last > first) {
      long span = last - first;
      int from = first + (int)(span * split / c->splits), to = first + (int)(span * (split + 1) / c->splits);
      first = from;
      last = to;
    }
    float max[Hq], total[Hq];
    for (int h = 0; h < Hq; h++) {
      max[h] = -INFINITY;
      total[h] = 0;
      memset(scratch + (size_t)h * (D + KEY_CHUNK), 0, (size_t)D * 4);
    }
    uint32_t touched = 0;
    for (int j0 = first; j0 < last; j0 += KEY_CHUNK) {
      int n = last - j0 < KEY_CHUNK ? last - j0 : KEY_CHUNK, next = j0 + KEY_CHUNK;
      if (c->T == 1 && next < last) touched += touch_rows(c->k, c->v, next, last - next < KEY_CHUNK ? last - next : KEY_CHUNK, stride);
      for (int kv_head = 0; kv_head < c->Hkv; kv_head++) {
        const float *k = c->k + (size_t)j0 * stride + kv_head * D, *v = c->v + (size_t)j0 * stride + kv_head * D;
        const int group_end = (kv_head + 1) * group;
        /* Query heads two at a time: each key and value vector loaded serves both. */
        for (int h = kv_head * group; h < group_end; h += 2) {
          float *oa = scratch + (size_t)h * (D + KEY_CHUNK), *sa = oa + D;
          const float *qa = c->q + ((size_t)i * Hq + h) * D;
          if (h + 1 < group_end) {
            float *ob = oa + D + KEY_CHUNK, *sb = ob + D;
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
    for (int h = 0; h < Hq; h++) {
      const float *out = scratch + (size_t)h * (D + KEY_CHUNK);
      if (c->splits > 1) {
        float *part = c->partials + ((size_t)unit * Hq + h) * (D + 2);
        part[0] = max[h];
        part[1] = total[h];
        memcpy(part + 2, out, (size_t)D * 4);
        continue;
      }
      float *y = c->y + ((size_t)i * Hq + h) * D;
      /* A query that sees no key gets zeros. */
      float inv = total[h] > 0 ? 1.0f / total[h] : 0.0f;
      for (int d = 0; d < D; d++) y[d] = out[d] * inv;
    }
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
  /*
   * Split the keys only when there are too few queries to share out, into runs of at least
   * MIN_SPLIT_KEYS, and into a number of units the pool's threads share evenly (5 units on 2
   * threads took as long as 6).
   */
  const int threads = omni_threads(), want = 4 * threads;
  c.splits = 1;
  if (T < want) {
    int by_units = (want + T - 1) / T, by_keys = kv_length / MIN_SPLIT_KEYS;
    c.splits = by_units < by_keys ? by_units : by_keys;
    while (c.splits > 1 && T * c.splits > threads && (T * c.splits) % threads != 0) c.splits--;
    if (c.splits < 1) c.splits = 1;
  }
  if (omni_reserve_thread_scratch(unit_scratch_bytes(Hq, D)) != 0) return -1;
  if (c.splits > 1) {
    c.partials = omni_shared_scratch(SCRATCH_ATTENTION_SPLITS, (size_t)T * c.splits * Hq * (D + 2) * 4);
    if (!c.partials) return -1;
  }
  omni_parallel_for(T * c.splits, 1, attention_units, &c);
  if (c.splits > 1) combine_splits(&c);
  return 0;
}
