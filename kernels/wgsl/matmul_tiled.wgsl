// y[m, n] = Σ_k x(m, k) · w(n, k) (+ bias[n]) for many rows: each workgroup computes a
// (WG_M·4) × (WG_N·4) output tile, each thread a 4 × 4 register block, staging TILE_K-wide
// slices of both operands in workgroup memory so each element is fetched from memory once per
// tile. Composed after linear_common, weight_common, a weight loader (weight_* or
// weight_dense) and an input loader (input_rows or input_conv1d).
override WG_M: u32 = 16u;
override WG_N: u32 = 16u;
override TILE_K: u32 = 16u; // a multiple of 8

const BLOCK: u32 = 4u;

@group(0) @binding(4) var<storage, read> bias: array<f32>;
@group(0) @binding(5) var<storage, read_write> y: array<f32>;

// [k][m] and [k][n]: the inner loop reads 4 consecutive m (n) for one k.
var<workgroup> x_tile: array<f32, TILE_K * WG_M * BLOCK>;
var<workgroup> w_tile: array<f32, TILE_K * WG_N * BLOCK>;

@compute @workgroup_size(WG_N, WG_M)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) local: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let tile_m = WG_M * BLOCK;
  let tile_n = WG_N * BLOCK;
  let threads = WG_M * WG_N;
  let m0 = wid.y * tile_m;
  let n0 = wid.x * tile_n;
  var acc: array<vec4<f32>, 4>;

  for (var k0 = 0u; k0 < params.K; k0 += TILE_K) {
    for (var i = lid; i < tile_m * TILE_K; i += threads) {
      let m = i / TILE_K;
      let kk = i % TILE_K;
      var v = 0.0;
      if (m0 + m < params.M) {
        v = load_x(m0 + m, k0 + kk);
      }
      x_tile[kk * tile_m + m] = v;
    }
    let blocks_k = TILE_K / 8u;
    for (var i = lid; i < tile_n * blocks_k; i += threads) {
      let n = i / blocks_k;
      let kk = (i % blocks_k) * 8u;
      var w = W8(vec4<f32>(0.0), vec4<f32>(0.0));
      if (n0 + n < params.N && k0 + kk < params.K) {
        w = load_w8(n0 + n, k0 + kk);
      }
      for (var j = 0u; j < 4u; j++) {
        w_tile[(kk + j) * tile_n + n] = w.lo[j];
        w_tile[(kk + 4u + j) * tile_n + n] = w.hi[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TILE_K; kk++) {
      let xb = kk * tile_m + local.y * BLOCK;
      let wb = kk * tile_n + local.x * BLOCK;
      let xv = vec4<f32>(x_tile[xb], x_tile[xb + 1u], x_tile[xb + 2u], x_tile[xb + 3u]);
      let wv = vec4<f32>(w_tile[wb], w_tile[wb + 1u], w_tile[wb + 2u], w_tile[wb + 3u]);
      for (var r = 0u; r < BLOCK; r++) {
        acc[r] += xv[r] * wv;
      }
    }
    workgroupBarrier();
  }

  for (var r = 0u; r < BLOCK; r++) {
    let m = m0 + local.y * BLOCK + r;
    for (var c = 0u; c < BLOCK; c++) {
      let n = n0 + local.x * BLOCK + c;
      if (m < params.M && n < params.N) {
        var out = acc[r][c];
        if (params.has_bias != 0u) {
          out += bias[params.out_offset + n];
        }
        y[m * params.out_stride + params.out_offset + n] = out;
      }
    }
  }
}
