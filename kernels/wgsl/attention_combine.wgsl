// Merges attention_decode's per-chunk results: out = Σ_c e^(m_c - M)·acc_c / Σ_c e^(m_c - M)·l_c
// with M = max_c m_c. One thread per output element. Composed after attention_common and
// elementwise_common.
@group(0) @binding(5) var<storage, read> partial: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let e = element_index(wid, nwg, lid);
  if (e >= params.tokens * params.q_heads * params.head_dim) {
    return;
  }
  let d = e % params.head_dim;
  let row = e / params.head_dim; // i * q_heads + h
  let stride = params.head_dim + 2u;
  let first = row * params.chunks * stride;
  var top = MASKED;
  for (var c = 0u; c < params.chunks; c++) {
    top = max(top, partial[first + c * stride]);
  }
  var sum = 0.0;
  var acc = 0.0;
  for (var c = 0u; c < params.chunks; c++) {
    let base = first + c * stride;
    let weight = exp(partial[base] - top);
    sum += weight * partial[base + 1u];
    acc += weight * partial[base + 2u + d];
  }
  out[e] = select(0.0, acc / sum, sum > 0.0);
}
