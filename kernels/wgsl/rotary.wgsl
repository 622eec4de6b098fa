// Rotary embedding in place on x [T, H, D] (the backend copies x to out first when they differ).
// Frequency j turns the pair (j, j + rotary_half) ('half' style) or (2j, 2j + 1) ('interleaved')
// by positions[stream[j], t] · inv_freq[j]. One thread per (t, head < heads, j).
// Composed after elementwise_common.
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

// sin and cos of angle, within ~1e-7 for |angle| < 2^16 · π/2. WGSL promises only 2^-11 for
// the builtins (SwiftShader's are 2e-4 off), and positions reach tens of thousands of radians.
// Quarter turns are removed with π/2 split in three (the first two parts have 8 significant
// bits, so k times them is exact), then Taylor series on [-π/4, π/4].
fn sin_cos(angle: f32) -> vec2<f32> {
  let k = round(angle * 0.6366197723675814);
  let r = ((angle - k * 1.5703125) - k * 0.000484466552734375) + k * 6.397578431460715e-7;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0 + r2 * (-1.0 / 39916800.0))))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0 + r2 * (1.0 / 479001600.0))))));
  switch (i32(k) & 3) {
    case 0: { return vec2<f32>(s, c); }
    case 1: { return vec2<f32>(c, -s); }
    case 2: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}

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
