// BigVGAN's anti-aliased SnakeBeta (fact sheet §8.5) on time-major x [rows, channels]: ×2
// upsampling with the `up` filter (replicate padding, transposed conv, gain 2), SnakeBeta, ×2
// downsampling with the `down` filter (replicate padding), as Backend.snakeBeta defines them.
// One thread per output element; the 2·rows upsampled signal is recomputed per tap, never stored.
// Composed after trig and elementwise_common.
struct Params {
  rows: u32,
  channels: u32,
  up_taps: u32,
  down_taps: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> alpha_log: array<f32>;
@group(0) @binding(3) var<storage, read> beta_log: array<f32>;
@group(0) @binding(4) var<storage, read> up: array<f32>;
@group(0) @binding(5) var<storage, read> down: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

// Sample n of the ×2 upsampled channel c: only taps of one parity meet input samples.
fn upsampled(n: i32, c: u32) -> f32 {
  let taps = i32(params.up_taps);
  let crop = 3 * taps / 2 - 3;
  let pad = taps / 2 - 1;
  let last = i32(params.rows) - 1;
  var sum = 0.0;
  for (var k = (n + crop) & 1; k < taps; k += 2) {
    let i = clamp((n + crop - k) / 2 - pad, 0, last);
    sum += up[k] * x[u32(i) * params.channels + c];
  }
  return 2.0 * sum;
}

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = element_index(wid, nwg, lid);
  if (e >= params.rows * params.channels) {
    return;
  }
  let t = i32(e / params.channels);
  let c = e % params.channels;
  let alpha = exp(alpha_log[c]);
  let inverse_beta = 1.0 / (exp(beta_log[c]) + 1e-9);
  let pad = i32(params.down_taps) / 2 - 1;
  let last = 2 * i32(params.rows) - 1;
  var y = 0.0;
  for (var k = 0; k < i32(params.down_taps); k++) {
    let u = upsampled(clamp(2 * t + k - pad, 0, last), c);
    let s = sin_cos(u * alpha).x;
    y += down[k] * (u + inverse_beta * s * s);
  }
  out[e] = y;
}
