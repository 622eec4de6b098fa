// sin and cos of angle, within ~1e-7 for |angle| < 2^16 · π/2. WGSL promises only 2^-11 for
// the builtins (SwiftShader's are 2e-4 off); rotary angles reach tens of thousands of radians.
// Shared by rotary and snake_beta.
// Quarter turns are removed with π/2 split in three (the first two parts have 8 significant
// bits, so k times them is exact), then Taylor series on [-π/4, π/4].
fn sin_cos(angle: f32) -> vec2<f32> {
  let k = round(angle * 0.6366197723675814);
  let r = ((angle - k * 1.5703125) - k * 0.000484466552734375) + k * 6.397578431460715e-7;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.0 / 6.0 + r2 * (1.0 / 120.0 + r2 * (-1.0 / 5040.0 + r2 * (1.0 / 362880.0 + r2 * (-1.0 / 39916800.0))))));
  let c = 1.0 + r2 * (-0.5 + r2 * (1.0 / 24.0 + r2 * (-1.0 / 720.0 + r2 * (1.0 / 40320.0 + r2 * (-1.0 / 3628800.0 + r2 * (1.0 / 479001600.0))))));
  switch (i32(k) & 3) {
    case 0: { return vec2<f32>(s, c); }
    case 1: { return vec2<f32>(c, -s); }
    case 2: { return vec2<f32>(-s, -c); }
    default: { return vec2<f32>(-c, s); }
  }
}
