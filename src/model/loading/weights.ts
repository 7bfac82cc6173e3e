/**
 * Which tensors the forward pass reads, by name and expected shape, per architecture, checked
 * against what the checkpoint holds. Every missing or mis-shaped tensor is reported in one error.
 * Tensors the checkpoint holds beyond these (GPT-2's attn.bias masks, rotary caches) are ignored.
 */
import type { ModelConfig } from './config';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/**
 * out-in: torch nn.Linear, weight [out, in], y = x W^T. in-out: GPT-2's Conv1D, weight [in, out],
 * y = x W.
 */
export type WeightLayout = 'out-in' | 'in-out';

export interface LinearWeights {
  readonly weight: TensorSpec;
  readonly bias: TensorSpec | null;
  readonly layout: WeightLayout;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** RMSNorm has no bias; LayerNorm has one. */
export interface NormWeights {
  readonly weight: TensorSpec;
  readonly bias: TensorSpec | null;
}

/** Llama and Qwen2 (Qwen2: q/k/v biases). */
export interface LlamaLayerWeights {
  readonly inputNorm: NormWeights;
  readonly q: LinearWeights;
  readonly k: LinearWeights;
  readonly v: LinearWeights;
  readonly o: LinearWeights;
  readonly postAttentionNorm: NormWeights;
  readonly gate: LinearWeights;
  readonly up: LinearWeights;
  readonly down: LinearWeights;
}

/** GPT-2: fused QKV (columns q | k | v), Conv1D layout throughout. */
export interface Gpt2LayerWeights {
  readonly ln1: NormWeights;
  readonly qkv: LinearWeights;
  readonly attnOut: LinearWeights;
  readonly ln2: NormWeights;
  readonly fc: LinearWeights;
  readonly proj: LinearWeights;
}

interface CommonWeights {
  /** [vocab, hidden]. */
  readonly embedTokens: TensorSpec;
  readonly finalNorm: NormWeights;
  /** [vocab, hidden], out-in; the embedding itself when tied. */
  readonly lmHead: TensorSpec;
  readonly tiedLmHead: boolean;
}

export type ModelWeights =
  | (CommonWeights & { readonly family: 'llama' | 'qwen2'; readonly layers: LlamaLayerWeights[] })
  | (CommonWeights & {
      readonly family: 'gpt2';
      /** Learned positions, [maxPositions, hidden]. */
      readonly positionEmbedding: TensorSpec;
      readonly layers: Gpt2LayerWeights[];
    });

/** Any name -> shape lookup: a safetensors header's tensors, or combineShards's directory. */
export type TensorShapes = ReadonlyMap<string, { readonly shape: readonly number[] }>;

const formatShape = (shape: readonly number[]): string => `[${shape.join(', ')}]`;

class WeightChecker {
  readonly missing: string[] = [];
  readonly mismatched: string[] = [];

  constructor(private readonly tensors: TensorShapes) {}

  tensor(name: string, shape: readonly number[]): TensorSpec {
    const found = this.tensors.get(name);
    if (!found) this.missing.push(name);
    else if (
      found.shape.length !== shape.length ||
      found.shape.some((dim, i) => dim !== shape[i])
    ) {
      this.mismatched.push(
        `${name} is ${formatShape(found.shape)}, expected ${formatShape(shape)}`,
      );
    }
    return { name, shape };
  }

  linear(
    prefix: string,
    inFeatures: number,
    outFeatures: number,
    bias: boolean,
    layout: WeightLayout = 'out-in',
  ): LinearWeights {
    const shape = layout === 'out-in' ? [outFeatures, inFeatures] : [inFeatures, outFeatures];
    return {
      weight: this.tensor(`${prefix}.weight`, shape),
      bias: bias ? this.tensor(`${prefix}.bias`, [outFeatures]) : null,
      layout,
      inFeatures,
      outFeatures,
    };
  }

  norm(prefix: string, size: number, bias: boolean): NormWeights {
    return {
      weight: this.tensor(`${prefix}.weight`, [size]),
      bias: bias ? this.tensor(`${prefix}.bias`, [size]) : null,
    };
  }

