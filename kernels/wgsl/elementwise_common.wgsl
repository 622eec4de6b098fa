// One thread per element over a grid of (x, y) workgroups of WG threads.
override WG: u32 = 256u;

fn element_index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

// x / (1 + e^-z): exact limits at both ends (e^-z overflowing to +inf gives -0 or 0).
fn times_sigmoid(x: f32, z: f32) -> f32 {
  return x / (1.0 + exp(-z));
}
