/*
 * y = x·Wᵀ (+ bias) for every weight format, and the plain f32 matmul.
 * M == 1 (decode) runs a GEMV that streams the weights once (f32 a row at a time, f16 four
 * rows, q8/q4 their 4-row blocks), dequantizing in registers (f32 is bound by memory
 * bandwidth, q8/q4 by their integer dot products); rows are split across the pool. M > 1
 * packs blocks of W, dequantized to f32, into [k][8] panels that stay in cache while a 4×8
 * register tile runs over every row block of x.
 */
#include "omni.h"
#include <string.h>

/* ------------------------------------------------------------------ q8/q4 row blocks */

/*
 * q8/q4 weights live in the heap as blocks of 4 rows (the last one padded with zero-scale
 * rows), each block a run of groups of 32 columns:
 * - q8, 128 bytes per group: 8 chunks of 16 bytes; chunk j holds columns 4j … 4j+3 of the
 *   block's rows as [r0 c … c+3, r1 c … c+3, r2 …, r3 …], each byte w + 128 (unsigned): four
 *   bytes of a row make one lane of relaxed SIMD's 8-bit dot, whose second operand they are,
 *   and which a VNNI engine reads as unsigned (see omni_set_unsigned_dot_bytes); the int16
 *   kernels widen them as unsigned. Either way the sums take 128·Σx back out once per group.
 * - q4, 64 bytes per group: 4 chunks of 8 u16 lanes in that row/column-parity order (lane l:
 *   row l/2, parity l%2); bits 4m..4m+3 of a lane of chunk j hold column 8j + 2m + parity.
 * - scales: each group's 4 rows' scales (f32 or f16) side by side.
 * The GEMV then streams one run of bytes and sums each row in its own lane (see
 * q8_block_group), where row-major rows of a few hundred bytes each were four short streams
 * and a horizontal sum per row. Blocks go in pairs, their groups interleaved, each pair of
 * groups followed by its scales: [block 2p group g][block 2p+1 group g][2p's scales][2p+1's
 * scales], then group g+1 …; an odd last block alone, [group g][scales] …. So a GEMV taking
 * two blocks at once (x loaded once for 8 rows) reads one sequential stream: the two blocks as
 * two streams 1.8 KB apart measured 2.4× slower from memory, and the scales as a stream of
 * their own 1.2× slower (a 4864×896 q8 GEMV on one thread, Node 26: 192 → 157 µs without it).
 */
#define BLOCK_ROWS 4
static inline int block_count(int rows) { return (rows + BLOCK_ROWS - 1) / BLOCK_ROWS; }

/* Groups from one of block b's groups to its next: 2 in a pair, 1 for an odd last block. */
static inline int group_step(int blocks, int b) { return (b | 1) < blocks ? 2 : 1; }

/* Bytes of one block's group of data, of its 4 scales, and of both. */
static inline int group_data_bytes(int format) { return format == FORMAT_Q4 ? 64 : 128; }
static inline int group_scale_bytes(int scale_f16) { return BLOCK_ROWS * (scale_f16 ? 2 : 4); }
static inline size_t group_record_bytes(int format, int scale_f16) { return (size_t)group_data_bytes(format) + group_scale_bytes(scale_f16); }

/* Where block b's group g lies: its data, and its 4 scales, in bytes from the weight's start. */
typedef struct {
  size_t data, scales;
} group_place;

static inline group_place group_at(int format, int scale_f16, int blocks, int groups, int b, int g) {
  const int step = group_step(blocks, b), odd = b & 1, data = group_data_bytes(format);
  const size_t first = ((size_t)(b & ~1) * groups + (size_t)g * step) * group_record_bytes(format, scale_f16);
  return (group_place){ first + (size_t)odd * data, first + (size_t)step * data + (size_t)odd * group_scale_bytes(scale_f16) };
}

/* One group of a block (its 4 rows at rows[], row_bytes apart) in the layout above, at out. */
static void pack_group(const uint8_t *rows, size_t row_bytes, int q4, int g, uint8_t *out) {
  if (q4) {
    for (int j = 0; j < 4; j++) {
      for (int l = 0; l < 8; l++) {
        const uint8_t *row = rows + (l / 2) * row_bytes + (size_t)g * 16;
        unsigned lane = 0;
        for (int m = 0; m < 4; m++) {
          int col = 8 * j + 2 * m + (l & 1);
          lane |= (unsigned)((row[col / 2] >> ((col & 1) * 4)) & 15) << (4 * m);
        }
        out[16 * j + 2 * l] = (uint8_t)lane;
        out[16 * j + 2 * l + 1] = (uint8_t)(lane >> 8);
      }
    }
  } else {
    for (int j = 0; j < 8; j++) {
      for (int l = 0; l < 16; l++) out[16 * j + l] = rows[(l / 4) * row_bytes + (size_t)g * 32 + 4 * j + (l & 3)] ^ 0x80;
    }
  }
}

/*
 * Row-major q8/q4 data of block_count(rows)·4 rows (the padding rows zero) at weight + the
 * scales' size, and their row-major scales (quant.ts) at scales → the layout above, from
 * weight on. One pass over the pairs in order, each pair's rows copied aside first: a pair's
 * place ends before the next pair's rows begin, so it runs in place, on the calling thread.
 * Returns 0, or −1 when scratch memory ran out.
 */
OMNI_EXPORT int omni_block_quantized(uint8_t *weight, const uint8_t *scales, int rows, int cols, int format, int scale_f16) {
  const int blocks = block_count(rows), groups = padded_cols(cols) / QUANT_GROUP, q4 = format == FORMAT_Q4;
  const int scale_bytes = group_scale_bytes(scale_f16) / BLOCK_ROWS;
  const size_t row_bytes = (size_t)groups * (q4 ? 16 : 32), row_scale_bytes = (size_t)groups * scale_bytes;
  const uint8_t *data = weight + (size_t)blocks * BLOCK_ROWS * row_scale_bytes;
  uint8_t *aside = omni_thread_scratch(0, 2 * BLOCK_ROWS * (row_bytes + row_scale_bytes));
  if (!aside) return -1;
  uint8_t *aside_scales = aside + 2 * BLOCK_ROWS * row_bytes;
  for (int first = 0; first < blocks; first += 2) {
    const int count = first + 1 < blocks ? 2 : 1;
    memcpy(aside, data + (size_t)first * BLOCK_ROWS * row_bytes, count * BLOCK_ROWS * row_bytes);
    memcpy(aside_scales, scales + (size_t)first * BLOCK_ROWS * row_scale_bytes, count * BLOCK_ROWS * row_scale_bytes);
    for (int b = first; b < first + count; b++) {
      const uint8_t *block_rows = aside + (size_t)(b - first) * BLOCK_ROWS * row_bytes;
      const uint8_t *row_scales = aside_scales + (size_t)(b - first) * BLOCK_ROWS * row_scale_bytes;
      for (int g = 0; g < groups; g++) {
        group_place at = group_at(format, scale_f16, blocks, groups, b, g);
        pack_group(block_rows, row_bytes, q4, g, weight + at.data);
        for (int r = 0; r < BLOCK_ROWS; r++) {
          memcpy(weight + at.scales + (size_t)r * scale_bytes, row_scales + (size_t)r * row_scale_bytes + (size_t)g * scale_bytes, scale_bytes);
        }
      }
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ dequantization */

/* Row `row`, elements [k0, k0 + count) of w as f32. */
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
      /* One element at a time out of the row's block: only embedding lookups come here, a row per token. */
      const int groups = padded_cols(w->cols) / QUANT_GROUP, blocks = block_count(w->rows);
      const int r = row % BLOCK_ROWS;
      for (int k = 0; k < count; k++) {
        int col = k0 + k, c = col % QUANT_GROUP;
        group_place at = group_at(w->format, w->scale_f16, blocks, groups, row / BLOCK_ROWS, col / QUANT_GROUP);
        const uint8_t *group = (const uint8_t *)w->data + at.data;
        int q;
        if (w->format == FORMAT_Q8) {
          q = group[(c / 4) * 16 + 4 * r + (c & 3)] - 128;
        } else {
          const uint8_t *lane = group + (c / 8) * 16 + 2 * (2 * r + (c & 1));
          int m = (c % 8) / 2;
          q = ((lane[m / 2] >> ((m & 1) * 4)) & 15) - 8;
        }
        out[k] = (float)q * group_scale((const uint8_t *)w->data + at.scales, w->scale_f16, r);
      }
    }
  }
}

