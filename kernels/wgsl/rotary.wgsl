// Rotary embedding in place on x [T, H, D] (the backend copies x to out first when they differ).
// Frequency j turns the pair (j, j + rotary_half) ('half' style) or (2j, 2j + 1) ('interleaved')
// by positions[stream[j], t] · inv_freq[j]. One thread per (t, head < heads, j).
// Composed after trig and elementwise_common.
struct Params {
  tokens: u32,
  heads_total: u32,
  head_dim: u32,
  heads: u32,
  rotary_half: u32,
  interleaved: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(4) var<storage, read> stream: array<i32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = element_index(wid, nwg, lid);
  if (e >= params.tokens * params.heads * params.rotary_half) {
    return;
  }
  let j = e % params.rotary_half;
  let h = (e / params.rotary_half) % params.heads;
  let t = e / (params.rotary_half * params.heads);
  let pos = positions[u32(stream[j]) * params.tokens + t];
  let sc = sin_cos(f32(pos) * inv_freq[j]);
  let s = sc.x;
  let c = sc.y;
  let base = (t * params.heads_total + h) * params.head_dim;
  var i1 = base + j;
  var i2 = base + j + params.rotary_half;
  if (params.interleaved != 0u) {
    i1 = base + 2u * j;
    i2 = i1 + 1u;
  }
  let x1 = x[i1];
  let x2 = x[i2];
  x[i1] = x1 * c - x2 * s;
  x[i2] = x2 * c + x1 * s;
}
