// Attention for a few queries over a long cache (decode), flash-decoding style: the keys are
// split into chunks of CHUNK, and one workgroup per (chunk, head, query) writes the chunk's
// max m, sum l = Σ e^(s - m) and unnormalized output Σ e^(s - m)·v to `partial`
// ([tokens, q_heads, chunks, 2 + head_dim]); attention_combine merges the chunks.
// Composed after attention_common and row_reduce.
override CHUNK: u32 = 256u;

@group(0) @binding(5) var<storage, read_write> partial: array<f32>;

var<workgroup> probs: array<f32, CHUNK>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wid.x;
  let h = wid.y;
  let i = wid.z;
  let range = key_range(i);
  let chunk_start = c * CHUNK;
  let start = max(chunk_start, range.x);
  let end = min(chunk_start + CHUNK, range.y);

  var local_max = MASKED;
  for (var jj = lid; jj < CHUNK; jj += WG) {
    let j = chunk_start + jj;
    var s = MASKED;
    if (j >= start && j < end) {
      s = score(i, h, j);
    }
    probs[jj] = s;
    local_max = max(local_max, s);
  }
  let m = row_max(lid, local_max);
  var local_sum = 0.0;
  for (var jj = lid; jj < CHUNK; jj += WG) {
    let j = chunk_start + jj;
    var p = 0.0;
    if (j >= start && j < end) {
      p = exp(probs[jj] - m);
    }
    probs[jj] = p;
    local_sum += p;
  }
  let l = row_sum(lid, local_sum); // its barriers also publish probs

  let base = ((i * params.q_heads + h) * params.chunks + c) * (params.head_dim + 2u);
  let g = kv_head(h);
  for (var d = lid; d < params.head_dim; d += WG) {
    var acc = 0.0;
    for (var j = start; j < end; j++) {
      acc += probs[j - chunk_start] * v[(j * params.kv_heads + g) * params.head_dim + d];
    }
    partial[base + 2u + d] = acc;
  }
  if (lid == 0u) {
    partial[base] = m;
    partial[base + 1u] = l;
  }
}
