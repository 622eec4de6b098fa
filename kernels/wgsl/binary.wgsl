// out = a ∘ b with ∘ = + (OP 0) or × (OP 1); b holds b_size elements and repeats over a
// (b_size == size: elementwise; b_size == last dim: one row broadcast). Composed after elementwise_common.
override OP: u32 = 0u;

struct Params {
  size: u32,
  b_size: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let i = element_index(wid, nwg, lid);
  if (i >= params.size) {
    return;
  }
  let bv = b[i % params.b_size];
  if (OP == 0u) {
    out[i] = a[i] + bv;
  } else {
    out[i] = a[i] * bv;
  }
}
