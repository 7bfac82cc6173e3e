/**
 * A checkpoint as the forward pass wants it on the CPU: every tensor decoded to f32, every linear
 * in nn.Linear's [out][in] layout (GPT-2's Conv1D [in][out] transposed here), and one layer shape
 * for all families:
 *   attention: q [H d][hidden], kv [(2 KV) d][hidden] (k rows then v rows), o [hidden][H d];
 *   MLP: gated (gateUp [2 I][hidden], gate rows then up rows; down) or GELU (fc with the
 *   activation fused; proj).
 * Browser-safe: the caller supplies the tensors by name (src/model/load.ts does so from a folder).
 */
import type { ModelConfig } from '../loading/config';
import type { LinearWeights, ModelWeights, NormWeights, TensorSpec } from '../loading/weights';

export interface CpuLinear {
  /** [outFeatures][inFeatures] */
  weight: Float32Array;
  bias: Float32Array | null;
  inFeatures: number;
  outFeatures: number;
}

export interface CpuNorm {
  weight: Float32Array;
  bias: Float32Array | null;
}

export interface CpuLayer {
  attnNorm: CpuNorm;
  q: CpuLinear;
  kv: CpuLinear;
  o: CpuLinear;
  mlpNorm: CpuNorm;
  /** gated: [gate; up] rows; GELU: fc. */
  mlpIn: CpuLinear;
  /** down (gated) or proj (GELU). */
  mlpOut: CpuLinear;
}

export interface CpuModel {
  config: ModelConfig;
  /** [vocab][hidden] */
  embedTokens: Float32Array;
  /** GPT-2's learned positions [maxPositions][hidden]. */
  positionEmbedding: Float32Array | null;
  layers: CpuLayer[];
  finalNorm: CpuNorm;
  /** null when tied to embedTokens. */
  lmHead: Float32Array | null;
}

/** Returns the f32 values of a tensor by name, in the checkpoint's own layout. */
export type TensorSource = (spec: TensorSpec) => Float32Array;

/** [rows][cols] -> [cols][rows] */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
  }
  return out;
}

function concat(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function linear(read: TensorSource, spec: LinearWeights): CpuLinear {
  const raw = read(spec.weight);
  const weight = spec.layout === 'in-out' ? transpose(raw, spec.inFeatures, spec.outFeatures) : raw;
  return {
    weight,
    bias: spec.bias ? read(spec.bias) : null,
    inFeatures: spec.inFeatures,
    outFeatures: spec.outFeatures,
  };
}

/** Stacks linears with the same input along the output rows (biases zero-filled where absent). */
export function stackLinears(parts: readonly CpuLinear[]): CpuLinear {
  const anyBias = parts.some((p) => p.bias);
  return {
    weight: concat(parts.map((p) => p.weight)),
    bias: anyBias ? concat(parts.map((p) => p.bias ?? new Float32Array(p.outFeatures))) : null,
    inFeatures: parts[0].inFeatures,
    outFeatures: parts.reduce((n, p) => n + p.outFeatures, 0),
  };
}

/** Rows [start, start + count) of a linear. */
function rows(l: CpuLinear, start: number, count: number): CpuLinear {
  return {
    weight: l.weight.slice(start * l.inFeatures, (start + count) * l.inFeatures),
    bias: l.bias ? l.bias.slice(start, start + count) : null,
    inFeatures: l.inFeatures,
    outFeatures: count,
  };
}

function norm(read: TensorSource, spec: NormWeights): CpuNorm {
  return { weight: read(spec.weight), bias: spec.bias ? read(spec.bias) : null };
}

export function buildCpuModel(
  config: ModelConfig,
  weights: ModelWeights,
  read: TensorSource,
): CpuModel {
  const qRows = config.numHeads * config.headDim;
  const kvRows = config.numKvHeads * config.headDim;
  let layers: CpuLayer[];
  let positionEmbedding: Float32Array | null = null;
  if (weights.family === 'gpt2') {
    positionEmbedding = read(weights.positionEmbedding);
    layers = weights.layers.map((layer) => {
      const qkv = linear(read, layer.qkv);
      return {
        attnNorm: norm(read, layer.ln1),
        q: rows(qkv, 0, qRows),
        kv: rows(qkv, qRows, 2 * kvRows),
        o: linear(read, layer.attnOut),
        mlpNorm: norm(read, layer.ln2),
        mlpIn: linear(read, layer.fc),
        mlpOut: linear(read, layer.proj),
      };
    });
  } else {
    layers = weights.layers.map((layer) => ({
      attnNorm: norm(read, layer.inputNorm),
      q: linear(read, layer.q),
      kv: stackLinears([linear(read, layer.k), linear(read, layer.v)]),
      o: linear(read, layer.o),
      mlpNorm: norm(read, layer.postAttentionNorm),
      mlpIn: stackLinears([linear(read, layer.gate), linear(read, layer.up)]),
      mlpOut: linear(read, layer.down),
    }));
  }
  return {
    config,
    embedTokens: read(weights.embedTokens),
    positionEmbedding,
    layers,
    finalNorm: norm(read, weights.finalNorm),
    lmHead: weights.tiedLmHead ? null : read(weights.lmHead),
  };
}
