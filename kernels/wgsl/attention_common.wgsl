// Shared by attention_prefill and attention_decode: parameters, operands, and the mask, which
// for every supported kind lets query i see one contiguous key range [lo, hi).
struct AttnParams {
  tokens: u32,      // T: query rows
  kv_len: u32,      // rows of k/v that hold keys
  q_heads: u32,
  kv_heads: u32,
  head_dim: u32,
  scale: f32,
  mask_kind: u32,   // 0 none, 1 causal, 2 segments, 3 blockWindow
  query_start: u32, // causal: cache rows before this chunk
  block_size: u32,  // blockWindow
  back: u32,
  ahead: u32,
  segments: u32,    // segments: number of segments (bounds has segments + 1 entries)
  chunk: u32,       // decode: keys per split
  chunks: u32,
}

@group(0) @binding(0) var<uniform> params: AttnParams;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> bounds: array<i32>;

fn key_range(i: u32) -> vec2<u32> {
  var lo = 0u;
  var hi = params.kv_len;
  switch params.mask_kind {
    case 1u: {
      hi = min(params.query_start + i + 1u, params.kv_len);
    }
    case 2u: {
      // Last segment s with bounds[s] <= i.
      var first = 0u;
      var last = params.segments - 1u;
      while (first < last) {
        let mid = (first + last + 1u) / 2u;
        if (u32(bounds[mid]) <= i) {
          first = mid;
        } else {
          last = mid - 1u;
        }
      }
      lo = u32(bounds[first]);
      hi = min(u32(bounds[first + 1u]), params.kv_len);
    }
    case 3u: {
      let block = i / params.block_size;
      lo = select(0u, (block - params.back) * params.block_size, block > params.back);
      hi = min((block + params.ahead + 1u) * params.block_size, params.kv_len);
    }
    default: {}
  }
  return vec2<u32>(min(lo, hi), hi);
}

// Stands for a masked-out score: finite, so exp(MASKED - m) is 0 and never NaN.
const MASKED: f32 = -0x1.fffffep+127f;

fn kv_head(h: u32) -> u32 {
  return h / (params.q_heads / params.kv_heads);
}

// Score of query row i (head h) against key row j, already scaled.
fn score(i: u32, h: u32, j: u32) -> f32 {
  let qb = (i * params.q_heads + h) * params.head_dim;
  let kb = (j * params.kv_heads + kv_head(h)) * params.head_dim;
  var s = 0.0;
  for (var d = 0u; d < params.head_dim; d++) {
    s += q[qb + d] * k[kb + d];
  }
  return s * params.scale;
}
