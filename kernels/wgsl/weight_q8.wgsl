// q8 weight: int8 [rows, w_stride] (w_stride = paddedCols), 8 values per vec2<u32>, byte j of a
// word is element j. Composed after weight_scales.
@group(0) @binding(1) var<storage, read> w_data: array<vec2<u32>>;

fn unpack_i8x4(word: u32) -> vec4<f32> {
  // Shift each byte to the top, then arithmetic-shift back down to sign-extend it.
  let shifted = vec4<i32>(bitcast<i32>(word)) << vec4<u32>(24u, 16u, 8u, 0u);
  return vec4<f32>(shifted >> vec4<u32>(24u));
}

fn load_w8(row: u32, k: u32) -> W8 {
  let v = w_data[(row * params.w_stride + k) / 8u];
  let s = group_scale(row, k);
  return W8(unpack_i8x4(v.x) * s, unpack_i8x4(v.y) * s);
}
