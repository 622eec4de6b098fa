// out = x / sqrt(mean(x²) + eps) * w over each row. One workgroup per row; composed after row_reduce.
struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = row_index(wid, nwg);
  if (row >= params.rows) {
    return;
  }
  let base = row * params.cols;
  var squares = 0.0;
  for (var c = lid; c < params.cols; c += WG) {
    let v = x[base + c];
    squares += v * v;
  }
  let inv_rms = inverseSqrt(row_sum(lid, squares) / f32(params.cols) + params.eps);
  for (var c = lid; c < params.cols; c += WG) {
    out[base + c] = x[base + c] * inv_rms * w[c];
  }
}
