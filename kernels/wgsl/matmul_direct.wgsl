// y[m, n] = Σ_k x(m, k) · w(n, k) (+ bias[n]) with each thread computing a BLOCK_M × BLOCK_N
// output block straight from memory: no workgroup memory, no barriers. For the shapes where the
// tiled kernel's 64 × 64 tile is mostly empty (few output rows or columns) or the GEMV's
// 64-thread row reduction has little to reduce (short K); tuning.ts chooses. Adjacent threads
// take adjacent column blocks, so one weight row block is read by one thread and the x rows it
// meets are shared through the cache. Composed after linear_common, weight_common, a weight
// loader and an input loader (input_rows or input_conv1d).
override WG: u32 = 64u;
override BLOCK_M: u32 = 4u; // 1..16
override BLOCK_N: u32 = 4u; // 1..4

@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let g = (wid.x + wid.y * nwg.x) * WG + lid;
  let n_blocks = (params.N + BLOCK_N - 1u) / BLOCK_N;
  let n0 = (g % n_blocks) * BLOCK_N;
  let m0 = (g / n_blocks) * BLOCK_M;
  if (m0 >= params.M) {
    return;
  }
  let rows = min(BLOCK_M, params.M - m0);
  let cols = min(BLOCK_N, params.N - n0);
  // Loops run to the pipeline constants, so compilers unroll them and keep acc in registers.
  var acc: array<vec4<f32>, 16>; // [m][n]; columns past `cols` multiply zero weights
  for (var k = 0u; k < params.K; k += 8u) {
    var w: array<W8, 4>;
    for (var j = 0u; j < BLOCK_N; j++) {
      if (j < cols) {
        w[j] = load_w8(n0 + j, k);
      }
    }
    for (var i = 0u; i < BLOCK_M; i++) {
      if (i >= rows) {
        break;
      }
      let m = m0 + i;
      let lo = vec4<f32>(load_x(m, k), load_x(m, k + 1u), load_x(m, k + 2u), load_x(m, k + 3u));
      let hi = vec4<f32>(load_x(m, k + 4u), load_x(m, k + 5u), load_x(m, k + 6u), load_x(m, k + 7u));
      var a = acc[i];
      for (var j = 0u; j < BLOCK_N; j++) {
        a[j] += dot(w[j].lo, lo) + dot(w[j].hi, hi);
      }
      acc[i] = a;
    }
  }
  for (var i = 0u; i < rows; i++) {
    let row = (m0 + i) * params.out_stride + params.out_offset;
    for (var j = 0u; j < cols; j++) {
      var out = acc[i][j];
      if (params.has_bias != 0u) {
        out += bias[params.out_offset + n0 + j];
      }
      y[row + n0 + j] = out;
    }
  }
}