/* ------------------------------------------------------------------ GEMV (M == 1) */

typedef struct {
  const float *x;       /* [K] */
  const int16_t *xq;    /* q8/q4: per group `parts` × 32 int16 (quantize_activations) */
  const float *xscale;  /* q8/q4: one scale per group */
  const int32_t *xoffset; /* q8/q4: per group and part −z·Σq, z the weights' stored zero (q4 8, q8 128) */
  const int8_t *xbytes; /* relaxed SIMD, one part: x's bytes per group (split_activation_bytes, int8_activation_bytes) */
  int parts;            /* 1 or 2 int16 parts of x (the activation mode) */
  int bytes;            /* how the kernel reads x: X_LANES (xq), or with relaxed SIMD X_SPLIT, X_INT8 or X_INT8_HIGH_IN_PLACE (xbytes) */
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
      a0 = madd(wasm_v128_load(x + k), wasm_v128_load(w + k), a0);
      a1 = madd(wasm_v128_load(x + k + 4), wasm_v128_load(w + k + 4), a1);
      a2 = madd(wasm_v128_load(x + k + 8), wasm_v128_load(w + k + 8), a2);
      a3 = madd(wasm_v128_load(x + k + 12), wasm_v128_load(w + k + 12), a3);
    }
    for (; k + 4 <= K; k += 4) a0 = madd(wasm_v128_load(x + k), wasm_v128_load(w + k), a0);
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
  v128_t bits = wasm_v128_and(wasm_i32x4_shr(top, 3), omni_constants.half_bits);
  return wasm_f32x4_mul(bits, omni_constants.half_rebias);
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
  /* Rows left over sum in the order the 4-row loop does, so a row's result does not depend on where a chunk starts. */
  for (; n < end; n++) {
    const uint16_t *w0 = (const uint16_t *)c->w.data + (size_t)n * K;
    v128_t a0 = wasm_f32x4_splat(0);
    int k = 0;
    for (; k + 8 <= K; k += 8) {
      v128_t h0 = wasm_v128_load(w0 + k);
      a0 = wasm_f32x4_add(a0, wasm_f32x4_add(wasm_f32x4_mul(wasm_v128_load(x + k), f16_lo(h0)), wasm_f32x4_mul(wasm_v128_load(x + k + 4), f16_hi(h0))));
    }
    float tail = 0;
    for (; k < K; k++) tail += x[k] * f16_to_f32(w0[k]);
    gemv_store1(c, n, hsum(a0) + tail);
  }
}

/*
 * Quantized GEMV on 4-row blocks (the layout omni_block_quantized makes, described there)
 * with integer dot products: a dot multiplies a few columns of each of the block's 4 rows
 * (q4 with int16 lanes: two, by the pair x[c], x[c+1] splat to all lanes), so each row's
 * sum builds up in its own lane (q8 with int16 lanes: in two) and a group ends with one
 * vector multiply by the 4 rows' scales. Each group kernel takes one block or, with `pair` (a constant where inlined), the
 * two blocks of a pair (w, and w + the group's bytes), each x splat feeding both. Against one
 * block at a time, 4864×896 from cache (Node 26 and 20, 1 / 2 threads): q4 with 8-bit x
 * (relaxed SIMD) 11 / 9 % faster, with 15-bit x in bytes (relaxed) 25 / 26 %, with int16
 * lanes (SIMD128) 2 / 5 %; q8 16–20 / 15–29 %.
 * The loops over a group's chunks are kept rolled: unrolled, LLVM hoists every load
 * to the top and V8's register allocator spills them (q4 measured 1.3× slower on 4864×896).
 */
typedef struct {
  v128_t first, second;
} sum_pair;

/*
 * q8: a chunk's bytes (w + 128) widen to int16 lanes of rows 0–1 and of rows 2–3, each row's 4
 * columns in two lanes of the dot against x[c … c+3]; a group ends summing the lane pairs, and
 * its sums start at offset = −128·Σq (lane_pair_sums). |sum| < 2^31: a lane holds 8 products of at most 255·32767.
 */
static inline __attribute__((always_inline)) sum_pair q8_block_group(const uint8_t *w, const int16_t *x, int32_t offset, const int pair) {
  v128_t a = wasm_i32x4_splat(0), b = a, c = a, d = a;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 8; j++) {
    v128_t xj = wasm_v128_load64_splat(x + 4 * j);
    a = wasm_i32x4_add(a, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w + 16 * j), xj));
    b = wasm_i32x4_add(b, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w + 16 * j + 8), xj));
    if (pair) {
      c = wasm_i32x4_add(c, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w + 128 + 16 * j), xj));
      d = wasm_i32x4_add(d, wasm_i32x4_dot_i16x8(wasm_u16x8_load8x8(w + 128 + 16 * j + 8), xj));
    }
  }
  const v128_t o = wasm_i32x4_splat(offset);
  return (sum_pair){ lane_pair_sums(a, b, o), lane_pair_sums(c, d, o) };
}

/*
 * q4: a lane's nibbles masked in place (& 0xF, & 0xF0, & 0xF00, >> 12) are int16 without
 * any widening; the middle two carry factors 16 and 256, taken out once per group by
 * shifts that are exact (their sums are multiples of 16 and 256). |sum| < 2^31: the ×256
 * sum holds 8 products per lane of at most 15·256·32768.
 */
