/**
 * Linear layers, out[t][o] = act(sum_i x[t][i] W[o][i] + bias[o]) (or += into out), with W in
 * nn.Linear's [out][in] layout as f32 or f16 pairs: shaders/model/matvec.wgsl for 1-4 tokens
 * (decode, bandwidth-bound), shaders/model/matmul.wgsl (register- and workgroup-tiled) for more.
 * A weight comes as row chunks that each fit one storage binding (common.ts uploadWeightChunks):
 * one dispatch per chunk writes that chunk's output columns.
 *
 * Fusions that each save a dispatch (model/linear_store.wgsl, matvec.wgsl): splitAt sends output
 * columns from splitAt on to a second buffer (one stacked q | k v weight fills q and kv); and, for
 * the matrix-vector kernel only, gatedInput takes x = silu(gate) * up from a [tokens][2 inFeatures]
 * gate | up row as it loads it (the down projection without a SwiGLU pass), and rmsNorm takes
 * x = RMSNorm(x) (the projections after the norm without a norm pass).
 */
import { bindGroup } from '../../gpu/buffers';
import type { GpuContext } from '../../gpu/context';
import { grid, uniformBuffer, type ModelOp, type WeightChunk, type WeightDtype } from './common';
import { activationReference, type LinearActivation } from './activation';

export interface LinearParams {
  tokens: number;
  inFeatures: number;
  outFeatures: number;
  dtype: WeightDtype;
  /** Element offset of the first input row in x, e.g. the last prompt token for the LM head. */
  inputOffset?: number;
  /** Add the result to out (the residual stream) instead of overwriting it. */
  accumulate?: boolean;
  /** Applied after the bias, before accumulating. */
  activation?: LinearActivation;
  /** Output columns from here on go to buffers.out2 (0 < splitAt < outFeatures). */
  splitAt?: number;
  /** x rows are [gate | up] of 2 inFeatures; the input is silu(gate) * up (up to 4 tokens). */
  gatedInput?: boolean;
  /** The input is RMSNorm(x) with buffers.normWeight (up to 4 tokens, without gatedInput). */
  rmsNorm?: { eps: number };
}

export interface LinearBuffers {
  /** [tokens][inFeatures] f32, from element inputOffset. */
  x: GPUBuffer;
  /** Chunks covering rows 0 .. outFeatures - 1, in order. */
  weight: readonly WeightChunk[];
  /** [outFeatures] f32. */
  bias?: GPUBuffer;
  /** [tokens][outFeatures] f32, or [tokens][splitAt] with splitAt. */
  out: GPUBuffer;
  /** [tokens][outFeatures - splitAt] f32: the columns from splitAt on. */
  out2?: GPUBuffer;
  /** [inFeatures] f32, with params.rmsNorm. */
  normWeight?: GPUBuffer;
}

/** Up to this many tokens take the matrix-vector kernel. */
export const maxMatvecTokens = 4;
const tile = 64;
const maxLanes = 32;
const matvecWorkgroup = 256;

const activationCodes: Record<LinearActivation, number> = { none: 0, gelu_tanh: 1, gelu: 2 };

function validate(params: LinearParams, buffers: LinearBuffers): void {
  const { tokens, inFeatures, outFeatures, dtype, splitAt } = params;
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`linear: bad token count ${tokens}`);
  const multiple = dtype === 'f16' ? 8 : 4;
  if (inFeatures % multiple) {
    throw new Error(`linear: ${dtype} weights need inFeatures % ${multiple} == 0`);
  }
  if ((params.inputOffset ?? 0) % 4) throw new Error('linear: inputOffset must be a multiple of 4');
  if ((splitAt === undefined) !== (buffers.out2 === undefined)) {
    throw new Error('linear: splitAt and out2 go together');
  }
  if (
    splitAt !== undefined &&
    !(Number.isInteger(splitAt) && splitAt > 0 && splitAt < outFeatures)
  ) {
    throw new Error(`linear: splitAt ${splitAt} is not inside 1..${outFeatures - 1}`);
  }
  if (params.gatedInput && tokens > maxMatvecTokens) {
    throw new Error(`linear: gatedInput takes at most ${maxMatvecTokens} tokens`);
  }
  const { rmsNorm } = params;
  if (rmsNorm && (tokens > maxMatvecTokens || params.gatedInput)) {
    throw new Error(`linear: rmsNorm takes at most ${maxMatvecTokens} tokens, without gatedInput`);
  }
  if (Boolean(rmsNorm) !== Boolean(buffers.normWeight)) {
    throw new Error('linear: rmsNorm and normWeight go together');
  }
  let next = 0;
  for (const chunk of buffers.weight) {
    if (chunk.rowStart !== next || chunk.rows < 1) throw new Error('linear: chunks out of order');
    next += chunk.rows;
  }
  if (next !== outFeatures) throw new Error(`linear: chunks cover ${next} of ${outFeatures} rows`);
}

