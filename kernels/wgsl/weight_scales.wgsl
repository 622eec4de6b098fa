// One scale per 32-element group of a quantized row ([rows, w_stride / 32]): f32 bits, or
// two f16 per u32 (element 2j in the low half) when SCALE_F16.
override SCALE_F16: bool = false;
@group(0) @binding(2) var<storage, read> w_scales: array<u32>;

fn group_scale(row: u32, k: u32) -> f32 {
  let i = row * (params.w_stride / 32u) + k / 32u;
  if (SCALE_F16) {
    return unpack2x16float(w_scales[i / 2u])[i % 2u];
  }
  return bitcast<f32>(w_scales[i]);
}