static inline __attribute__((always_inline)) sum_pair q4_block_group(const uint8_t *w, const int16_t *x, int32_t offset, const int pair) {
  const v128_t m0 = wasm_i16x8_const_splat(0x000f), m1 = wasm_i16x8_const_splat(0x00f0), m2 = wasm_i16x8_const_splat(0x0f00);
  v128_t s1 = wasm_i32x4_splat(offset), t1 = s1, s16 = wasm_i32x4_splat(0), s256 = s16, t16 = s16, t256 = s16;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 4; j++) {
    const int16_t *xj = x + 8 * j;
    v128_t x0 = wasm_v128_load32_splat(xj), x1 = wasm_v128_load32_splat(xj + 2);
    v128_t x2 = wasm_v128_load32_splat(xj + 4), x3 = wasm_v128_load32_splat(xj + 6);
    v128_t v = wasm_v128_load(w + 16 * j);
    s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m0), x0));
    s16 = wasm_i32x4_add(s16, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m1), x1));
    s256 = wasm_i32x4_add(s256, wasm_i32x4_dot_i16x8(wasm_v128_and(v, m2), x2));
    s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(wasm_u16x8_shr(v, 12), x3));
    if (pair) {
      v128_t u = wasm_v128_load(w + 64 + 16 * j);
      t1 = wasm_i32x4_add(t1, wasm_i32x4_dot_i16x8(wasm_v128_and(u, m0), x0));
      t16 = wasm_i32x4_add(t16, wasm_i32x4_dot_i16x8(wasm_v128_and(u, m1), x1));
      t256 = wasm_i32x4_add(t256, wasm_i32x4_dot_i16x8(wasm_v128_and(u, m2), x2));
      t1 = wasm_i32x4_add(t1, wasm_i32x4_dot_i16x8(wasm_u16x8_shr(u, 12), x3));
    }
  }
  return (sum_pair){ wasm_i32x4_add(wasm_i32x4_add(s1, wasm_i32x4_shr(s16, 4)), wasm_i32x4_shr(s256, 8)),
                     wasm_i32x4_add(wasm_i32x4_add(t1, wasm_i32x4_shr(t16, 4)), wasm_i32x4_shr(t256, 8)) };
}

#ifdef __wasm_relaxed_simd__
/*
 * With relaxed SIMD, i32x4.relaxed_dot_i8x16_i7x16_add_s multiplies 16 bytes at once (x86:
 * VNNI, or pmaddubsw + pmaddwd), twice the i16 dot, and q4 nibbles need no int16 lanes. Its
 * second operand must stay in 0..127 for the result to be the same on every engine, and the
 * nibbles (0..15) are that operand. The 15-bit activations (the int16 mode) go in as two
 * bytes, q = 128·hi + lo with hi in −128..127 and lo in 0..127, so the integer sums, and
 * every output, are exactly the baseline build's. In a lane of 4 bytes (one row) a chunk's
 * low nibbles are columns 8j + 0, 4, 1, 5 and its high nibbles 8j + 2, 6, 3, 7 (the block
 * layout above): split_activation_bytes stores x's bytes in that order, per chunk
 * [hi 0 4 1 5][lo 0 4 1 5][hi 2 6 3 7][lo 2 6 3 7], each a 4-byte splat for the dot.
 */
static inline v128_t low_nibbles(v128_t v) { return wasm_v128_and(v, omni_constants.low_nibble_bytes); }
static inline v128_t high_nibbles(v128_t v) { return wasm_v128_and(wasm_u16x8_shr(v, 4), omni_constants.low_nibble_bytes); }

static inline __attribute__((always_inline)) sum_pair q4_block_group_bytes(const uint8_t *w, const int8_t *x, int32_t offset, const int pair) {
  /* Separate chains for the hi and lo bytes, as a dot waits on the one before it in its accumulator (VNNI latency). */
  v128_t hi0 = wasm_i32x4_splat(0), hi1 = hi0, lo0 = wasm_i32x4_splat(offset), lo1 = lo0;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 4; j++) {
    const int8_t *xj = x + 16 * j;
    v128_t xh0 = wasm_v128_load32_splat(xj), xl0 = wasm_v128_load32_splat(xj + 4);
    v128_t xh1 = wasm_v128_load32_splat(xj + 8), xl1 = wasm_v128_load32_splat(xj + 12);
    v128_t v = wasm_v128_load(w + 16 * j), first = low_nibbles(v), second = high_nibbles(v);
    hi0 = dot_bytes_add(xh0, first, dot_bytes_add(xh1, second, hi0));
    lo0 = dot_bytes_add(xl0, first, dot_bytes_add(xl1, second, lo0));
    if (pair) {
      v128_t u = wasm_v128_load(w + 64 + 16 * j), ufirst = low_nibbles(u), usecond = high_nibbles(u);
      hi1 = dot_bytes_add(xh0, ufirst, dot_bytes_add(xh1, usecond, hi1));
      lo1 = dot_bytes_add(xl0, ufirst, dot_bytes_add(xl1, usecond, lo1));
    }
  }
  return (sum_pair){ wasm_i32x4_add(wasm_i32x4_shl(hi0, 7), lo0), wasm_i32x4_add(wasm_i32x4_shl(hi1, 7), lo1) };
}

/*
 * 8-bit activations (the int8 mode) are one byte each, per chunk [0 4 1 5][2 6 3 7]: half the
 * dots of the split form. With `in_place` (a constant where inlined), the high nibbles go into
 * the dot as they lie in their bytes, v & 0xF0 = 16·nibble, and their sum is shifted back down
 * once per group (exact: it is a multiple of 16; |sum| ≤ 16·240·127). That takes bytes up to
 * 240 as the second operand, whose result the spec leaves to the engine above 127: see
 * omni_set_unsigned_dot_bytes for where it is used.
 */
static inline __attribute__((always_inline)) sum_pair q4_block_group_int8(const uint8_t *w, const int8_t *x, int32_t offset, const int pair,
                                                                         const int in_place) {
  const v128_t high = wasm_v128_not(omni_constants.low_nibble_bytes);
  v128_t a0 = wasm_i32x4_splat(offset), b0 = a0, a1 = wasm_i32x4_splat(0), b1 = a1;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 4; j++) {
    v128_t xl = wasm_v128_load32_splat(x + 8 * j), xh = wasm_v128_load32_splat(x + 8 * j + 4);
    v128_t v = wasm_v128_load(w + 16 * j);
    a0 = dot_bytes_add(xl, low_nibbles(v), a0);
    a1 = dot_bytes_add(xh, in_place ? wasm_v128_and(v, high) : high_nibbles(v), a1);
    if (pair) {
      v128_t u = wasm_v128_load(w + 64 + 16 * j);
      b0 = dot_bytes_add(xl, low_nibbles(u), b0);
      b1 = dot_bytes_add(xh, in_place ? wasm_v128_and(u, high) : high_nibbles(u), b1);
    }
  }
  if (in_place) {
    a1 = wasm_i32x4_shr(a1, 4);
    b1 = wasm_i32x4_shr(b1, 4);
  }
  return (sum_pair){ wasm_i32x4_add(a0, a1), wasm_i32x4_add(b0, b1) };
}

