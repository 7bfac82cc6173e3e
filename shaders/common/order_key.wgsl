// Order-preserving u32 keys of f32 values, for selections that compare or radix-sort bits.
// Larger floats get larger keys; -0 and +0 share one key (they tie in the CPU references).
fn order_key(x: f32) -> u32 {
  if (x == 0.0) {
    return 0x80000000u;
  }
  let bits = bitcast<u32>(x);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}
