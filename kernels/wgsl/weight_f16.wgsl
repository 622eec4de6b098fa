// f16 weight, 8 halves per vec4<u32>; rows padded to w_stride (a multiple of 8) columns.
// unpack2x16float needs no shader-f16 feature, so this runs on every adapter.
@group(0) @binding(1) var<storage, read> w_data: array<vec4<u32>>;

fn load_w8(row: u32, k: u32) -> W8 {
  let v = w_data[(row * params.w_stride + k) / 8u];
  return W8(
    vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y)),
    vec4<f32>(unpack2x16float(v.z), unpack2x16float(v.w)),
  );
}
