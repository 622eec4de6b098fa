// Softmax over each row, shifted by the row max. One workgroup per row; composed after row_reduce.
struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

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
  var local_max = -0x1.fffffep+127f;
  for (var c = lid; c < params.cols; c += WG) {
    local_max = max(local_max, x[base + c]);
  }
  let row_top = row_max(lid, local_max);
  var sum = 0.0;
  for (var c = lid; c < params.cols; c += WG) {
    let e = exp(x[base + c] - row_top);
    out[base + c] = e;
    sum += e;
  }
  let inv_sum = 1.0 / row_sum(lid, sum);
  for (var c = lid; c < params.cols; c += WG) {
    out[base + c] *= inv_sum;
  }
}
