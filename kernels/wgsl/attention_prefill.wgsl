// Attention for many queries (prefill), flash-attention style: a workgroup takes BLOCK_Q
// queries of one head and walks their visible keys in BLOCK_KV tiles staged in workgroup
// memory, keeping a running max, sum and output (online softmax) so scores never reach memory.
// THREADS_PER_QUERY threads share a query: each scores every THREADS_PER_QUERY-th key of a tile
// and owns the output dims d ≡ its lane (mod THREADS_PER_QUERY), at most ACC_MAX of them.
// Grid: (query blocks, q heads). Composed after attention_common.
override HEAD_DIM: u32 = 64u;
override BLOCK_Q: u32 = 16u;
override BLOCK_KV: u32 = 16u;
override THREADS_PER_QUERY: u32 = 2u; // ceil(HEAD_DIM / ACC_MAX)

const ACC_MAX: u32 = 32u;

@group(0) @binding(5) var<storage, read_write> out: array<f32>;

var<workgroup> k_tile: array<f32, BLOCK_KV * HEAD_DIM>;
var<workgroup> v_tile: array<f32, BLOCK_KV * HEAD_DIM>;
var<workgroup> scores: array<f32, BLOCK_Q * BLOCK_KV>;

@compute @workgroup_size(BLOCK_Q * THREADS_PER_QUERY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let threads = BLOCK_Q * THREADS_PER_QUERY;
  let h = wid.y;
  let g = kv_head(h);
  let first_query = wid.x * BLOCK_Q;
  let lane = lid % THREADS_PER_QUERY;
  let qi = lid / THREADS_PER_QUERY;
  let i = first_query + qi;
  let in_range = i < params.tokens;
  var range = vec2<u32>(0u, 0u);
  if (in_range) {
    range = key_range(i);
  }
  // Key ranges only move forward with the query index, so the block's union is
  // [lo(first query), hi(last query)).
  let first_key = key_range(first_query).x;
  let end_key = key_range(min(first_query + BLOCK_Q, params.tokens) - 1u).y;

  var run_max = MASKED;
  var run_sum = 0.0;
  var acc: array<f32, ACC_MAX>;
  let q_base = (i * params.q_heads + h) * HEAD_DIM;

  for (var tile_start = first_key; tile_start < end_key; tile_start += BLOCK_KV) {
    for (var e = lid; e < BLOCK_KV * HEAD_DIM; e += threads) {
      let j = tile_start + e / HEAD_DIM;
      var kv = vec2<f32>(0.0);
      if (j < end_key) {
        let src = (j * params.kv_heads + g) * HEAD_DIM + e % HEAD_DIM;
        kv = vec2<f32>(k[src], v[src]);
      }
      k_tile[e] = kv.x;
      v_tile[e] = kv.y;
    }
    workgroupBarrier();

    for (var jj = lane; jj < BLOCK_KV; jj += THREADS_PER_QUERY) {
      let j = tile_start + jj;
      var s = MASKED;
      if (in_range && j >= range.x && j < range.y) {
        s = 0.0;
        for (var d = 0u; d < HEAD_DIM; d++) {
          s += q[q_base + d] * k_tile[jj * HEAD_DIM + d];
        }
        s *= params.scale;
      }
      scores[qi * BLOCK_KV + jj] = s;
    }
    workgroupBarrier();

    var tile_max = MASKED;
    for (var jj = 0u; jj < BLOCK_KV; jj++) {
      tile_max = max(tile_max, scores[qi * BLOCK_KV + jj]);
    }
    if (tile_max > MASKED) {
      let new_max = max(run_max, tile_max);
      let correction = exp(run_max - new_max);
      run_sum *= correction;
      for (var a = 0u; a < ACC_MAX; a++) {
        acc[a] *= correction;
      }
      for (var jj = 0u; jj < BLOCK_KV; jj++) {
        let s = scores[qi * BLOCK_KV + jj];
        if (s > MASKED) {
          let p = exp(s - new_max);
          run_sum += p;
          for (var a = 0u; a < ACC_MAX; a++) {
            let d = lane + a * THREADS_PER_QUERY;
            if (d < HEAD_DIM) {
              acc[a] += p * v_tile[jj * HEAD_DIM + d];
            }
          }
        }
      }
      run_max = new_max;
    }
    workgroupBarrier(); // the next tile overwrites k_tile, v_tile and scores
  }

  if (in_range) {
    // A query that sees no key (possible with blockWindow past kv_len) outputs zeros.
    let inv_sum = select(0.0, 1.0 / run_sum, run_sum > 0.0);
    for (var a = 0u; a < ACC_MAX; a++) {
      let d = lane + a * THREADS_PER_QUERY;
      if (d < HEAD_DIM) {
        out[q_base + d] = acc[a] * inv_sum;
      }
    }
  }
}
