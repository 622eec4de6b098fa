// y[m, n] = x[m, :] · W[n, :] (+ bias[n]) for few rows of x (decode: M == 1): memory-bound on
// the weight, so each weight row is streamed once by THREADS_PER_ROW threads reading adjacent
// 8-element blocks, then reduced in workgroup memory. Grid: (row groups as x/y, m as z).
// Composed after linear_common, weight_common, a weight loader and input_rows.
override ROWS_PER_WG: u32 = 4u;
override THREADS_PER_ROW: u32 = 64u; // a power of two

@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

var<workgroup> partial: array<f32, ROWS_PER_WG * THREADS_PER_ROW>;

@compute @workgroup_size(ROWS_PER_WG * THREADS_PER_ROW)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let t = lid % THREADS_PER_ROW;
  let n = (wid.x + wid.y * nwg.x) * ROWS_PER_WG + lid / THREADS_PER_ROW;
  let m = wid.z;
  var acc = 0.0;
  if (n < params.N) {
    let blocks = (params.K + 7u) / 8u;
    for (var b = t; b < blocks; b += THREADS_PER_ROW) {
      let w = load_w8(n, b * 8u);
      let x = load_x8(m, b * 8u);
      acc += dot(w.lo, x.lo) + dot(w.hi, x.hi);
    }
  }
  partial[lid] = acc;
  workgroupBarrier();
  for (var half = THREADS_PER_ROW / 2u; half > 0u; half /= 2u) {
    if (t < half) {
      partial[lid] += partial[lid + half];
    }
    workgroupBarrier();
  }
  if (t == 0u && n < params.N) {
    var out = partial[lid];
    if (params.has_bias != 0u) {
      out += bias[params.out_offset + n];
    }
    y[m * params.out_stride + params.out_offset + n] = out;
  }
}
