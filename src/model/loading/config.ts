/**
 * config.json -> one ModelConfig for the architectures the forward pass supports. Reads both the
 * Hub's transformers v4 spelling (rope_theta, rope_scaling, torch_dtype) and the v5 one
 * (rope_parameters {rope_type, rope_theta, ...}, dtype), with transformers' defaults per
 * architecture. Also RoPE inverse frequencies (default and llama3), computed as transformers does.
 */

export type ModelFamily = 'llama' | 'qwen2' | 'gpt2';

export const SUPPORTED_ARCHITECTURES: Readonly<Record<string, ModelFamily>> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  GPT2LMHeadModel: 'gpt2',
};

const MODEL_TYPE_ARCHITECTURE: Readonly<Record<string, string>> = {
  llama: 'LlamaForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  gpt2: 'GPT2LMHeadModel',
};

const SUPPORTED_LIST =
  'LlamaForCausalLM (Llama 3.x, SmolLM2, TinyLlama), Qwen2ForCausalLM (Qwen2, Qwen2.5), GPT2LMHeadModel (GPT-2)';

/** silu: Llama/Qwen2 gated MLP; gelu_tanh: GPT-2's gelu_new; gelu: exact (erf). */
export type Activation = 'silu' | 'gelu' | 'gelu_tanh';

export type ConfigDtype = 'float32' | 'float16' | 'bfloat16';

export interface Llama3RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMaxPositionEmbeddings: number;
}

export type RopeConfig =
  | { readonly type: 'default'; readonly theta: number }
  | ({ readonly type: 'llama3'; readonly theta: number } & Llama3RopeScaling);

export interface ModelConfig {
  readonly family: ModelFamily;
  /** The transformers class, e.g. 'LlamaForCausalLM'. */
  readonly architecture: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  /** May differ from hiddenSize / numHeads when config.json sets head_dim. */
  readonly headDim: number;
  readonly maxPositionEmbeddings: number;
  readonly norm: 'rmsnorm' | 'layernorm';
  readonly normEps: number;
  readonly activation: Activation;
  /** gate/up/down (Llama, Qwen2) or fc/proj (GPT-2). */
  readonly gatedMlp: boolean;
  /** null: learned absolute positions (GPT-2). */
  readonly rope: RopeConfig | null;
  readonly qkvBias: boolean;
  readonly attentionOutputBias: boolean;
  readonly mlpBias: boolean;
  readonly tieWordEmbeddings: boolean;
  /** The dtype the checkpoint was saved in, when config.json says. */
  readonly dtype: ConfigDtype | null;
  readonly bosTokenId: number | null;
  readonly eosTokenIds: readonly number[];
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

class ConfigReader {
  constructor(
    private readonly raw: Raw,
    private readonly where: string,
  ) {}

  fail(message: string): never {
    throw new Error(`${this.where}: ${message}`);
  }

  /** The first of the keys present with a non-null value. */
  private find(keys: readonly string[]): [string, unknown] | null {
    for (const key of keys) {
      const value = this.raw[key];
      if (value !== undefined && value !== null) return [key, value];
    }
    return null;
  }

