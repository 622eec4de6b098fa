// out[i, :] = x[idx[i], :]; an index outside [0, rows) yields a zero row. Elements move as
// raw 32-bit words, so f32 and i32 tensors share the kernel.
// Composed after elementwise_common.
struct Params {
  count: u32,
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = element_index(wid, nwg, lid);
  if (e >= params.count * params.cols) {
    return;
  }
  let row = idx[e / params.cols];
  var v = 0u;
  if (row >= 0 && u32(row) < params.rows) {
    v = x[u32(row) * params.cols + e % params.cols];
  }
  out[e] = v;
}
