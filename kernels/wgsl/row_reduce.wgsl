// Workgroup-wide reductions for kernels that give one workgroup of WG threads to each row.
// Call from uniform control flow (they contain barriers); every thread gets the result.
override WG: u32 = 256u; // a power of two

var<workgroup> reduce_buf: array<f32, WG>;

fn row_sum(lid: u32, v: f32) -> f32 {
  reduce_buf[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      reduce_buf[lid] += reduce_buf[lid + half];
    }
    workgroupBarrier();
  }
  let total = reduce_buf[0];
  workgroupBarrier(); // the buffer is reused by the next reduction
  return total;
}

fn row_max(lid: u32, v: f32) -> f32 {
  reduce_buf[lid] = v;
  workgroupBarrier();
  for (var half = WG / 2u; half > 0u; half /= 2u) {
    if (lid < half) {
      reduce_buf[lid] = max(reduce_buf[lid], reduce_buf[lid + half]);
    }
    workgroupBarrier();
  }
  let total = reduce_buf[0];
  workgroupBarrier();
  return total;
}

fn row_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return wid.x + wid.y * nwg.x;
}
