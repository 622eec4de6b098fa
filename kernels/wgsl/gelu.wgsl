// GELU, exact (erf) or tanh-approximated. Both are written without 1 + (something near -1),
// which would cancel to noise for negative inputs. Composed after elementwise_common.
struct Params {
  size: u32,
  tanh_mode: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

// erfc(z) for z ≥ 0 with relative error below 1.2e-7 (Chebyshev fit, Numerical Recipes §6.2).
fn erfc_nonneg(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let p = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(p - z * z);
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
  if (params.tanh_mode != 0u) {
    // 0.5·(1 + tanh(u)) = sigmoid(2u)
    let u = 0.7978845608028654 * (v + 0.044715 * v * v * v);
    out[i] = times_sigmoid(v, 2.0 * u);
  } else {
    // 0.5·(1 + erf(v/√2)) = 0.5·erfc(-v/√2)
    let z = v * 0.7071067811865476;
    let upper = select(2.0 - erfc_nonneg(z), erfc_nonneg(-z), z < 0.0);
    out[i] = 0.5 * v * upper;
  }
}
