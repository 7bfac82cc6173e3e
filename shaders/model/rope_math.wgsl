// Rotary embedding arithmetic of kv_write.wgsl (ROPE).
//
// cos/sin are evaluated here rather than with the builtins, which are only accurate to ~1e-4 on
// some adapters (SwiftShader) and lose accuracy at large arguments (angles reach 1e5 radians at
// long positions): Cody-Waite reduction by pi/2 with a 4-part constant whose first three parts
// have 7 significant bits (so n * part is exact for n < 2^17), then Cephes' f32 minimax
// polynomials on [-pi/4, pi/4] and the quadrant's swap of sin and cos.

const TWO_OVER_PI = 0.6366197723675814;
const PIO2_1 = 1.5625;
const PIO2_2 = 0.0081787109375;
const PIO2_3 = 0.00011730194091796875;
const PIO2_4 = 3.1391647326017846e-7;

// (sin(angle), cos(angle)).
fn sin_cos(angle: f32) -> vec2<f32> {
  let n = round(angle * TWO_OVER_PI);
  let y = (((angle - n * PIO2_1) - n * PIO2_2) - n * PIO2_3) - n * PIO2_4;
  let z = y * y;
  let s = y + y * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z +
    z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (u32(i32(n)) & 3u) {
    case 0u: {
      return vec2(s, c);
    }
    case 1u: {
      return vec2(c, -s);
    }
    case 2u: {
      return vec2(-s, -c);
    }
    default: {
      return vec2(-c, s);
    }
  }
}

fn rotate(a: f32, b: f32, c: f32, s: f32) -> vec2<f32> {
  return vec2(a * c - b * s, b * c + a * s);
}