  positiveInt(keys: readonly string[], fallback?: number): number {
    const found = this.find(keys);
    if (!found) {
      if (fallback !== undefined) return fallback;
      return this.fail(`missing ${keys.join(' / ')}`);
    }
    const [key, value] = found;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      return this.fail(`${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  positiveNumber(keys: readonly string[], fallback: number): number {
    const found = this.find(keys);
    if (!found) return fallback;
    const [key, value] = found;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      return this.fail(`${key} must be a positive number, got ${JSON.stringify(value)}`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const found = this.find([key]);
    if (!found) return fallback;
    if (typeof found[1] !== 'boolean') {
      return this.fail(`${key} must be true or false, got ${JSON.stringify(found[1])}`);
    }
    return found[1];
  }

  string(key: string, fallback: string): string {
    const found = this.find([key]);
    if (!found) return fallback;
    if (typeof found[1] !== 'string') {
      return this.fail(`${key} must be a string, got ${JSON.stringify(found[1])}`);
    }
    return found[1];
  }

  tokenIds(key: string): number[] {
    const found = this.find([key]);
    if (!found) return [];
    const ids = Array.isArray(found[1]) ? found[1] : [found[1]];
    if (!ids.every((id) => typeof id === 'number' && Number.isSafeInteger(id) && id >= 0)) {
      return this.fail(
        `${key} must be a token id or a list of them, got ${JSON.stringify(found[1])}`,
      );
    }
    return ids as number[];
  }

  dtype(): ConfigDtype | null {
    const found = this.find(['dtype', 'torch_dtype']);
    if (!found) return null;
    const value = found[1];
    if (value === 'float32' || value === 'float16' || value === 'bfloat16') return value;
    return this.fail(`${found[0]} ${JSON.stringify(value)} is not float32, float16 or bfloat16`);
  }

  get(key: string): unknown {
    return this.raw[key];
  }

  nested(raw: Raw, key: string): ConfigReader {
    return new ConfigReader(raw, `${this.where} ${key}`);
  }
}

function resolveArchitecture(raw: Raw): string {
  const { architectures, model_type: modelType } = raw;
  if (Array.isArray(architectures) && architectures.length > 0) {
    const first: unknown = architectures[0];
    if (typeof first === 'string' && Object.hasOwn(SUPPORTED_ARCHITECTURES, first)) return first;
    throw new Error(
      `config.json: unsupported architecture ${JSON.stringify(first)}; supported: ${SUPPORTED_LIST}`,
    );
  }
  if (typeof modelType === 'string' && Object.hasOwn(MODEL_TYPE_ARCHITECTURE, modelType)) {
    return MODEL_TYPE_ARCHITECTURE[modelType];
  }
  throw new Error(
    `config.json: unsupported model (no architectures, model_type ${JSON.stringify(modelType)}); supported: ${SUPPORTED_LIST}`,
  );
}

/** Rotating only part of each head (v4: top level, v5: in rope_parameters) is not supported. */
function checkFullRotary(reader: ConfigReader, value: unknown): void {
  if (value !== undefined && value !== null && value !== 1) {
    reader.fail(`partial_rotary_factor ${JSON.stringify(value)} is not supported`);
  }
}

function ropeFromParameters(reader: ConfigReader, params: Raw, theta: number): RopeConfig {
  checkFullRotary(reader, params.partial_rotary_factor);
  const typeValue = params.rope_type ?? params.type ?? 'default';
  if (typeValue === 'default') return { type: 'default', theta };
  if (typeValue !== 'llama3') {
    return reader.fail(
      `RoPE type ${JSON.stringify(typeValue)} is not supported (supported: default, llama3)`,
    );
  }
  const field = (key: string): number => {
    const value = params[key];
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      return reader.fail(`llama3 RoPE needs a positive ${key}, got ${JSON.stringify(value)}`);
    }
    return value;
  };
  const scaling = {
    factor: field('factor'),
    lowFreqFactor: field('low_freq_factor'),
    highFreqFactor: field('high_freq_factor'),
    originalMaxPositionEmbeddings: field('original_max_position_embeddings'),
  };
  if (scaling.highFreqFactor <= scaling.lowFreqFactor) {
    return reader.fail('llama3 RoPE needs high_freq_factor > low_freq_factor');
  }
  return { type: 'llama3', theta, ...scaling };
}

/** v4: rope_theta + rope_scaling (null for default); v5: rope_parameters. Both given: must agree. */
function parseRope(reader: ConfigReader, defaultTheta: number): RopeConfig {
  const scaling = reader.get('rope_scaling');
  const parameters = reader.get('rope_parameters');
  if (scaling !== undefined && scaling !== null && !isObject(scaling)) {
    return reader.fail('rope_scaling must be an object or null');
  }
  if (parameters !== undefined && parameters !== null && !isObject(parameters)) {
    return reader.fail('rope_parameters must be an object');
  }
  const topTheta = reader.positiveNumber(['rope_theta'], defaultTheta);
  if (!parameters) return ropeFromParameters(reader, scaling ?? {}, topTheta);
  const nested = reader.nested(parameters, 'rope_parameters');
  const rope = ropeFromParameters(
    nested,
    parameters,
    nested.positiveNumber(['rope_theta'], topTheta),
  );
  const legacy = isObject(scaling) ? ropeFromParameters(reader, scaling, rope.theta) : rope;
  const thetaClash = reader.get('rope_theta') != null && rope.theta !== topTheta;
  if (thetaClash || JSON.stringify(legacy) !== JSON.stringify(rope)) {
    return reader.fail('rope_parameters disagrees with rope_theta / rope_scaling');
  }
  return rope;
}

function parseLlamaLike(reader: ConfigReader, architecture: string): ModelConfig {
  const family = SUPPORTED_ARCHITECTURES[architecture];
  const isQwen = family === 'qwen2';
  const hiddenSize = reader.positiveInt(['hidden_size']);
  const numHeads = reader.positiveInt(['num_attention_heads']);
  const numKvHeads = reader.positiveInt(['num_key_value_heads'], numHeads);
  if (numHeads % numKvHeads !== 0) {
    reader.fail(
      `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`,
    );
  }
  if (!reader.get('head_dim') && hiddenSize % numHeads !== 0) {
    reader.fail(`hidden_size ${hiddenSize} is not a multiple of num_attention_heads ${numHeads}`);
  }
  const headDim = reader.positiveInt(['head_dim'], hiddenSize / numHeads);
  if (headDim % 2 !== 0) reader.fail(`head_dim ${headDim} must be even for RoPE`);
  checkFullRotary(reader, reader.get('partial_rotary_factor'));
  const activation = reader.string('hidden_act', 'silu');
  if (activation !== 'silu') reader.fail(`hidden_act ${activation} is not supported (silu only)`);
  if (isQwen) {
    if (reader.boolean('use_sliding_window', false)) {
      reader.fail('use_sliding_window is not supported');
    }
    const layerTypes = reader.get('layer_types');
    if (Array.isArray(layerTypes) && layerTypes.some((type) => type !== 'full_attention')) {
      reader.fail('layer_types other than full_attention are not supported');
    }
  }
  const attentionBias = isQwen ? true : reader.boolean('attention_bias', false);
  return {
    family,
    architecture,
    vocabSize: reader.positiveInt(['vocab_size']),
    hiddenSize,
    intermediateSize: reader.positiveInt(['intermediate_size']),
    numLayers: reader.positiveInt(['num_hidden_layers']),
    numHeads,
    numKvHeads,
    headDim,
    maxPositionEmbeddings: reader.positiveInt(['max_position_embeddings'], isQwen ? 32768 : 2048),
    norm: 'rmsnorm',
    normEps: reader.positiveNumber(['rms_norm_eps'], 1e-6),
    activation: 'silu',
    gatedMlp: true,
    rope: parseRope(reader, 10000),
    qkvBias: attentionBias,
    attentionOutputBias: isQwen ? false : attentionBias,
    mlpBias: isQwen ? false : reader.boolean('mlp_bias', false),
    tieWordEmbeddings: reader.boolean('tie_word_embeddings', false),
    dtype: reader.dtype(),
    bosTokenId: reader.tokenIds('bos_token_id')[0] ?? null,
    eosTokenIds: reader.tokenIds('eos_token_id'),
  };
}

const GPT2_ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  gelu: 'gelu',
};

function parseGpt2(reader: ConfigReader, architecture: string): ModelConfig {
  const hiddenSize = reader.positiveInt(['n_embd', 'hidden_size']);
  const numHeads = reader.positiveInt(['n_head', 'num_attention_heads']);
  if (hiddenSize % numHeads !== 0) {
    reader.fail(`n_embd ${hiddenSize} is not a multiple of n_head ${numHeads}`);
  }
  const activationName = reader.string('activation_function', 'gelu_new');
  const activation = Object.hasOwn(GPT2_ACTIVATIONS, activationName)
    ? GPT2_ACTIVATIONS[activationName]
    : null;
  if (!activation) {
    reader.fail(`activation_function ${activationName} is not supported (gelu_new, gelu)`);
  }
  if (!reader.boolean('scale_attn_weights', true)) {
    reader.fail('scale_attn_weights false is not supported');
  }
  if (reader.boolean('scale_attn_by_inverse_layer_idx', false)) {
    reader.fail('scale_attn_by_inverse_layer_idx is not supported');
  }
  return {
    family: 'gpt2',
    architecture,
    vocabSize: reader.positiveInt(['vocab_size']),
    hiddenSize,
    intermediateSize: reader.positiveInt(['n_inner'], 4 * hiddenSize),
    numLayers: reader.positiveInt(['n_layer', 'num_hidden_layers']),
    numHeads,
    numKvHeads: numHeads,
    headDim: hiddenSize / numHeads,
    maxPositionEmbeddings: reader.positiveInt(['n_positions', 'max_position_embeddings']),
    norm: 'layernorm',
    normEps: reader.positiveNumber(['layer_norm_epsilon'], 1e-5),
    activation,
    gatedMlp: false,
    rope: null,
    qkvBias: true,
    attentionOutputBias: true,
    mlpBias: true,
    tieWordEmbeddings: reader.boolean('tie_word_embeddings', true),
    dtype: reader.dtype(),
    bosTokenId: reader.tokenIds('bos_token_id')[0] ?? null,
    eosTokenIds: reader.tokenIds('eos_token_id'),
  };
}

/** Normalises config.json (text or parsed) or throws naming the field, or the supported models. */
export function parseModelConfig(json: unknown): ModelConfig {
  let raw = json;
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json);
    } catch (error) {
      throw new Error(`config.json: not valid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (!isObject(raw)) throw new Error('config.json: not a JSON object');
  const architecture = resolveArchitecture(raw);
  const reader = new ConfigReader(raw, `config.json (${architecture})`);
  return SUPPORTED_ARCHITECTURES[architecture] === 'gpt2'
    ? parseGpt2(reader, architecture)
    : parseLlamaLike(reader, architecture);
}

const f32 = Math.fround;

/**
 * RoPE inverse frequencies, headDim / 2 of them, as transformers' _compute_default_rope_parameters
 * and _compute_llama3_parameters compute them in float32 (every step rounded to f32).
 */
export function computeRopeInvFreq(config: ModelConfig): Float32Array {
  const { rope, headDim } = config;
  if (!rope) throw new Error(`${config.architecture} uses learned positions, not RoPE`);
  const theta = f32(rope.theta);
  const invFreq = new Float32Array(headDim / 2);
  for (let i = 0; i < invFreq.length; i++) {
    invFreq[i] = f32(1 / f32(theta ** f32((2 * i) / headDim)));
  }
  if (rope.type === 'default') return invFreq;
  const factor = f32(rope.factor);
  const low = f32(rope.lowFreqFactor);
  const oldContext = f32(rope.originalMaxPositionEmbeddings);
  const lowFreqWavelen = f32(rope.originalMaxPositionEmbeddings / rope.lowFreqFactor);
  const highFreqWavelen = f32(rope.originalMaxPositionEmbeddings / rope.highFreqFactor);
  const factorSpan = f32(rope.highFreqFactor - rope.lowFreqFactor);
  const twoPi = f32(2 * Math.PI);
  for (let i = 0; i < invFreq.length; i++) {
    const wavelen = f32(twoPi / invFreq[i]);
    const scaled = wavelen > lowFreqWavelen ? f32(invFreq[i] / factor) : invFreq[i];
    if (wavelen < highFreqWavelen || wavelen > lowFreqWavelen) {
      invFreq[i] = scaled;
      continue;
    }
    const smooth = f32(f32(f32(oldContext / wavelen) - low) / factorSpan);
    invFreq[i] = f32(f32(f32(f32(1 - smooth) * scaled) / factor) + f32(smooth * scaled));
  }
  return invFreq;
}
