// The epilogue the linear kernels (matvec.wgsl, matmul.wgsl) share: bias, activation, then the
// store (or += with ACCUMULATE) of out[t][col]. With SPLIT_OUT the output columns from split_col on
// go to a second buffer, out2[t][col - split_col]: one dispatch of a stacked weight (q rows, then k
// and v rows) fills two activations that the rest of the pass reads apart.
fn store_output(t: u32, col: u32, sum: f32) {
  var y = sum;
#if HAS_BIAS
  y += bias[col];
#endif
  y = epilogue_activation(y);
#if SPLIT_OUT
  if (col >= params.split_col) {
    let dst2 = t * params.out2_stride + col - params.split_col;
#if ACCUMULATE
    y += out2[dst2];
#endif
    out2[dst2] = y;
    return;
  }
#endif
  let dst = t * params.out_stride + col;
#if ACCUMULATE
  y += out[dst];
#endif
  out[dst] = y;
}
