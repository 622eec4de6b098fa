// Index of the largest value in each row, the first one on ties. One workgroup of WG threads
// per row (WG a power of two).
override WG: u32 = 256u;

struct Params {
  rows: u32,
  cols: u32,
}

const NONE: u32 = 0xffffffffu;

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<i32>;

var<workgroup> best_value: array<f32, WG>;
var<workgroup> best_index: array<u32, WG>;

fn better(v: f32, i: u32, than_v: f32, than_i: u32) -> bool {
  return i != NONE && (than_i == NONE || v > than_v || (v == than_v && i < than_i));
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.x + wid.y * nwg.x;
  if (row >= params.rows) {
    return;
  }
  let base = row * params.cols;
  var v = 0.0;
  var i = NONE;
  // Columns rise within a thread, so a strict comparison keeps the first of equal values.
  for (var c = lid; c < params.cols; c += WG) {
    let xc = x[base + c];
    if (i == NONE || xc > v) {
      v = xc;
      i = c;
    }
  }
  best_value[lid] = v;
  best_index[lid] = i;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half && better(best_value[lid + half], best_index[lid + half], best_value[lid], best_index[lid])) {
      best_value[lid] = best_value[lid + half];
      best_index[lid] = best_index[lid + half];
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    out[row] = i32(best_index[0]);
  }
}
