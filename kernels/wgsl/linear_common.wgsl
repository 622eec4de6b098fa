// Parameters shared by the linear-family kernels (gemv, matmul_tiled) and the operand
// loaders composed with them (weight_*, input_rows, input_conv1d).
struct MatParams {
  M: u32,          // output rows (rows of x, or conv output frames)
  N: u32,          // output columns computed by this dispatch (weight rows in this part)
  K: u32,          // reduction length
  out_stride: u32, // output row stride: all columns across weight parts
  out_offset: u32, // first output column written by this dispatch
  w_stride: u32,   // weight row stride in elements (padded: see the weight loaders)
  w_kstride: u32,  // weight_dense only: element stride along k
  has_bias: u32,
  // input_conv1d only
  in_len: u32,
  in_ch: u32,
  kernel: u32,
  stride: u32,
  pad: u32,
  dilation: u32,
  reflect: u32,
}

@group(0) @binding(0) var<uniform> params: MatParams;
