// A plain f32 tensor used as the weight operand of matmul: element (row, k) sits at
// row * w_stride + k * w_kstride, so both b[K, N] and bᵀ ([N, K]) are read in place.
@group(0) @binding(1) var<storage, read> w_data: array<f32>;

fn dense_at(row: u32, k: u32) -> f32 {
  if (k < params.K) {
    return w_data[row * params.w_stride + k * params.w_kstride];
  }
  return 0.0;
}

fn load_w8(row: u32, k: u32) -> W8 {
  return W8(
    vec4<f32>(dense_at(row, k), dense_at(row, k + 1u), dense_at(row, k + 2u), dense_at(row, k + 3u)),
    vec4<f32>(dense_at(row, k + 4u), dense_at(row, k + 5u), dense_at(row, k + 6u), dense_at(row, k + 7u)),
  );
}
