// The x operand of conv1d as an implicit im2col matrix [Lout, Cin * kernel]: column
// k = ci * kernel + j (torch's flattening of a [Cout, Cin, kernel] weight) of output frame m
// reads input frame m * stride + j * dilation - pad of the time-major input [in_len, in_ch].
@group(0) @binding(3) var<storage, read> x_data: array<f32>;

fn load_x(m: u32, k: u32) -> f32 {
  if (k >= params.K) {
    return 0.0;
  }
  let ci = k / params.kernel;
  let j = k % params.kernel;
  var pos = i32(m * params.stride + j * params.dilation) - i32(params.pad);
  let last = i32(params.in_len) - 1;
  if (params.reflect != 0u) {
    // torch 'reflect' mirrors around the edge samples without repeating them (pad < in_len).
    pos = abs(pos);
    pos = select(pos, 2 * last - pos, pos > last);
  } else if (pos < 0 || pos > last) {
    return 0.0;
  }
  return x_data[u32(pos) * params.in_ch + ci];
}
