// out = f(x) for Backend.unary; KIND picks f (one pipeline each). p0/p1: clamp bounds (finite:
// the backend maps ±Infinity to ±f32 max, since WGSL may assume no infinities) or affine
// scale/shift. Composed after elementwise_common.
override KIND: u32 = 0u; // 0 relu, 1 sigmoid, 2 tanh, 3 silu, 4 sqrt, 5 clamp, 6 affine

struct Params {
  size: u32,
  p0: f32,
  p1: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// tanh relative to |tanh(v)| everywhere: a Taylor series near 0, where (1 − e)/(1 + e) cancels
// (its next term, 1382/155925·v¹¹, is below 1e-11 relative for |v| < 1/8), and no e^{2v} that overflows.
fn tanh_accurate(v: f32) -> f32 {
  let a = abs(v);
  if (a < 0.125) {
    let v2 = v * v;
    return v * (1.0 + v2 * (-1.0 / 3.0 + v2 * (2.0 / 15.0 + v2 * (-17.0 / 315.0 + v2 * (62.0 / 2835.0)))));
  }
  let e = exp(-2.0 * a);
  return sign(v) * ((1.0 - e) / (1.0 + e));
}

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
  let v = x[i];
  var y: f32;
  switch (KIND) {
    case 0u: { y = max(v, 0.0); }
    case 1u: { y = times_sigmoid(1.0, v); }
    case 2u: { y = tanh_accurate(v); }
    case 3u: { y = times_sigmoid(v, v); }
    case 4u: { y = sqrt(v); }
    case 5u: { y = min(max(v, params.p0), params.p1); }
    default: { y = params.p0 * v + params.p1; }
  }
  out[i] = y;
}
