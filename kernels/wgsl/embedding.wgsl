// out[t, :] = table[ids[t], :] for the ids that fall in this weight part [row_start,
// row_start + part_rows); the first part also writes zeros for ids outside [0, vocab).
// One thread per 8 columns of one token. Composed after elementwise_common, weight_common and
// a weight loader.
struct Params {
  tokens: u32,
  cols: u32,
  row_start: u32,
  part_rows: u32,
  vocab: u32,
  zero_invalid: u32,
  w_stride: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(3) var<storage, read> ids: array<i32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let blocks = (params.cols + 7u) / 8u;
  let e = element_index(wid, nwg, lid);
  if (e >= params.tokens * blocks) {
    return;
  }
  let t = e / blocks;
  let k = (e % blocks) * 8u;
  let id = ids[t];
  var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
  if (id >= 0 && u32(id) >= params.row_start && u32(id) - params.row_start < params.part_rows) {
    w = load_w8(u32(id) - params.row_start, k);
  } else if (params.zero_invalid == 0u || (id >= 0 && u32(id) < params.vocab)) {
    return; // another part owns this row
  }
  let base = t * params.cols + k;
  for (var j = 0u; j < 4u; j++) {
    if (k + j < params.cols) {
      out[base + j] = w.lo[j];
    }
    if (k + 4u + j < params.cols) {
      out[base + 4u + j] = w.hi[j];
    }
  }
}