/** Matrix-vector invocations per weight row: a subgroup's worth when shuffles reduce them. */
export function matvecLanes(ctx: GpuContext): number {
  if (!ctx.caps.subgroups) return maxLanes;
  return Math.min(maxLanes, ctx.device.adapterInfo?.subgroupMinSize ?? 4);
}

export function createLinear(
  ctx: GpuContext,
  params: LinearParams,
  buffers: LinearBuffers,
): ModelOp {
  validate(params, buffers);
  const { device } = ctx;
  const { tokens, inFeatures, outFeatures, dtype, splitAt, rmsNorm } = params;
  const matvec = tokens <= maxMatvecTokens;
  const lanes = matvecLanes(ctx);
  // Bindings 0-3: uniforms, x, the weight chunk, out; then the optional ones present, in order.
  const optional = Object.entries({
    OUT2_BINDING: buffers.out2,
    BIAS_BINDING: buffers.bias,
    NORM_WEIGHT_BINDING: buffers.normWeight,
  }).filter((entry): entry is [string, GPUBuffer] => entry[1] !== undefined);
  const defines = {
    W_F16: dtype === 'f16',
    HAS_BIAS: Boolean(buffers.bias),
    ACCUMULATE: Boolean(params.accumulate),
    ACTIVATION: activationCodes[params.activation ?? 'none'],
    SPLIT_OUT: splitAt !== undefined,
    RMS_NORM: Boolean(rmsNorm),
    ...Object.fromEntries(optional.map(([name], i) => [name, 4 + i])),
    ...(matvec
      ? {
          TOKENS: tokens,
          LANES: lanes,
          SUBGROUPS: ctx.caps.subgroups,
          GATED_INPUT: Boolean(params.gatedInput),
        }
      : {}),
  };
  const pipeline = ctx.pipelines.get(matvec ? 'model/matvec' : 'model/matmul', defines);
  const rowVecs = inFeatures / (dtype === 'f16' ? 8 : 4);
  const dispatches = buffers.weight.map((chunk) => {
    const uniforms = uniformBuffer(
      device,
      [
        matvec ? chunk.rows : tokens,
        matvec ? rowVecs : chunk.rows,
        inFeatures,
        splitAt ?? outFeatures,
        chunk.rowStart,
        params.inputOffset ?? 0,
        splitAt ?? outFeatures,
        outFeatures - (splitAt ?? 0),
        rmsNorm?.eps ?? 0,
      ],
      [8],
      'linear params',
    );
    const bound = [uniforms, buffers.x, chunk.buffer, buffers.out, ...optional.map(([, b]) => b)];
    const workgroups: [number, number] = matvec
      ? grid(ctx, Math.ceil(chunk.rows / (matvecWorkgroup / lanes)))
      : [Math.ceil(chunk.rows / tile), Math.ceil(tokens / tile)];
    return { uniforms, group: bindGroup(device, pipeline, bound), workgroups };
  });
  return {
    record: (pass) => {
      pass.setPipeline(pipeline);
      for (const { group, workgroups } of dispatches) {
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(...workgroups);
      }
    },
    dispose: () => dispatches.forEach(({ uniforms }) => uniforms.destroy()),
  };
}

export interface LinearReferenceInput {
  tokens: number;
  inFeatures: number;
  outFeatures: number;
  /** [tokens][inFeatures] */
  x: ArrayLike<number>;
  /** [outFeatures][inFeatures] */
  weight: ArrayLike<number>;
  bias?: ArrayLike<number>;
  activation?: LinearActivation;
  /** [tokens][outFeatures]: the result is added to it (accumulate). */
  residual?: ArrayLike<number>;
}

/** CPU reference, accumulating in float64. */
export function linearReference(input: LinearReferenceInput): Float64Array {
  const { tokens, inFeatures, outFeatures, x, weight, bias, residual } = input;
  const out = new Float64Array(tokens * outFeatures);
  for (let t = 0; t < tokens; t++) {
    for (let o = 0; o < outFeatures; o++) {
      let sum = bias ? bias[o] : 0;
      for (let i = 0; i < inFeatures; i++)
        sum += x[t * inFeatures + i] * weight[o * inFeatures + i];
      sum = activationReference(sum, input.activation ?? 'none');
      out[t * outFeatures + o] = sum + (residual ? residual[t * outFeatures + o] : 0);
    }
  }
  return out;
}
