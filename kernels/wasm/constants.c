/* The constants kernels read from memory (why: omni.h, kernel_constants). */
#include "omni.h"

#define F32X4(v) ((v128_t)(__f32x4){ v, v, v, v })

const kernel_constants omni_constants = {
  .round = F32X4(0x1.8p23f),
  .exp_low = F32X4(-104.0f),
  .exp_high = F32X4(88.72f),
  .log2e = F32X4(1.44269504088896341f),
  .ln2_hi = F32X4(0.693145751953125f),
  .ln2_lo = F32X4(1.42860682030941723212e-6f),
  .c7 = F32X4(1.0f / 5040.0f),
  .c6 = F32X4(1.0f / 720.0f),
  .c5 = F32X4(1.0f / 120.0f),
  .c4 = F32X4(1.0f / 24.0f),
  .c3 = F32X4(1.0f / 6.0f),
  .c2 = F32X4(0.5f),
  .one = F32X4(1.0f),
  .exponent_bias = (v128_t)(__i32x4){ 127, 127, 127, 127 },
  .half_bits = (v128_t)(__i32x4){ (int)0x8FFFE000, (int)0x8FFFE000, (int)0x8FFFE000, (int)0x8FFFE000 },
  .half_rebias = F32X4(0x1p112f),
  .coarse_low = F32X4(-87.0f),
  .ln2 = F32X4(0.693147180559945309f),
  .low_nibble_bytes = (v128_t)(__u8x16){ 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15 },
};
