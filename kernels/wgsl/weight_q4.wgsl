// q4 weight: [rows, w_stride / 2] bytes (w_stride = paddedCols), element 2j in the low nibble,
// stored as q + 8. Within a u32 element i sits at bits 4i. Composed after weight_scales.
@group(0) @binding(1) var<storage, read> w_data: array<u32>;

fn load_w8(row: u32, k: u32) -> W8 {
  let word = vec4<u32>(w_data[(row * params.w_stride + k) / 8u]);
  let lo = vec4<i32>((word >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u)) - vec4<i32>(8);
  let hi = vec4<i32>((word >> vec4<u32>(16u, 20u, 24u, 28u)) & vec4<u32>(15u)) - vec4<i32>(8);
  let s = group_scale(row, k);
  return W8(vec4<f32>(lo) * s, vec4<f32>(hi) * s);
}