  finish(config: ModelConfig): void {
    if (this.missing.length === 0 && this.mismatched.length === 0) return;
    const parts = [];
    if (this.missing.length > 0) parts.push(`missing: ${this.missing.join(', ')}`);
    if (this.mismatched.length > 0) parts.push(`wrong shape: ${this.mismatched.join('; ')}`);
    throw new Error(
      `weights do not match config.json (${config.architecture}, ${config.numLayers} layers): ${parts.join('. ')}`,
    );
  }
}

function resolveLlama(config: ModelConfig, check: WeightChecker): ModelWeights {
  const { hiddenSize: hidden, headDim, intermediateSize: inter } = config;
  const qSize = config.numHeads * headDim;
  const kvSize = config.numKvHeads * headDim;
  const embedTokens = check.tensor('model.embed_tokens.weight', [config.vocabSize, hidden]);
  const layers = Array.from({ length: config.numLayers }, (_, i): LlamaLayerWeights => {
    const p = `model.layers.${i}`;
    return {
      inputNorm: check.norm(`${p}.input_layernorm`, hidden, false),
      q: check.linear(`${p}.self_attn.q_proj`, hidden, qSize, config.qkvBias),
      k: check.linear(`${p}.self_attn.k_proj`, hidden, kvSize, config.qkvBias),
      v: check.linear(`${p}.self_attn.v_proj`, hidden, kvSize, config.qkvBias),
      o: check.linear(`${p}.self_attn.o_proj`, qSize, hidden, config.attentionOutputBias),
      postAttentionNorm: check.norm(`${p}.post_attention_layernorm`, hidden, false),
      gate: check.linear(`${p}.mlp.gate_proj`, hidden, inter, config.mlpBias),
      up: check.linear(`${p}.mlp.up_proj`, hidden, inter, config.mlpBias),
      down: check.linear(`${p}.mlp.down_proj`, inter, hidden, config.mlpBias),
    };
  });
  return {
    family: config.family === 'qwen2' ? 'qwen2' : 'llama',
    embedTokens,
    layers,
    finalNorm: check.norm('model.norm', hidden, false),
    lmHead: config.tieWordEmbeddings
      ? embedTokens
      : check.tensor('lm_head.weight', [config.vocabSize, hidden]),
    tiedLmHead: config.tieWordEmbeddings,
  };
}

/** GPT-2 checkpoints name tensors with 'transformer.' (GPT2LMHeadModel) or without (the Hub's gpt2). */
function gpt2Prefix(tensors: TensorShapes): string {
  return tensors.has('transformer.wte.weight') ? 'transformer.' : '';
}

function resolveGpt2(config: ModelConfig, check: WeightChecker, prefix: string): ModelWeights {
  const { hiddenSize: hidden, intermediateSize: inter } = config;
  const embedTokens = check.tensor(`${prefix}wte.weight`, [config.vocabSize, hidden]);
  const positionEmbedding = check.tensor(`${prefix}wpe.weight`, [
    config.maxPositionEmbeddings,
    hidden,
  ]);
  const layers = Array.from({ length: config.numLayers }, (_, i): Gpt2LayerWeights => {
    const p = `${prefix}h.${i}`;
    return {
      ln1: check.norm(`${p}.ln_1`, hidden, true),
      qkv: check.linear(`${p}.attn.c_attn`, hidden, 3 * hidden, true, 'in-out'),
      attnOut: check.linear(`${p}.attn.c_proj`, hidden, hidden, true, 'in-out'),
      ln2: check.norm(`${p}.ln_2`, hidden, true),
      fc: check.linear(`${p}.mlp.c_fc`, hidden, inter, true, 'in-out'),
      proj: check.linear(`${p}.mlp.c_proj`, inter, hidden, true, 'in-out'),
    };
  });
  return {
    family: 'gpt2',
    embedTokens,
    positionEmbedding,
    layers,
    finalNorm: check.norm(`${prefix}ln_f`, hidden, true),
    lmHead: config.tieWordEmbeddings
      ? embedTokens
      : check.tensor('lm_head.weight', [config.vocabSize, hidden]),
    tiedLmHead: config.tieWordEmbeddings,
  };
}

/** Resolves and checks every tensor the forward pass needs; throws listing all problems at once. */
export function resolveWeights(config: ModelConfig, tensors: TensorShapes): ModelWeights {
  const check = new WeightChecker(tensors);
  const weights =
    config.family === 'gpt2'
      ? resolveGpt2(config, check, gpt2Prefix(tensors))
      : resolveLlama(config, check);
  check.finish(config);
  return weights;
}

/** Every distinct tensor the weights reference (the tied head once): what a loader must fetch. */
export function requiredTensors(weights: ModelWeights): TensorSpec[] {
  const specs = new Map<string, TensorSpec>();
  const add = (spec: TensorSpec | null): void => {
    if (spec) specs.set(spec.name, spec);
  };
  const addLinear = (linear: LinearWeights): void => {
    add(linear.weight);
    add(linear.bias);
  };
  const addNorm = (norm: NormWeights): void => {
    add(norm.weight);
    add(norm.bias);
  };
  add(weights.embedTokens);
  if (weights.family === 'gpt2') {
    add(weights.positionEmbedding);
    for (const layer of weights.layers) {
      addNorm(layer.ln1);
      [layer.qkv, layer.attnOut, layer.fc, layer.proj].forEach(addLinear);
      addNorm(layer.ln2);
    }
  } else {
    for (const layer of weights.layers) {
      addNorm(layer.inputNorm);
      [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down].forEach(addLinear);
      addNorm(layer.postAttentionNorm);
    }
  }
  addNorm(weights.finalNorm);
  add(weights.lmHead);
  return [...specs.values()];
}