/*
 * q8 against x's bytes: a chunk's 16 bytes (w + 128, the layout above) are the second operand
 * as they lie, one row's 4 columns a lane, against x[c … c+3]: the int16 mode's two bytes
 * [hi c … c+3][lo c … c+3] (two dots a chunk, a third of the int16 kernel's instructions), or the
 * int8 mode's one. Bytes above 127 make this the engine's choice: it runs only where the engine
 * reads them as unsigned (omni_set_unsigned_dot_bytes), and the sums are then the int16
 * kernel's to the bit. Sums start at offset = −128·Σq; the int8 form alternates two chains.
 */
static inline __attribute__((always_inline)) sum_pair q8_block_group_bytes(const uint8_t *w, const int8_t *x, int32_t offset, const int pair) {
  v128_t hi0 = wasm_i32x4_splat(0), hi1 = hi0, lo0 = wasm_i32x4_splat(offset), lo1 = lo0;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 8; j++) {
    v128_t xh = wasm_v128_load32_splat(x + 8 * j), xl = wasm_v128_load32_splat(x + 8 * j + 4);
    v128_t v = wasm_v128_load(w + 16 * j);
    hi0 = dot_bytes_add(xh, v, hi0);
    lo0 = dot_bytes_add(xl, v, lo0);
    if (pair) {
      v128_t u = wasm_v128_load(w + 128 + 16 * j);
      hi1 = dot_bytes_add(xh, u, hi1);
      lo1 = dot_bytes_add(xl, u, lo1);
    }
  }
  return (sum_pair){ wasm_i32x4_add(wasm_i32x4_shl(hi0, 7), lo0), wasm_i32x4_add(wasm_i32x4_shl(hi1, 7), lo1) };
}

static inline __attribute__((always_inline)) sum_pair q8_block_group_int8(const uint8_t *w, const int8_t *x, int32_t offset, const int pair) {
  v128_t a0 = wasm_i32x4_splat(offset), b0 = a0, a1 = wasm_i32x4_splat(0), b1 = a1;
#pragma clang loop unroll(disable)
  for (int j = 0; j < 8; j += 2) {
    v128_t x0 = wasm_v128_load32_splat(x + 4 * j), x1 = wasm_v128_load32_splat(x + 4 * j + 4);
    a0 = dot_bytes_add(x0, wasm_v128_load(w + 16 * j), a0);
    a1 = dot_bytes_add(x1, wasm_v128_load(w + 16 * j + 16), a1);
    if (pair) {
      b0 = dot_bytes_add(x0, wasm_v128_load(w + 128 + 16 * j), b0);
      b1 = dot_bytes_add(x1, wasm_v128_load(w + 128 + 16 * j + 16), b1);
    }
  }
  return (sum_pair){ wasm_i32x4_add(a0, a1), wasm_i32x4_add(b0, b1) };
}

/* 8-bit activations (int16 lanes, groups × 32, |q| ≤ 127) → bytes in the order of the weights' chunks (q4: see above; q8: as they are), two chunks per pass. */
static void int8_activation_bytes(const int16_t *xq, int groups, const int q4, int8_t *bytes) {
  for (int c = 0; c < groups * QUANT_GROUP / 16; c++) {
    v128_t b = wasm_i8x16_narrow_i16x8(wasm_v128_load(xq + 16 * c), wasm_v128_load(xq + 16 * c + 8));
    wasm_v128_store(bytes + 16 * c, q4 ? wasm_i8x16_shuffle(b, b, 0, 4, 1, 5, 2, 6, 3, 7, 8, 12, 9, 13, 10, 14, 11, 15) : b);
  }
}

/* One part of 15-bit activations (int16 lanes, groups × 32) → hi and lo bytes in the order of the weights' chunks (q4: see above; q8: [hi c … c+3][lo c … c+3]). */
static void split_activation_bytes(const int16_t *xq, int groups, const int q4, int8_t *bytes) {
  for (int c = 0; c < groups * QUANT_GROUP / 8; c++) {
    v128_t q = wasm_v128_load(xq + 8 * c);
    v128_t hl = wasm_i8x16_narrow_i16x8(wasm_i16x8_shr(q, 7), wasm_v128_and(q, wasm_i16x8_const_splat(127)));
    wasm_v128_store(bytes + 16 * c, q4 ? wasm_i8x16_shuffle(hl, hl, 0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15)
                                       : wasm_i8x16_shuffle(hl, hl, 0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15));
  }
}
#endif

/* How the q8/q4 GEMV reads x: int16 lanes, or (relaxed SIMD) 15-bit values split into two bytes, or 8-bit values (q4: with the weights' high nibbles shifted down, or in place). */
enum { X_LANES = 0, X_SPLIT = 1, X_INT8 = 2, X_INT8_HIGH_IN_PLACE = 3 };

/*
 * Part p of x against group g of one block (at w) or of a pair, as f32 row sums; q4 sums
 * start at offset = −8·Σq, which takes its nibbles' +8 back out.
 */
static inline __attribute__((always_inline)) sum_pair block_group(const gemv_ctx *c, const int q4, const int parts, const int bytes,
                                                                  const int pair, const uint8_t *w, int g, int p) {
  sum_pair sums;
#if RELAXED_DOT
  if (bytes == X_SPLIT) {
    const int8_t *x = c->xbytes + (size_t)g * 64;
    sums = q4 ? q4_block_group_bytes(w, x, c->xoffset[g], pair) : q8_block_group_bytes(w, x, c->xoffset[g], pair);
  } else if (bytes == X_INT8 || bytes == X_INT8_HIGH_IN_PLACE) {
    const int8_t *x = c->xbytes + (size_t)g * 32;
    sums = q4 ? q4_block_group_int8(w, x, c->xoffset[g], pair, bytes == X_INT8_HIGH_IN_PLACE) : q8_block_group_int8(w, x, c->xoffset[g], pair);
  } else
#endif
  {
    const int16_t *x = c->xq + ((size_t)g * parts + p) * QUANT_GROUP;
    sums = q4 ? q4_block_group(w, x, c->xoffset[g * parts + p], pair) : q8_block_group(w, x, c->xoffset[g * parts + p], pair);
  }
  (void)bytes;
  return (sum_pair){ wasm_f32x4_convert_i32x4(sums.first), wasm_f32x4_convert_i32x4(sums.second) };
}

/* The scales of a block's 4 rows for one group (f16 scales are finite: the backend refuses others). */
static inline v128_t block_scales(const int f16, const uint8_t *scales) {
  if (f16) return f16_lo(wasm_v128_load64_zero(scales));
  return wasm_v128_load(scales);
}

