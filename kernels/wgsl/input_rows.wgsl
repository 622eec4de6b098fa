// The x operand of linear/matmul: a dense f32 [M, K] tensor; reads past K give 0 so padded
// weight columns never meet garbage.
@group(0) @binding(3) var<storage, read> x_data: array<f32>;

fn load_x(m: u32, k: u32) -> f32 {
  if (k < params.K) {
    return x_data[m * params.K + k];
  }
  return 0.0;
}

fn load_x8(m: u32, k: u32) -> W8 {
  return W8(
    vec4<f32>(load_x(m, k), load_x(m, k + 1u), load_x(m, k + 2u), load_x(m, k + 3u)),
    vec4<f32>(load_x(m, k + 4u), load_x(m, k + 5u), load_x(m, k + 6u), load_x(m, k + 7u)),
  );
}
