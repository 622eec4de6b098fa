// f32 weight; rows padded to w_stride (a multiple of 8) columns.
@group(0) @binding(1) var<storage, read> w_data: array<vec4<f32>>;

fn load_w8(row: u32, k: u32) -> W8 {
  let i = (row * params.w_stride + k) / 4u;
  return W8(w_data[i], w_data[i + 1u]);
}