/* A block's 4 row sums into y (the padding rows of the last block dropped). */
static inline void gemv_store_block(const gemv_ctx *c, int b, v128_t acc) {
  int n = b * BLOCK_ROWS;
  if (n + BLOCK_ROWS <= c->w.rows) {
    gemv_store4(c, n, acc);
  } else {
    float sums[BLOCK_ROWS];
    wasm_v128_store(sums, acc);
    for (int r = 0; n + r < c->w.rows; r++) gemv_store1(c, n + r, sums[r]);
  }
}

/* Block b, or (`pair`) blocks b and b + 1, for one format, scale type, number of activation parts and form of x, each a constant where this is inlined. */
static inline __attribute__((always_inline)) void gemv_block_run(const gemv_ctx *c, int b, const int q4, const int f16, const int parts,
                                                                 const int bytes, const int pair) {
  const int groups = padded_cols(c->w.cols) / QUANT_GROUP, blocks = block_count(c->w.rows);
  const int format = q4 ? FORMAT_Q4 : FORMAT_Q8, step = pair ? 2 : 1;
  const size_t record = step * group_record_bytes(format, f16), scales = (size_t)step * group_data_bytes(format);
  const uint8_t *w = (const uint8_t *)c->w.data + group_at(format, f16, blocks, groups, b, 0).data;
  v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0;
  for (int g = 0; g < groups; g++) {
    const uint8_t *wg = w + (size_t)g * record;
    sum_pair sum = block_group(c, q4, parts, bytes, pair, wg, g, 0);
    if (parts == 2) {
      sum_pair low = block_group(c, q4, parts, bytes, pair, wg, g, 1);
      sum.first = wasm_f32x4_add(sum.first, wasm_f32x4_mul(low.first, wasm_f32x4_const_splat(0x1p-15f)));
      sum.second = wasm_f32x4_add(sum.second, wasm_f32x4_mul(low.second, wasm_f32x4_const_splat(0x1p-15f)));
    }
    const v128_t xscale = wasm_v128_load32_splat(c->xscale + g);
    acc0 = wasm_f32x4_add(acc0, wasm_f32x4_mul(sum.first, wasm_f32x4_mul(block_scales(f16, wg + scales), xscale)));
    if (pair) acc1 = wasm_f32x4_add(acc1, wasm_f32x4_mul(sum.second, wasm_f32x4_mul(block_scales(f16, wg + scales + group_scale_bytes(f16)), xscale)));
  }
  gemv_store_block(c, b, acc0);
  if (pair) gemv_store_block(c, b + 1, acc1);
}

/*
 * Pairs of blocks [first_pair, last_pair) (chunks of the pool split no pair), then maybe an
 * odd last block, for one variant of the kernel. Each variant is a task of its own: in one
 * task holding all of them, V8 compiled the int8 pair loop 25 % slower (1 thread, cached).
 */
static inline __attribute__((always_inline)) void gemv_pairs(void *p, int first_pair, int last_pair, const int q4, const int f16,
                                                              const int parts, const int bytes) {
  const gemv_ctx *c = p;
  const int blocks = block_count(c->w.rows), end = 2 * last_pair < blocks ? 2 * last_pair : blocks;
  int b = 2 * first_pair;
  for (; b + 2 <= end; b += 2) gemv_block_run(c, b, q4, f16, parts, bytes, 1);
  if (b < end) gemv_block_run(c, b, q4, f16, parts, bytes, 0);
}

#define GEMV_VARIANT(name, q4, f16, parts, bytes) \
  static void name(void *p, int first_pair, int last_pair, int thread) { \
    (void)thread; \
    gemv_pairs(p, first_pair, last_pair, q4, f16, parts, bytes); \
  }
GEMV_VARIANT(gemv_q4_f16_one_part, 1, 1, 1, X_LANES)
GEMV_VARIANT(gemv_q4_f16_two_parts, 1, 1, 2, X_LANES)
GEMV_VARIANT(gemv_q4_f32_one_part, 1, 0, 1, X_LANES)
GEMV_VARIANT(gemv_q4_f32_two_parts, 1, 0, 2, X_LANES)
GEMV_VARIANT(gemv_q8_f16_one_part, 0, 1, 1, X_LANES)
GEMV_VARIANT(gemv_q8_f16_two_parts, 0, 1, 2, X_LANES)
GEMV_VARIANT(gemv_q8_f32_one_part, 0, 0, 1, X_LANES)
GEMV_VARIANT(gemv_q8_f32_two_parts, 0, 0, 2, X_LANES)
#if RELAXED_DOT
GEMV_VARIANT(gemv_q4_f16_split, 1, 1, 1, X_SPLIT)
GEMV_VARIANT(gemv_q4_f32_split, 1, 0, 1, X_SPLIT)
GEMV_VARIANT(gemv_q4_f16_int8, 1, 1, 1, X_INT8)
GEMV_VARIANT(gemv_q4_f32_int8, 1, 0, 1, X_INT8)
GEMV_VARIANT(gemv_q4_f16_int8_in_place, 1, 1, 1, X_INT8_HIGH_IN_PLACE)
GEMV_VARIANT(gemv_q4_f32_int8_in_place, 1, 0, 1, X_INT8_HIGH_IN_PLACE)
GEMV_VARIANT(gemv_q8_f16_split, 0, 1, 1, X_SPLIT)
GEMV_VARIANT(gemv_q8_f32_split, 0, 0, 1, X_SPLIT)
GEMV_VARIANT(gemv_q8_f16_int8, 0, 1, 1, X_INT8)
GEMV_VARIANT(gemv_q8_f32_int8, 0, 0, 1, X_INT8)
#endif

/* The task for a quantized weight and form of x: one part of int16 lanes serves the int16 mode, and the int8 mode where no byte dot runs it. */
static omni_task gemv_variant(const gemv_ctx *c) {
  const int q4 = c->w.format == FORMAT_Q4, f16 = c->w.scale_f16, exact = c->parts == 2;
#if RELAXED_DOT
  if (c->bytes == X_SPLIT) return q4 ? (f16 ? gemv_q4_f16_split : gemv_q4_f32_split) : f16 ? gemv_q8_f16_split : gemv_q8_f32_split;
  if (c->bytes == X_INT8) return q4 ? (f16 ? gemv_q4_f16_int8 : gemv_q4_f32_int8) : f16 ? gemv_q8_f16_int8 : gemv_q8_f32_int8;
  if (c->bytes == X_INT8_HIGH_IN_PLACE) return f16 ? gemv_q4_f16_int8_in_place : gemv_q4_f32_int8_in_place;
#endif
  if (q4) return f16 ? (exact ? gemv_q4_f16_two_parts : gemv_q4_f16_one_part) : (exact ? gemv_q4_f32_two_parts : gemv_q4_f32_one_part);
  return f16 ? (exact ? gemv_q8_f16_two_parts : gemv_q8_f16_one_part) : (exact ? gemv_q8_f32_two_parts : gemv_q8_f32_one_part);
}

