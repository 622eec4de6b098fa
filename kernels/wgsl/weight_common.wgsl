// Contract of every weight loader (weight_f32, weight_f16, weight_q8, weight_q4, weight_dense):
//   fn load_w8(row: u32, k: u32) -> W8
// returns elements k..k+7 of a row of the weight part bound at binding 1 (scales at binding 2),
// dequantized to f32. k is a multiple of 8 and below the reduction length; the caller keeps
// row below the part's row count. Rows are stored padded so the 8 elements never straddle rows.
struct W8 {
  lo: vec4<f32>,
  hi: vec4<f32>,
}
