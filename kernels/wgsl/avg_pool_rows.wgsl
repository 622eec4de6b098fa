// Mean over non-overlapping windows of `window` rows: [L, C] → [out_rows, C].
// Composed after elementwise_common.
struct Params {
  out_rows: u32,
  cols: u32,
  window: u32,
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
  let e = element_index(wid, nwg, lid);
  if (e >= params.out_rows * params.cols) {
    return;
  }
  let c = e % params.cols;
  let first = (e / params.cols) * params.window;
  var sum = 0.0;
  for (var r = 0u; r < params.window; r++) {
    sum += x[(first + r) * params.cols + c];
  }
  out[e] = sum / f32(params.window);
}