/*
 * Group k0 of x (zeros past K) into v[8]; returns the bits of its largest |x|. Non-negative
 * floats order as their bits do, Inf and NaN above every finite value, so one integer max
 * finds the largest magnitude and tells whether the group is finite (f32x4.max, which must
 * keep NaNs, is a long sequence on x86).
 */
static uint32_t load_activation_group(const float *x, int K, int k0, v128_t v[8]) {
  if (k0 + QUANT_GROUP <= K) {
    for (int i = 0; i < 8; i++) v[i] = wasm_v128_load(x + k0 + 4 * i);
  } else {
    float padded[QUANT_GROUP];
    for (int j = 0; j < QUANT_GROUP; j++) padded[j] = k0 + j < K ? x[k0 + j] : 0.0f;
    for (int i = 0; i < 8; i++) v[i] = wasm_v128_load(padded + 4 * i);
  }
  v128_t m = wasm_i32x4_splat(0);
  for (int i = 0; i < 8; i++) m = wasm_i32x4_max(m, wasm_v128_and(v[i], wasm_i32x4_const_splat(0x7fffffff)));
  m = wasm_i32x4_max(m, wasm_i32x4_shuffle(m, m, 2, 3, 0, 1));
  m = wasm_i32x4_max(m, wasm_i32x4_shuffle(m, m, 1, 0, 3, 2));
  return (uint32_t)wasm_i32x4_extract_lane(m, 0);
}

/*
 * The GEMV's activation modes (omni_set_gemv_activations):
 * - exact: each group of 32 elements of x is split into two int16 parts,
 *   x ≈ s·(hi + lo·2^-15) with s = max|x|/32767, hi = round(x/s), lo = round((x/s − hi)·2^15),
 *   |lo| ≤ 2^14. x/s is formed in f32 (within 2^-23 of exact), so the integer sums carry
 *   ~30 bits of x and the result matches an f32 dot product with the dequantized weights.
 * - int16: one 15-bit part, x̃ = s·q with s = max|x|/16383, |q| ≤ 16383: half the dot
 *   products. Each output moves from the exact one by at most
 *   (1/32766)·Σ_g max_g|x|·Σ_{i∈g}|w_i| (half a step of each group's largest |x| against
 *   that group's weights), 2^-7 of what the 8-bit weights already carry. 15 bits, not 16,
 *   so that the relaxed-SIMD build can take q as two bytes and give the same sums.
 * - int8: one 8-bit part, s = max|x|/127 (llama.cpp's q8_0 activations): at most
 *   (1/254)·Σ_g max_g|x|·Σ_{i∈g}|w_i|, about 1/18 of what 4-bit weights carry and as much as
 *   8-bit ones do (it changed greedy tokens of the golden tests with q8 weights). With
 *   relaxed SIMD a q4 GEMV then runs one byte dot per 16 weights; without, it runs as int16.
 * - auto: int8 against q4 weights, int16 against q8 weights; each adds at most 1/18 of the
 *   error its weights carry (on the golden tests, q4's decode logits moved from 4.29e-1 to
 *   4.31e-1 with the same greedy tokens).
 * Every mode gives the same sums in both builds.
 */
enum { ACTIVATIONS_EXACT = 0, ACTIVATIONS_INT16 = 1, ACTIVATIONS_INT8 = 2, ACTIVATIONS_AUTO = 3 };
static int gemv_activations = ACTIVATIONS_EXACT;

/* 0: exact (two int16 parts), 1: one 15-bit part, 2: one 8-bit part per element, 3: auto; returns 0, or −1 for an unknown mode. */
OMNI_EXPORT int omni_set_gemv_activations(int mode) {
  if (mode < ACTIVATIONS_EXACT || mode > ACTIVATIONS_AUTO) return -1;
  gemv_activations = mode;
  return 0;
}

/*
 * Whether the relaxed build's GEMV may give the 8-bit dot bytes above 127: q4 in the int8 mode
 * then takes each weight byte's high nibble in place (q4_block_group_int8), and q8 runs on byte
 * dots at all (q8_block_group_bytes, _int8). The relaxed 8-bit dot's result is the engine's choice when its
 * second operand holds a byte above 127: x86 engines read it as unsigned (V8 runs the dot as
 * AVX-VNNI's vpdpbusd, whose first source is unsigned bytes), Arm's sdot as signed, and
 * pmaddubsw saturates its pair sums. The JS side probes the engine for exact unsigned products
 * (relaxedDotReadsUnsignedBytes) and sets this; the sums are the same either way. In place, the
 * high nibbles skip a shift per 16 weights: a q4 4864×896 GEMV from cache on one thread, Node 26,
 * 87 → 75 µs, where taking 12 other instructions out of each group (constants V8 rebuilt)
 * gained nothing; the 0.5B q4 decode step 14.1 → 13.4 ms.
 * Returns 0, or −1 when asked for in a build without the relaxed dot.
 */
int omni_unsigned_dot_bytes = 0;

OMNI_EXPORT int omni_set_unsigned_dot_bytes(int on) {
  if (on && !RELAXED_DOT) return -1;
  omni_unsigned_dot_bytes = on != 0;
  return 0;
}

/*
 * x → per group `parts` × 32 int16 in element order (the first part within ±top), the group's scale s = max|x|/top, and per part
 * −zero·Σq (q4 nibbles are stored as value + 8, q8 bytes as value + 128; this takes it back out). A group holding
 * Inf or NaN gets a NaN scale, so the result is NaN as an f32 product's would be.
 * It runs on the calling thread before the pool starts; with f32x4.max, nearest and
 * trunc_sat it took about 40 ns a group (6 µs of a decode step's 896×4864 down projection),
 * about 5 ns now (8×4864 q4 GEMV, one thread: 8.0 → 2.3 µs).
 */
static void quantize_activations(const float *x, int K, int groups, int parts, float top, int zero, int16_t *xq, float *xscale, int32_t *xoffset) {
  for (int g = 0; g < groups; g++) {
    v128_t v[8];
    uint32_t bits = load_activation_group(x, K, g * QUANT_GROUP, v);
    float amax;
    memcpy(&amax, &bits, sizeof amax);
    /* A group holding Inf or NaN: a NaN scale and zero levels, as nearest-then-trunc_sat of v·0 gave. */
    int finite = bits < 0x7f800000u;
    xscale[g] = finite ? amax / top : NAN;
    v128_t inv = wasm_f32x4_splat(finite && amax > 0 ? top / amax : 0.0f);
    v128_t q[2][8];
    for (int i = 0; i < 8; i++) {
      v128_t ratio = finite ? wasm_f32x4_mul(v[i], inv) : wasm_f32x4_splat(0), whole = rounded_bits(ratio);
      q[0][i] = rounded_int(whole);
      if (parts == 2) {
        v128_t rest = wasm_f32x4_mul(wasm_f32x4_sub(ratio, rounded_float(whole)), wasm_f32x4_const_splat(32768.0f));
        q[1][i] = rounded_int(rounded_bits(rest));
      }
    }
    for (int p = 0; p < parts; p++) {
      int16_t *out = xq + ((size_t)g * parts + p) * QUANT_GROUP;
      v128_t sum = wasm_i32x4_splat(0);
      for (int i = 0; i < 8; i += 2) {
        wasm_v128_store(out + 4 * i, wasm_i16x8_narrow_i32x4(q[p][i], q[p][i + 1]));
        sum = wasm_i32x4_add(sum, wasm_i32x4_add(q[p][i], q[p][i + 1]));
      }
      sum = wasm_i32x4_add(sum, wasm_i32x4_shuffle(sum, sum, 2, 3, 0, 1));
      sum = wasm_i32x4_add(sum, wasm_i32x4_shuffle(sum, sum, 1, 0, 3, 2));
      xoffset[g * parts + p] = -zero * wasm_i32x4_extract_lane(sum, 0);
    }
  }
}

