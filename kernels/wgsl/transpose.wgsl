// [rows, cols] → [cols, rows] through a TILE × TILE workgroup tile, so both the reads and the
// writes walk memory contiguously. The +1 column keeps the transposed reads off one bank.
// Elements move as raw 32-bit words, so f32 and i32 tensors share the kernel.
override TILE: u32 = 16u;

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

var<workgroup> tile: array<u32, TILE * (TILE + 1u)>;

@compute @workgroup_size(TILE, TILE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) local: vec3<u32>) {
  let r = wid.y * TILE + local.y;
  let c = wid.x * TILE + local.x;
  if (r < params.rows && c < params.cols) {
    tile[local.y * (TILE + 1u) + local.x] = x[r * params.cols + c];
  }
  workgroupBarrier();
  let out_r = wid.x * TILE + local.y; // a column of x
  let out_c = wid.y * TILE + local.x; // a row of x
  if (out_r < params.cols && out_c < params.rows) {
    out[out_r * params.rows + out_c] = tile[local.x * (TILE + 1u) + local.y];
  }
}
