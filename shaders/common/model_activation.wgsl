// Pointwise activations of the forward pass, shared by the activation kernels and the linear
// epilogues (GPT-2's c_fc applies gelu_new in the matmul that produces it).
const SQRT_2_OVER_PI = 0.7978845608028654;
const INV_SQRT_2 = 0.7071067811865476;

fn silu(x: f32) -> f32 {
  return x / (1.0 + exp(-x));
}

// gelu_new / gelu_pytorch_tanh. tanh saturates to +-1 in f32 beyond |u| = 10; clamping keeps
// implementations that evaluate tanh through exp from overflowing to NaN.
fn gelu_tanh(x: f32) -> f32 {
  let u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(u, -10.0, 10.0)));
}

// erf by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7): WGSL has no erf builtin.
fn erf_approx(x: f32) -> f32 {
  let a = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * a);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 +
    t * 1.061405429))));
  return sign(x) * (1.0 - poly * exp(-a * a));
}

// Exact GELU (nn.GELU(), "gelu"): 0.5 x (1 + erf(x / sqrt(2))).
fn gelu_erf(x: f32) -> f32 {
  return 0.5 * x * (1.0 + erf_approx(x * INV_SQRT_2));
}

// The epilogue activation a linear kernel applies, chosen by the ACTIVATION define
// (0: none, 1: gelu_tanh, 2: gelu_erf).
fn epilogue_activation(x: f32) -> f32 {
  if (ACTIVATION == 1) {
    return gelu_tanh(x);
  }
  if (ACTIVATION == 2) {
    return gelu_erf(x);
  }
  return x;
}