/*
 * Rows (or q8/q4 pairs of 4-row blocks) per parallel chunk: at least 64 rows (rows of a few KB
 * amortize the pool's hand-off), and about 4 chunks per thread on tall matrices, so that a
 * thread that lost its core still leaves work to take. The pool deals each thread one run of
 * chunks, so their size does not break its stream (16 per thread measured the same; when
 * threads alternated chunks from one counter, 16 per thread read a 4864×896 q4 weight from
 * memory 1.3× slower than 4). A weight under GEMV_SERIAL_BYTES (a decode step's k/v
 * projections) runs on the calling thread alone: it streams in microseconds, about what
 * waking a worker costs, and on a busy machine a worker that took one of its two chunks and
 * then lost its core stalled the step (a k/v projection measured 86 µs under load against
 * 13 µs quiet).
 */
#define GEMV_GRAIN 64
#define GEMV_CHUNKS_PER_THREAD 4
#define GEMV_SERIAL_BYTES (256 * 1024)

/* Units (rows, or q8/q4 pairs of blocks) per chunk of a job over `rows` rows of weights shaped like w. */
static int gemv_grain(const weight_t *w, int rows, int units, int rows_per_unit) {
  size_t row_bytes = w->format == FORMAT_F32 ? (size_t)w->cols * 4
                   : w->format == FORMAT_F16 ? (size_t)w->cols * 2
                   : (size_t)padded_cols(w->cols) / QUANT_GROUP * ((w->format == FORMAT_Q8 ? 32 : 16) + (w->scale_f16 ? 2 : 4));
  if ((size_t)rows * row_bytes < GEMV_SERIAL_BYTES) return units;
  int grain = units / (GEMV_CHUNKS_PER_THREAD * omni_threads());
  int least = GEMV_GRAIN / rows_per_unit;
  return grain > least ? grain : least;
}

/* A weight with its bias (or NULL) and output; omni_linears reads them as seven 4-byte fields. */
typedef struct {
  weight_t w;
  const float *bias;
  float *y;
} linear_part;

/*
 * Weights that share x in a decode step (q/k/v, gate/up) run as one GEMV job: x is quantized
 * once and the pool deals out the units of all of them together. In a 0.5B layer's sequence of
 * ops from memory on 2 threads, q/k/v took 29–33 µs as three jobs (k and v too small to share
 * out) and 22–25 as one; gate/up 127–141 as two, 123–127 as one.
 */
#define GEMV_MAX_PARTS 4

typedef struct {
  omni_task task;                /* every part's kernel variant (they share format and width) */
  int count;
  int first[GEMV_MAX_PARTS + 1]; /* part i's units are [first[i], first[i + 1]) of the job */
  gemv_ctx part[GEMV_MAX_PARTS];
} gemv_job;

static void gemv_job_run(void *p, int begin, int end, int thread) {
  const gemv_job *j = p;
  for (int i = 0; i < j->count; i++) {
    int lo = begin > j->first[i] ? begin : j->first[i], hi = end < j->first[i + 1] ? end : j->first[i + 1];
    if (lo < hi) j->task((void *)&j->part[i], lo - j->first[i], hi - j->first[i], thread);
  }
}

/* y_i = x·W_iᵀ (+ b_i) for 1..GEMV_MAX_PARTS weights of one format, scale type and width. */
static int gemv_parts(const float *x, const linear_part *parts, int count) {
  const weight_t *w = &parts[0].w;
  gemv_ctx c = { .x = x, .w = *w };
  omni_task task;
  int rows_per_unit = 1;
  if (w->format == FORMAT_F32 || w->format == FORMAT_F16) {
    task = w->format == FORMAT_F32 ? gemv_f32 : gemv_f16;
  } else {
    const int groups = padded_cols(w->cols) / QUANT_GROUP, q4 = w->format == FORMAT_Q4;
    const int mode = gemv_activations != ACTIVATIONS_AUTO ? gemv_activations : q4 ? ACTIVATIONS_INT8 : ACTIVATIONS_INT16;
    const int parts_of_x = mode == ACTIVATIONS_EXACT ? 2 : 1;
    const float top = mode == ACTIVATIONS_EXACT ? 32767.0f : mode == ACTIVATIONS_INT16 ? 16383.0f : 127.0f;
    /* Byte dots take x in one part; q8's bytes reach 255, so those need an engine that reads them as unsigned. */
    const int bytes = !RELAXED_DOT || parts_of_x == 2 || (!q4 && !omni_unsigned_dot_bytes) ? X_LANES
                    : mode == ACTIVATIONS_INT16 ? X_SPLIT : q4 && omni_unsigned_dot_bytes ? X_INT8_HIGH_IN_PLACE : X_INT8;
    /* One allocation: the int16 parts, then the scales, then the offsets, then x's bytes for the relaxed dot. */
    const size_t byte_count = bytes == X_SPLIT ? 64 : bytes == X_LANES ? 0 : 32;
    uint8_t *scratch = omni_shared_scratch(SCRATCH_ACTIVATIONS, (size_t)groups * (parts_of_x * QUANT_GROUP * 2 + 4 + parts_of_x * 4 + byte_count));
    if (!scratch) return -1;
    int16_t *xq = (int16_t *)scratch;
    float *xscale = (float *)(scratch + (size_t)groups * parts_of_x * QUANT_GROUP * 2);
    int32_t *xoffset = (int32_t *)(xscale + groups);
    quantize_activations(x, w->cols, groups, parts_of_x, top, q4 ? 8 : 128, xq, xscale, xoffset);
#if RELAXED_DOT
    if (bytes != X_LANES) {
      int8_t *xbytes = (int8_t *)(xoffset + groups * parts_of_x);
      if (bytes == X_SPLIT) split_activation_bytes(xq, groups, q4, xbytes);
      else int8_activation_bytes(xq, groups, q4, xbytes);
      c.xbytes = xbytes;
    }
#endif
    c.bytes = bytes;
    c.xq = xq;
    c.xscale = xscale;
    c.xoffset = xoffset;
    c.parts = parts_of_x;
    task = gemv_variant(&c);
    rows_per_unit = 2 * BLOCK_ROWS;
  }
  gemv_job job = { .task = task, .count = count };
  int rows = 0;
  for (int i = 0; i < count; i++) {
    job.part[i] = c;
    job.part[i].w = parts[i].w;
    job.part[i].bias = parts[i].bias;
    job.part[i].y = parts[i].y;
    job.first[i + 1] = job.first[i] + (rows_per_unit == 1 ? parts[i].w.rows : (block_count(parts[i].w.rows) + 1) / 2);
    rows += parts[i].w.rows;
  }
  const int units = job.first[count], grain = gemv_grain(w, rows, units, rows_per_unit);
  if (count == 1) omni_parallel_for(units, grain, task, &job.part[0]);
  else omni_parallel_for(units, grain, gemv_job_run, &job);
  return 0;
}

