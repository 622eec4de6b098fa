// out = (x - mean) / sqrt(var + eps) (* w) (+ b) over each row; the variance is taken around
// the mean (two passes) to keep precision on rows with a large offset. Composed after row_reduce.
struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
  has_weight: u32,
  has_bias: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

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
  let n = f32(params.cols);
  var sum = 0.0;
  for (var c = lid; c < params.cols; c += WG) {
    sum += x[base + c];
  }
  let mean = row_sum(lid, sum) / n;
  var squares = 0.0;
  for (var c = lid; c < params.cols; c += WG) {
    let d = x[base + c] - mean;
    squares += d * d;
  }
  let inv_std = inverseSqrt(row_sum(lid, squares) / n + params.eps);
  for (var c = lid; c < params.cols; c += WG) {
    var v = (x[base + c] - mean) * inv_std;
    if (params.has_weight != 0u) {
      v *= w[c];
    }
    if (params.has_bias != 0u) {
      v += b[c];
    }
    out[base + c] = v;
  }
}