static int gemv(const float *x, const weight_t *w, const float *bias, float *y) {
  const linear_part part = { *w, bias, y };
  return gemv_parts(x, &part, 1);
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

/* int16 lanes [r0 c, r0 c+1, r1 c, …, r3 c+1] times the 4 rows' scales → panel rows c and c+1, columns 0..3. */
static inline void store_column_pair(float *p, v128_t q, v128_t scales) {
  v128_t lo = wasm_i32x4_extend_low_i16x8(q), hi = wasm_i32x4_extend_high_i16x8(q);
  wasm_v128_store(p, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shuffle(lo, hi, 0, 2, 4, 6)), scales));
  wasm_v128_store(p + NR, wasm_f32x4_mul(wasm_f32x4_convert_i32x4(wasm_i32x4_shuffle(lo, hi, 1, 3, 5, 7)), scales));
}

/*
 * A q8/q4 row block's columns k0 … k0 + kc (k0 a multiple of KC), rounded up to whole groups,
 * into panel columns 0..3: column pairs of the block's 4 rows, what a [k][8] panel wants.
 */
static void pack_block_panel(const weight_t *w, int block, int k0, int kc, float *panel) {
  const int groups = padded_cols(w->cols) / QUANT_GROUP, blocks = block_count(w->rows);
  for (int g = k0 / QUANT_GROUP; g * QUANT_GROUP < k0 + kc; g++) {
    group_place at = group_at(w->format, w->scale_f16, blocks, groups, block, g);
    v128_t s = block_scales(w->scale_f16, (const uint8_t *)w->data + at.scales);
    float *p = panel + (size_t)(g * QUANT_GROUP - k0) * NR;
    const uint8_t *q = (const uint8_t *)w->data + at.data;
    if (w->format == FORMAT_Q8) {
      for (int j = 0; j < 8; j++) {
        /* [r0 c … c+3, r1 …] → columns c, c+1 then c+2, c+3 in store_column_pair's order, less the 128. */
        v128_t v = wasm_v128_load(q + 16 * j), t = wasm_i8x16_shuffle(v, v, 0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15);
        store_column_pair(p + 4 * j * NR, wasm_i16x8_sub(wasm_u16x8_extend_low_u8x16(t), wasm_i16x8_const_splat(128)), s);
        store_column_pair(p + (4 * j + 2) * NR, wasm_i16x8_sub(wasm_u16x8_extend_high_u8x16(t), wasm_i16x8_const_splat(128)), s);
      }
    } else {
      for (int j = 0; j < 4; j++) {
        v128_t v = wasm_v128_load(q + 16 * j);
        for (int m = 0; m < 4; m++) {
          v128_t nibbles = wasm_v128_and(wasm_u16x8_shr(v, 4 * m), wasm_i16x8_const_splat(15));
          store_column_pair(p + (8 * j + 2 * m) * NR, wasm_i16x8_sub(nibbles, wasm_i16x8_const_splat(8)), s);
        }
      }
    }
  }
}

/* Packs columns [n0, n0 + nr) and k in [k0, k0 + kc) of the right operand into panel[kc][8], zero-padded. */
static void pack_panel(const matmul_ctx *c, int n0, int nr, int k0, int kc, float *panel, float *rows) {
  if (c->w && (c->w->format == FORMAT_Q8 || c->w->format == FORMAT_Q4)) {
    /* n0 is a multiple of 8: two row blocks, the second absent past the last row. */
    pack_block_panel(c->w, n0 / BLOCK_ROWS, k0, kc, panel);
    if (nr > BLOCK_ROWS) {
      pack_block_panel(c->w, n0 / BLOCK_ROWS + 1, k0, kc, panel + BLOCK_ROWS);
    } else {
      for (int k = 0; k < kc; k++) wasm_v128_store(panel + k * NR + BLOCK_ROWS, wasm_f32x4_splat(0));
    }
  } else if (c->w || c->transpose_b) {
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

/*
 * Measured on 4864×896 from cache (2 threads), M GEMVs against the packed matmul: q8 at
 * 5 rows 0.44 / 0.83 ms, 8 rows 0.70 / 0.84, 12 rows 1.06 / 1.15, 16 rows 1.39 / 1.44;
 * q4 at 12 rows 0.95 / 1.17, 16 rows 1.32 / 1.65.
 */
#define QUANTIZED_GEMV_MAX_ROWS 12

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

/*
 * y_i = x·W_iᵀ (+ b_i) for `count` weights taking the same x [M, cols]; weights of one format,
 * scale type and width share one GEMV job (gemv_parts). Returns 0, or −1 when scratch memory
 * could not be allocated (the caller reports OUT_OF_MEMORY).
 */
OMNI_EXPORT int omni_linears(const float *x, int M, const linear_part *parts, int count) {
  int shared = M == 1 && count <= GEMV_MAX_PARTS;
  for (int i = 1; i < count && shared; i++) {
    shared = parts[i].w.format == parts[0].w.format && parts[i].w.scale_f16 == parts[0].w.scale_f16 && parts[i].w.cols == parts[0].w.cols;
  }
  if (shared) return gemv_parts(x, parts, count);
  for (int i = 0; i < count; i++) {
    if (linear_rows(x, parts[i].w.cols, M, &parts[i].w, parts[i].bias, parts[i].y, parts[i].w.rows) != 0) return -1;
  }
  return 0;
}

OMNI_EXPORT int omni_matmul(const float *a, const float *b, int M, int K, int N, int transpose_b, float *y) {
  if (transpose_b && M == 1) {
    weight_t w = { b, N, K, FORMAT_F32, 0 };
    return gemv(a, &w, NULL, y);
  }
  matmul_ctx c = { .a = a, .lda = K, .M = M, .N = N, .K = K, .b = b, .transpose_b = transpose_b, .c = y, .ldc = N };
  return matmul_run(&c);
}

/* 1 in the relaxed-SIMD build (its q4 GEMV multiplies bytes), 0 in the baseline one. */
OMNI_EXPORT int omni_relaxed_dot(void) { return RELAXED_DOT; }
