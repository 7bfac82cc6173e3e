import { describe, expect, it } from 'vitest';
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../src/gpu/f16';
import { computeRopeInvFreq, parseModelConfig } from '../../src/model/loading/config';
import type { ModelConfig } from '../../src/model/loading/config';
import {
  combineShards,
  encodeFloat32,
  float32ToBfloat16Bits,
  getTensor,
  missingShardFiles,
  parseSafetensors,
  parseSafetensorsHeader,
  parseShardIndex,
  safetensorsHeaderSize,
  serializeSafetensors,
  singleFileDirectory,
  tensorToFloat32,
  tensorView,
} from '../../src/model/loading/safetensors';
import type { SafetensorsDtype, TensorToWrite } from '../../src/model/loading/safetensors';
import { loadModelFiles, type ModelFileReader } from '../../src/model/loading/files';
import { requiredTensors, resolveWeights } from '../../src/model/loading/weights';
import type { TensorShapes } from '../../src/model/loading/weights';
import { randomFloats } from '../support/random';

function bufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer;
}

function tensorOf(
  name: string,
  shape: number[],
  dtype: SafetensorsDtype,
  values: ArrayLike<number>,
): TensorToWrite {
  return { name, dtype, shape, bytes: encodeFloat32(values, dtype) };
}

/** A file with an arbitrary header (object or raw text) and `dataBytes` zero bytes of data. */
function rawFile(header: unknown, dataBytes: number): ArrayBuffer {
  const json = new TextEncoder().encode(
    typeof header === 'string' ? header : JSON.stringify(header),
  );
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out.buffer;
}

function bf16Reference(value: number): number {
  const bits = new Uint32Array(new Float32Array([value]).buffer)[0];
  const rounded = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  return new Float32Array(new Uint32Array([rounded << 16]).buffer)[0];
}

describe('safetensors: round trip', () => {
  const values = randomFloats(24, 7, 3);

  it.each<SafetensorsDtype>(['F32', 'F16', 'BF16'])('writes and reads %s', (dtype) => {
    const bytes = serializeSafetensors([tensorOf('w', [4, 6], dtype, values)], { format: 'pt' });
    const file = parseSafetensors(bufferOf(bytes), 'model.safetensors');
    expect(file.metadata).toEqual({ format: 'pt' });
    expect(file.dataOffset % 8).toBe(0);
    const info = file.tensors.get('w');
    expect(info).toMatchObject({
      dtype,
      shape: [4, 6],
      dataOffsets: [0, bytes.byteLength - 8 - file.headerLength],
    });
    const decoded = tensorToFloat32(getTensor(file, 'w'));
    const expected = Array.from(values, (v) =>
      dtype === 'F32'
        ? Math.fround(v)
        : dtype === 'F16'
          ? float16BitsToFloat32(float32ToFloat16Bits(v))
          : bf16Reference(v),
    );
    expect(Array.from(decoded)).toEqual(expected);
  });

  it('decodes known F16 and BF16 bit patterns', () => {
    const f16 = new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000]);
    const bf16 = new Uint16Array([0x3f80, 0xc000, 0x7f80, 0x4049, 0x0001, 0xff80]);
    const file = parseSafetensors(
      bufferOf(
        serializeSafetensors([
          { name: 'h', dtype: 'F16', shape: [6], bytes: new Uint8Array(f16.buffer) },
          { name: 'b', dtype: 'BF16', shape: [2, 3], bytes: new Uint8Array(bf16.buffer) },
        ]),
      ),
      'bits.safetensors',
    );
    expect(Array.from(tensorToFloat32(getTensor(file, 'h')))).toEqual([
      1,
      -2,
      65504,
      2 ** -24,
      Infinity,
      -0,
    ]);
    expect(Array.from(tensorToFloat32(getTensor(file, 'b')))).toEqual([
      1,
      -2,
      Infinity,
      3.140625,
      new Float32Array(new Uint32Array([0x10000]).buffer)[0],
      -Infinity,
    ]);
  });

  it('rounds to nearest even when encoding BF16', () => {
    expect(float32ToBfloat16Bits(1 + 2 ** -8)).toBe(0x3f80);
    expect(float32ToBfloat16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82);
    expect(float32ToBfloat16Bits(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(float32ToBfloat16Bits(NaN) & 0x7fc0).toBe(0x7fc0);
  });

  it('decodes tensors at misaligned offsets and keeps several tensors apart', () => {
    const a = [1.5, -2.25, 3];
    const b = randomFloats(5, 3);
    const c = [0.5, 0.25];
    const file = parseSafetensors(
      bufferOf(
        serializeSafetensors([
          tensorOf('a', [3], 'F16', a),
          tensorOf('b', [5], 'F32', b),
          tensorOf('empty', [0, 4], 'F32', []),
          tensorOf('c', [2], 'BF16', c),
        ]),
      ),
      'mixed.safetensors',
    );
    expect(file.tensors.get('b')?.byteOffset).toBe(file.dataOffset + 6);
    expect(Array.from(tensorToFloat32(getTensor(file, 'a')))).toEqual(a);
    expect(Array.from(tensorToFloat32(getTensor(file, 'b')))).toEqual(Array.from(b));
    expect(tensorToFloat32(getTensor(file, 'empty'))).toHaveLength(0);
    expect(Array.from(tensorToFloat32(getTensor(file, 'c')))).toEqual(c);
    expect(() => getTensor(file, 'd')).toThrow("mixed.safetensors: no tensor 'd'");
  });

  it('reads the header alone, then a tensor by its byte range', () => {
    const values = randomFloats(12, 11);
    const bytes = serializeSafetensors([
      tensorOf('x', [12], 'F32', values),
      tensorOf('y', [3, 4], 'BF16', values),
    ]);
    const needed = safetensorsHeaderSize(bytes.subarray(0, 8), 'big.safetensors', bytes.byteLength);
    const header = parseSafetensorsHeader(
      bytes.subarray(0, needed),
      bytes.byteLength,
      'big.safetensors',
    );
    expect(header.tensors).toEqual(parseSafetensors(bufferOf(bytes), 'big.safetensors').tensors);
    const info = header.tensors.get('y');
    if (!info) throw new Error('y missing');
    const range = bytes.slice(info.byteOffset, info.byteOffset + info.byteLength);
    expect(Array.from(tensorToFloat32(tensorView(info, range)))).toEqual(
      Array.from(values, bf16Reference),
    );
    expect(() => tensorView(info, range.subarray(1))).toThrow(
      "tensor 'y': got 23 bytes, expected 24",
    );
  });

  it('rejects tensors whose bytes do not match on write', () => {
    expect(() =>
      serializeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], bytes: new Uint8Array(4) }]),
    ).toThrow("tensor 'w' has 4 bytes, shape [2] of F32 needs 8");
    expect(() =>
      serializeSafetensors([tensorOf('w', [1], 'F32', [1]), tensorOf('w', [1], 'F32', [1])]),
    ).toThrow("duplicate or reserved tensor name 'w'");
  });
});

describe('safetensors: malformed files', () => {
  const entry = (dtype: string, shape: unknown, offsets: unknown) => ({
    dtype,
    shape,
    data_offsets: offsets,
  });
  const parse = (buffer: ArrayBuffer) => parseSafetensors(buffer, 'bad.safetensors');

  it('rejects a truncated header', () => {
    expect(() => parse(new Uint8Array([1, 0, 0]).buffer)).toThrow(
      'bad.safetensors: truncated header: 3 bytes, need at least 8',
    );
    expect(() => parse(rawFile('', 0))).toThrow('header length 0 is too small for a JSON object');
    const file = new Uint8Array(rawFile({}, 0));
    expect(() => parseSafetensorsHeader(file.subarray(0, 9), 100, 'bad.safetensors')).toThrow(
      'bad.safetensors: truncated header: have 9 bytes, the header needs 10',
    );
  });

  it('rejects a header length beyond the file or the cap', () => {
    const bytes = new Uint8Array(rawFile({}, 0));
    new DataView(bytes.buffer).setBigUint64(0, 1000n, true);
    expect(() => parse(bytes.buffer)).toThrow(
      'bad.safetensors: header length 1000 bytes runs past the end of the file (10 bytes)',
    );
    new DataView(bytes.buffer).setBigUint64(0, 2n ** 40n, true);
    expect(() => parse(bytes.buffer)).toThrow(
      `header length ${2 ** 40} bytes exceeds the 100000000-byte limit`,
    );
    expect(() => safetensorsHeaderSize(bytes, 'bad.safetensors')).toThrow('exceeds');
  });

  it('rejects bad JSON and non-object headers', () => {
    expect(() => parse(rawFile('{"w": {', 0))).toThrow('bad.safetensors: header is not valid JSON');
    expect(() => parse(rawFile('[1, 2]', 0))).toThrow(
      'bad.safetensors: header JSON is not an object',
    );
    const invalidUtf8 = new Uint8Array(rawFile('{"\u00e9": 1}', 0));
    invalidUtf8[11] = 0xff;
    expect(() => parse(invalidUtf8.buffer)).toThrow('bad.safetensors: header is not valid UTF-8');
    expect(() => parse(rawFile({ __metadata__: { n: 1 } }, 0))).toThrow(
      "__metadata__ value for 'n' is not a string",
    );
  });

  it('rejects unknown and unsupported dtypes, naming the tensor', () => {
    expect(() => parse(rawFile({ w: entry('Q4', [2], [0, 1]) }, 1))).toThrow(
      "bad.safetensors: tensor 'w': unknown dtype Q4 (supported: F32, F16, BF16)",
    );
    expect(() => parse(rawFile({ w: entry('toString', [2], [0, 1]) }, 1))).toThrow(
      "bad.safetensors: tensor 'w': unknown dtype toString",
    );
    expect(() => parse(rawFile({ ids: entry('I64', [2], [0, 16]) }, 16))).toThrow(
      "bad.safetensors: tensor 'ids': unsupported dtype I64 (supported: F32, F16, BF16)",
    );
  });

  it('rejects bad shapes and shape/size mismatches', () => {
    expect(() => parse(rawFile({ w: entry('F32', [2, -1], [0, 8]) }, 8))).toThrow(
      "tensor 'w': shape[1] = -1 is not a non-negative integer",
    );
    expect(() => parse(rawFile({ w: entry('F32', [1.5], [0, 8]) }, 8))).toThrow(
      "tensor 'w': shape[0] = 1.5 is not a non-negative integer",
    );
    expect(() => parse(rawFile({ w: entry('F32', 4, [0, 16]) }, 16))).toThrow(
      "tensor 'w': shape is missing or not an array",
    );
    expect(() => parse(rawFile({ w: entry('F16', [2, 3], [0, 8]) }, 8))).toThrow(
      "bad.safetensors: tensor 'w': shape [2, 3] of F16 needs 12 bytes but data_offsets [0, 8] span 8",
    );
  });

  it('rejects offsets out of range, reversed or malformed', () => {
    expect(() => parse(rawFile({ w: entry('F32', [4], [0, 16]) }, 8))).toThrow(
      "bad.safetensors: tensor 'w': data_offsets [0, 16] out of range: the data section has 8 bytes",
    );
    expect(() => parse(rawFile({ w: entry('F32', [0], [8, 4]) }, 8))).toThrow(
      "tensor 'w': data_offsets [8, 4] end before begin",
    );
    expect(() => parse(rawFile({ w: entry('F32', [1], [0]) }, 4))).toThrow(
      "tensor 'w': data_offsets must be two non-negative integers",
    );
  });

  it('rejects overlapping tensors, holes and uncovered trailing bytes', () => {
    const overlapping = { a: entry('F32', [2], [0, 8]), b: entry('F32', [2], [4, 12]) };
    expect(() => parse(rawFile(overlapping, 12))).toThrow(
      "bad.safetensors: tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]",
    );
    const hole = { b: entry('F32', [1], [8, 12]), a: entry('F32', [1], [0, 4]) };
    expect(() => parse(rawFile(hole, 12))).toThrow(
      "tensor 'b' starts at 8, leaving a hole after byte 4 of the data section",
    );
    expect(() => parse(rawFile({ a: entry('F32', [1], [0, 4]) }, 6))).toThrow(
      'bad.safetensors: the tensors cover 4 bytes but the data section has 6',
    );
  });

  it('accepts tensors listed out of offset order', () => {
    const file = parse(rawFile({ b: entry('F32', [1], [4, 8]), a: entry('F16', [2], [0, 4]) }, 8));
    expect([...file.tensors.keys()]).toEqual(['b', 'a']);
  });
});

describe('safetensors: sharded models', () => {
  const shard1 = parseSafetensors(
    bufferOf(
      serializeSafetensors([tensorOf('a', [2], 'F32', [1, 2]), tensorOf('b', [1], 'F16', [3])]),
    ),
    'model-00001-of-00002.safetensors',
  );
  const shard2 = parseSafetensors(
    bufferOf(serializeSafetensors([tensorOf('c', [2, 2], 'BF16', [4, 5, 6, 7])])),
    'model-00002-of-00002.safetensors',
  );
  const indexJson = JSON.stringify({
    metadata: { total_size: 18 },
    weight_map: {
      a: 'model-00001-of-00002.safetensors',
      b: 'model-00001-of-00002.safetensors',
      c: 'model-00002-of-00002.safetensors',
    },
  });

  it('joins shards through the index', () => {
    const index = parseShardIndex(indexJson);
    expect(index.files).toEqual([
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
    expect(index.metadata).toEqual({ total_size: 18 });
    const directory = combineShards(
      index,
      new Map([
        [shard1.fileName, shard1],
        [shard2.fileName, shard2],
      ]),
    );
    expect([...directory.keys()]).toEqual(['a', 'b', 'c']);
    expect(directory.get('c')).toMatchObject({
      file: shard2.fileName,
      dtype: 'BF16',
      shape: [2, 2],
    });
    expect(Array.from(tensorToFloat32(getTensor(shard2, 'c')))).toEqual([4, 5, 6, 7]);
    expect(singleFileDirectory(shard1).get('b')).toMatchObject({
      file: shard1.fileName,
      dtype: 'F16',
    });
  });

  it('reports missing shard files and tensors absent from their shard', () => {
    const index = parseShardIndex(indexJson);
    expect(missingShardFiles(index, [shard1.fileName])).toEqual([shard2.fileName]);
    expect(() => combineShards(index, new Map([[shard1.fileName, shard1]]))).toThrow(
      'model.safetensors.index.json: missing shard files: model-00002-of-00002.safetensors',
    );
    const wrong = parseShardIndex({ weight_map: { a: shard1.fileName, c: shard1.fileName } });
    expect(() => combineShards(wrong, new Map([[shard1.fileName, shard1]]))).toThrow(
      "'c' is mapped to model-00001-of-00002.safetensors but not in it",
    );
  });

  it('rejects malformed indexes', () => {
    expect(() => parseShardIndex('{')).toThrow('model.safetensors.index.json: not valid JSON');
    expect(() => parseShardIndex({ metadata: {} })).toThrow(
      'weight_map is missing or not an object',
    );
    expect(() => parseShardIndex({ weight_map: {} })).toThrow('weight_map is empty');
    expect(() => parseShardIndex({ weight_map: { a: 3 } })).toThrow(
      "weight_map entry for 'a' is not a file name",
    );
    expect(() => parseShardIndex({ weight_map: { a: '../x.safetensors' } })).toThrow(
      "weight_map entry for 'a' has an unsafe path '../x.safetensors'",
    );
  });
});

/** config.json as the Hub has them (transformers v4). */
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  initializer_range: 0.041666666666666664,
  intermediate_size: 1536,
  is_llama_config: true,
  max_position_embeddings: 8192,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_interleaved: false,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.42.3',
  use_cache: true,
  vocab_size: 49152,
};

const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  initializer_range: 0.02,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.1',
  use_cache: true,
  use_mrope: false,
  use_sliding_window: false,
  vocab_size: 151936,
};

const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  transformers_version: '4.45.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

const TINYLLAMA = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.35.0',
  use_cache: true,
  vocab_size: 32000,
};

const GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: 'cls_token',
  summary_use_proj: true,
  task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } },
  vocab_size: 50257,
};

function omit(config: Record<string, unknown>, key: string): Record<string, unknown> {
  const copy = { ...config };
  delete copy[key];
  return copy;
}

/** The same config as transformers v5 writes it: rope_parameters and dtype. */
function asV5(config: Record<string, unknown>): Record<string, unknown> {
  const { rope_theta: ropeTheta, rope_scaling: ropeScaling, torch_dtype: dtype, ...rest } = config;
  const out: Record<string, unknown> = { ...rest, dtype, transformers_version: '5.0.0' };
  if (ropeTheta !== undefined) {
    out.rope_parameters = {
      rope_type: 'default',
      ...(ropeScaling as Record<string, unknown> | null),
      rope_theta: ropeTheta,
    };
  }
  return out;
}

describe('config.json', () => {
  it.each([
    ['SmolLM2-135M', SMOLLM2_135M],
    ['Qwen2.5-0.5B', QWEN25_05B],
    ['Llama-3.2-1B', LLAMA32_1B],
    ['TinyLlama', TINYLLAMA],
    ['gpt2', GPT2],
  ])('%s normalises the same from the v4 and v5 spellings', (_, config) => {
    const v4 = parseModelConfig(JSON.stringify(config));
    expect(parseModelConfig(asV5(config))).toEqual(v4);
  });

  it('SmolLM2-135M', () => {
    expect(parseModelConfig(SMOLLM2_135M)).toEqual({
      family: 'llama',
      architecture: 'LlamaForCausalLM',
      vocabSize: 49152,
      hiddenSize: 576,
      intermediateSize: 1536,
      numLayers: 30,
      numHeads: 9,
      numKvHeads: 3,
      headDim: 64,
      maxPositionEmbeddings: 8192,
      norm: 'rmsnorm',
      normEps: 1e-5,
      activation: 'silu',
      gatedMlp: true,
      rope: { type: 'default', theta: 100000 },
      qkvBias: false,
      attentionOutputBias: false,
      mlpBias: false,
      tieWordEmbeddings: true,
      dtype: 'bfloat16',
      bosTokenId: 0,
      eosTokenIds: [0],
    } satisfies ModelConfig);
  });

  it('Qwen2.5-0.5B: q/k/v biases, no o bias, tied', () => {
    expect(parseModelConfig(QWEN25_05B)).toMatchObject({
      family: 'qwen2',
      headDim: 64,
      numKvHeads: 2,
      normEps: 1e-6,
      rope: { type: 'default', theta: 1e6 },
      qkvBias: true,
      attentionOutputBias: false,
      mlpBias: false,
      tieWordEmbeddings: true,
    });
    expect(() => parseModelConfig({ ...QWEN25_05B, use_sliding_window: true })).toThrow(
      'config.json (Qwen2ForCausalLM): use_sliding_window is not supported',
    );
  });

  it('Llama-3.2-1B: llama3 RoPE scaling and explicit head_dim', () => {
    const config = parseModelConfig({ ...LLAMA32_1B, eos_token_id: [128001, 128008, 128009] });
    expect(config.rope).toEqual({
      type: 'llama3',
      theta: 500000,
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositionEmbeddings: 8192,
    });
    expect(config).toMatchObject({
      headDim: 64,
      numKvHeads: 8,
      eosTokenIds: [128001, 128008, 128009],
    });
    const legacyKey = { ...LLAMA32_1B.rope_scaling, type: 'llama3', rope_type: undefined };
    expect(parseModelConfig({ ...LLAMA32_1B, rope_scaling: legacyKey }).rope).toEqual(config.rope);
  });

  it('gpt2: LayerNorm, learned positions, GELU (tanh), tied by default', () => {
    expect(parseModelConfig(GPT2)).toMatchObject({
      family: 'gpt2',
      architecture: 'GPT2LMHeadModel',
      vocabSize: 50257,
      hiddenSize: 768,
      intermediateSize: 3072,
      numLayers: 12,
      numHeads: 12,
      numKvHeads: 12,
      headDim: 64,
      maxPositionEmbeddings: 1024,
      norm: 'layernorm',
      normEps: 1e-5,
      activation: 'gelu_tanh',
      gatedMlp: false,
      rope: null,
      qkvBias: true,
      attentionOutputBias: true,
      mlpBias: true,
      tieWordEmbeddings: true,
      dtype: null,
    });
    expect(parseModelConfig({ ...GPT2, n_inner: 1000 }).intermediateSize).toBe(1000);
  });

  it('takes head_dim when it differs from hidden_size / heads', () => {
    expect(parseModelConfig({ ...SMOLLM2_135M, head_dim: 128 }).headDim).toBe(128);
    expect(() =>
      parseModelConfig({ ...SMOLLM2_135M, num_attention_heads: 7, num_key_value_heads: 7 }),
    ).toThrow('hidden_size 576 is not a multiple of num_attention_heads 7');
    expect(
      parseModelConfig({
        ...SMOLLM2_135M,
        num_attention_heads: 5,
        num_key_value_heads: 5,
        head_dim: 64,
      }).headDim,
    ).toBe(64);
  });

  it('defaults tie_word_embeddings per architecture', () => {
    const withoutTie = (config: Record<string, unknown>) =>
      parseModelConfig(omit(config, 'tie_word_embeddings')).tieWordEmbeddings;
    expect(withoutTie(SMOLLM2_135M)).toBe(false);
    expect(withoutTie(QWEN25_05B)).toBe(false);
    expect(withoutTie(GPT2)).toBe(true);
    expect(parseModelConfig({ ...GPT2, tie_word_embeddings: false }).tieWordEmbeddings).toBe(false);
  });

  it('names the supported architectures for anything else', () => {
    const supported =
      'supported: LlamaForCausalLM (Llama 3.x, SmolLM2, TinyLlama), Qwen2ForCausalLM (Qwen2, Qwen2.5), GPT2LMHeadModel (GPT-2)';
    expect(() =>
      parseModelConfig({
        ...SMOLLM2_135M,
        architectures: ['MistralForCausalLM'],
        model_type: 'mistral',
      }),
    ).toThrow(`config.json: unsupported architecture "MistralForCausalLM"; ${supported}`);
    expect(() => parseModelConfig({ ...GPT2, architectures: ['constructor'] })).toThrow(
      'config.json: unsupported architecture "constructor"',
    );
    expect(() => parseModelConfig({ model_type: 'phi3' })).toThrow(
      `config.json: unsupported model (no architectures, model_type "phi3"); ${supported}`,
    );
    expect(parseModelConfig(omit(QWEN25_05B, 'architectures')).architecture).toBe(
      'Qwen2ForCausalLM',
    );
  });

  it('rejects unsupported or inconsistent fields, naming them', () => {
    expect(() =>
      parseModelConfig({ ...LLAMA32_1B, rope_scaling: { rope_type: 'yarn', factor: 4 } }),
    ).toThrow(
      'config.json (LlamaForCausalLM): RoPE type "yarn" is not supported (supported: default, llama3)',
    );
    expect(() =>
      parseModelConfig({
        ...LLAMA32_1B,
        rope_scaling: { ...LLAMA32_1B.rope_scaling, factor: undefined },
      }),
    ).toThrow('llama3 RoPE needs a positive factor, got undefined');
    expect(() =>
      parseModelConfig({
        ...SMOLLM2_135M,
        rope_parameters: { rope_type: 'default', rope_theta: 10000 },
      }),
    ).toThrow('rope_parameters disagrees with rope_theta / rope_scaling');
    expect(() => parseModelConfig({ ...SMOLLM2_135M, hidden_size: '576' })).toThrow(
      'config.json (LlamaForCausalLM): hidden_size must be a positive integer, got "576"',
    );
    expect(() => parseModelConfig(omit(SMOLLM2_135M, 'vocab_size'))).toThrow(
      'config.json (LlamaForCausalLM): missing vocab_size',
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, num_key_value_heads: 2 })).toThrow(
      'num_attention_heads 9 is not a multiple of num_key_value_heads 2',
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, hidden_act: 'gelu' })).toThrow(
      'hidden_act gelu is not supported',
    );
    expect(() => parseModelConfig({ ...GPT2, activation_function: 'relu' })).toThrow(
      'activation_function relu is not supported',
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, torch_dtype: 'int8' })).toThrow(
      'torch_dtype "int8" is not float32, float16 or bfloat16',
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, partial_rotary_factor: 0.5 })).toThrow(
      'partial_rotary_factor 0.5 is not supported',
    );
    expect(() =>
      parseModelConfig({
        ...asV5(SMOLLM2_135M),
        rope_parameters: { rope_type: 'default', rope_theta: 1e5, partial_rotary_factor: 0.25 },
      }),
    ).toThrow('config.json (LlamaForCausalLM) rope_parameters: partial_rotary_factor 0.25');
    expect(() => parseModelConfig('{')).toThrow('config.json: not valid JSON');
  });
});

describe('RoPE inverse frequencies', () => {
  it('default: theta^(-2i/d)', () => {
    const config = parseModelConfig(SMOLLM2_135M);
    const invFreq = computeRopeInvFreq(config);
    expect(invFreq).toHaveLength(32);
    invFreq.forEach((value, i) => {
      expect(value).toBeCloseTo(1 / 100000 ** ((2 * i) / 64), 7);
      expect(Math.abs(value - 100000 ** ((-2 * i) / 64)) / value).toBeLessThan(1e-6);
    });
    expect(() => computeRopeInvFreq(parseModelConfig(GPT2))).toThrow(
      'GPT2LMHeadModel uses learned positions, not RoPE',
    );
  });

  it('llama3 matches the formula computed independently in double precision', () => {
    const config = parseModelConfig(LLAMA32_1B);
    const invFreq = computeRopeInvFreq(config);
    const [factor, low, high, original] = [32, 1, 4, 8192];
    const regimes = { kept: 0, scaled: 0, smoothed: 0 };
    expect(invFreq).toHaveLength(32);
    invFreq.forEach((value, i) => {
      const base = 500000 ** ((-2 * i) / 64);
      const wavelen = (2 * Math.PI) / base;
      let expected: number;
      if (wavelen < original / high) {
        expected = base;
        regimes.kept++;
      } else if (wavelen > original / low) {
        expected = base / factor;
        regimes.scaled++;
      } else {
        const smooth = (original / wavelen - low) / (high - low);
        expected = ((1 - smooth) * base) / factor + smooth * base;
        regimes.smoothed++;
      }
      expect(Math.abs(value - expected) / expected).toBeLessThan(2e-6);
    });
    expect(regimes.kept).toBeGreaterThan(0);
    expect(regimes.scaled).toBeGreaterThan(0);
    expect(regimes.smoothed).toBeGreaterThan(0);
    expect(invFreq[0]).toBe(1);
  });
});

/** A name -> shape map for the tensors a checkpoint of this config holds. */
function llamaShapes(config: ModelConfig, withLmHead: boolean): Map<string, { shape: number[] }> {
  const { hiddenSize: h, headDim: d, intermediateSize: m, vocabSize: v } = config;
  const shapes = new Map<string, { shape: number[] }>();
  const add = (name: string, shape: number[]) => shapes.set(name, { shape });
  add('model.embed_tokens.weight', [v, h]);
  add('model.norm.weight', [h]);
  if (withLmHead) add('lm_head.weight', [v, h]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `model.layers.${i}`;
    add(`${p}.input_layernorm.weight`, [h]);
    add(`${p}.post_attention_layernorm.weight`, [h]);
    add(`${p}.self_attn.q_proj.weight`, [config.numHeads * d, h]);
    add(`${p}.self_attn.k_proj.weight`, [config.numKvHeads * d, h]);
    add(`${p}.self_attn.v_proj.weight`, [config.numKvHeads * d, h]);
    add(`${p}.self_attn.o_proj.weight`, [h, config.numHeads * d]);
    if (config.qkvBias) {
      add(`${p}.self_attn.q_proj.bias`, [config.numHeads * d]);
      add(`${p}.self_attn.k_proj.bias`, [config.numKvHeads * d]);
      add(`${p}.self_attn.v_proj.bias`, [config.numKvHeads * d]);
    }
    add(`${p}.mlp.gate_proj.weight`, [m, h]);
    add(`${p}.mlp.up_proj.weight`, [m, h]);
    add(`${p}.mlp.down_proj.weight`, [h, m]);
    add(`${p}.self_attn.rotary_emb.inv_freq`, [d / 2]);
  }
  return shapes;
}

const TINY_DIMS = {
  hidden_size: 16,
  intermediate_size: 24,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  vocab_size: 10,
};

describe('weight names', () => {
  it('Llama: tied embeddings need no lm_head; untied ones do', () => {
    const tied = parseModelConfig({ ...SMOLLM2_135M, ...TINY_DIMS, head_dim: 8 });
    const weights = resolveWeights(tied, llamaShapes(tied, false));
    expect(weights.family).toBe('llama');
    expect(weights.tiedLmHead).toBe(true);
    expect(weights.lmHead).toEqual({ name: 'model.embed_tokens.weight', shape: [10, 16] });
    if (weights.family !== 'gpt2') {
      expect(weights.layers).toHaveLength(2);
      expect(weights.layers[1].q).toEqual({
        weight: { name: 'model.layers.1.self_attn.q_proj.weight', shape: [32, 16] },
        bias: null,
        layout: 'out-in',
        inFeatures: 16,
        outFeatures: 32,
      });
      expect(weights.layers[1].o.weight.shape).toEqual([16, 32]);
    }
    expect(requiredTensors(weights)).toHaveLength(2 + 2 * 9);

    const untied = parseModelConfig({ ...TINYLLAMA, ...TINY_DIMS });
    expect(() => resolveWeights(untied, llamaShapes(untied, false))).toThrow(
      'weights do not match config.json (LlamaForCausalLM, 2 layers): missing: lm_head.weight',
    );
    const weightsUntied = resolveWeights(untied, llamaShapes(untied, true));
    expect(weightsUntied.tiedLmHead).toBe(false);
    expect(weightsUntied.lmHead.name).toBe('lm_head.weight');
    expect(requiredTensors(weightsUntied)).toHaveLength(3 + 2 * 9);
  });

  it('Qwen2: q/k/v biases are required', () => {
    const config = parseModelConfig({ ...QWEN25_05B, ...TINY_DIMS });
    const shapes = llamaShapes(config, false);
    const weights = resolveWeights(config, shapes);
    if (weights.family === 'gpt2') throw new Error('expected qwen2');
    expect(weights.family).toBe('qwen2');
    expect(weights.layers[0].k.bias).toEqual({
      name: 'model.layers.0.self_attn.k_proj.bias',
      shape: [8],
    });
    expect(weights.layers[0].o.bias).toBeNull();
    shapes.delete('model.layers.1.self_attn.v_proj.bias');
    expect(() => resolveWeights(config, shapes)).toThrow(
      'missing: model.layers.1.self_attn.v_proj.bias',
    );
  });

  it('reports every missing and mis-shaped tensor in one error', () => {
    const config = parseModelConfig({ ...SMOLLM2_135M, ...TINY_DIMS });
    const shapes = llamaShapes(config, false);
    shapes.delete('model.norm.weight');
    shapes.delete('model.layers.0.mlp.up_proj.weight');
    shapes.set('model.layers.1.self_attn.k_proj.weight', { shape: [16, 16] });
    shapes.set('model.embed_tokens.weight', { shape: [10, 16, 1] });
    expect(() => resolveWeights(config, shapes)).toThrow(
      'weights do not match config.json (LlamaForCausalLM, 2 layers): ' +
        'missing: model.layers.0.mlp.up_proj.weight, model.norm.weight. ' +
        'wrong shape: model.embed_tokens.weight is [10, 16, 1], expected [10, 16]; ' +
        'model.layers.1.self_attn.k_proj.weight is [16, 16], expected [8, 16]',
    );
  });

  describe('GPT-2', () => {
    const config = parseModelConfig({
      ...GPT2,
      n_embd: 8,
      n_head: 2,
      n_layer: 2,
      n_positions: 6,
      vocab_size: 11,
    });

    /** A real (tiny) GPT-2 checkpoint, written and parsed back. */
    function gpt2Checkpoint(prefix: string): TensorShapes {
      const specs: [string, number[]][] = [
        ['wte.weight', [11, 8]],
        ['wpe.weight', [6, 8]],
        ['ln_f.weight', [8]],
        ['ln_f.bias', [8]],
      ];
      for (let i = 0; i < 2; i++) {
        specs.push(
          [`h.${i}.ln_1.weight`, [8]],
          [`h.${i}.ln_1.bias`, [8]],
          [`h.${i}.attn.bias`, [1, 1, 6, 6]],
          [`h.${i}.attn.c_attn.weight`, [8, 24]],
          [`h.${i}.attn.c_attn.bias`, [24]],
          [`h.${i}.attn.c_proj.weight`, [8, 8]],
          [`h.${i}.attn.c_proj.bias`, [8]],
          [`h.${i}.ln_2.weight`, [8]],
          [`h.${i}.ln_2.bias`, [8]],
          [`h.${i}.mlp.c_fc.weight`, [8, 32]],
          [`h.${i}.mlp.c_fc.bias`, [32]],
          [`h.${i}.mlp.c_proj.weight`, [32, 8]],
          [`h.${i}.mlp.c_proj.bias`, [8]],
        );
      }
      const tensors = specs.map(([name, shape], seed) =>
        tensorOf(
          `${prefix}${name}`,
          shape,
          'F32',
          randomFloats(
            shape.reduce((a, b) => a * b, 1),
            seed,
          ),
        ),
      );
      return parseSafetensors(bufferOf(serializeSafetensors(tensors)), 'model.safetensors').tensors;
    }

    it.each(['', 'transformer.'])('resolves names with prefix %j', (prefix) => {
      const weights = resolveWeights(config, gpt2Checkpoint(prefix));
      if (weights.family !== 'gpt2') throw new Error('expected gpt2');
      expect(weights.embedTokens.name).toBe(`${prefix}wte.weight`);
      expect(weights.positionEmbedding).toEqual({ name: `${prefix}wpe.weight`, shape: [6, 8] });
      expect(weights.lmHead).toBe(weights.embedTokens);
      expect(weights.finalNorm.bias?.name).toBe(`${prefix}ln_f.bias`);
      expect(weights.layers[1].qkv).toEqual({
        weight: { name: `${prefix}h.1.attn.c_attn.weight`, shape: [8, 24] },
        bias: { name: `${prefix}h.1.attn.c_attn.bias`, shape: [24] },
        layout: 'in-out',
        inFeatures: 8,
        outFeatures: 24,
      });
      expect(weights.layers[0].proj.weight.shape).toEqual([32, 8]);
      expect(requiredTensors(weights)).toHaveLength(4 + 2 * 12);
    });

    it('rejects an untied GPT-2 without lm_head, and a transposed c_attn', () => {
      const untied = { ...config, tieWordEmbeddings: false };
      expect(() => resolveWeights(untied, gpt2Checkpoint('transformer.'))).toThrow(
        'weights do not match config.json (GPT2LMHeadModel, 2 layers): missing: lm_head.weight',
      );
      const shapes = new Map(gpt2Checkpoint(''));
      shapes.set('h.0.attn.c_attn.weight', { shape: [24, 8] });
      expect(() => resolveWeights(config, shapes)).toThrow(
        'wrong shape: h.0.attn.c_attn.weight is [24, 8], expected [8, 24]',
      );
    });
  });
});

describe('loadModelFiles: any source of files', () => {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    vocab_size: 8,
    hidden_size: 4,
    intermediate_size: 8,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    max_position_embeddings: 16,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  };
  const shapes: Record<string, number[]> = {
    'model.embed_tokens.weight': [8, 4],
    'model.layers.0.input_layernorm.weight': [4],
    'model.layers.0.self_attn.q_proj.weight': [4, 4],
    'model.layers.0.self_attn.k_proj.weight': [2, 4],
    'model.layers.0.self_attn.v_proj.weight': [2, 4],
    'model.layers.0.self_attn.o_proj.weight': [4, 4],
    'model.layers.0.post_attention_layernorm.weight': [4],
    'model.layers.0.mlp.gate_proj.weight': [8, 4],
    'model.layers.0.mlp.up_proj.weight': [8, 4],
    'model.layers.0.mlp.down_proj.weight': [4, 8],
    'model.norm.weight': [4],
  };
  const tensors = Object.entries(shapes).map(([name, shape], i) =>
    tensorOf(
      name,
      shape,
      'F32',
      randomFloats(
        shape.reduce((a, b) => a * b, 1),
        i,
        1,
      ),
    ),
  );
  const json = (value: unknown) => bufferOf(new TextEncoder().encode(JSON.stringify(value)));

  /** A reader over named buffers that records what was asked, in order. */
  function reader(files: Record<string, ArrayBuffer>): { read: ModelFileReader; asked: string[] } {
    const asked: string[] = [];
    return {
      asked,
      read: async (name) => {
        asked.push(name);
        return files[name] ?? null;
      },
    };
  }

  it('reads a single-file model and decodes every tensor as stored', async () => {
    const { read, asked } = reader({
      'config.json': json(config),
      'model.safetensors': bufferOf(serializeSafetensors(tensors)),
      'generation_config.json': json({ eos_token_id: 2 }),
    });
    const loaded = await loadModelFiles(read, 'tiny');
    expect(asked.slice(0, 2)).toEqual(['config.json', 'model.safetensors']);
    expect(asked).not.toContain('model.safetensors.index.json');
    expect(loaded.model.embedTokens).toEqual(tensorToFloat32(tensors[0]));
    expect(loaded.generationConfig).toEqual({ eos_token_id: 2 });
    expect(loaded.tokenizerJson).toBeNull();
  });

  it('reads the shards an index names, and lists the missing ones', async () => {
    const first = tensors.slice(0, 5);
    const second = tensors.slice(5);
    const weightMap = Object.fromEntries([
      ...first.map((t) => [t.name, 'a.safetensors']),
      ...second.map((t) => [t.name, 'b.safetensors']),
    ]);
    const files = {
      'config.json': json(config),
      'model.safetensors.index.json': json({ weight_map: weightMap }),
      'a.safetensors': bufferOf(serializeSafetensors(first)),
      'b.safetensors': bufferOf(serializeSafetensors(second)),
    };
    const loaded = await loadModelFiles(reader(files).read, 'tiny');
    const down = tensors.find((t) => t.name.endsWith('down_proj.weight'))!;
    expect(loaded.model.layers[0].mlpOut.weight).toEqual(tensorToFloat32(down));
    const withoutB: Record<string, ArrayBuffer> = { ...files };
    delete withoutB['b.safetensors'];
    await expect(loadModelFiles(reader(withoutB).read, 'tiny')).rejects.toThrow(
      'tiny: missing shard files: b.safetensors',
    );
  });

  it('says what is missing or malformed, naming the model', async () => {
    await expect(loadModelFiles(reader({}).read, 'folder')).rejects.toThrow(
      'folder: config.json not found',
    );
    await expect(
      loadModelFiles(reader({ 'config.json': json(config) }).read, 'folder'),
    ).rejects.toThrow('folder: no model.safetensors or model.safetensors.index.json');
    const broken = bufferOf(new TextEncoder().encode('{"architectures": ['));
    await expect(loadModelFiles(reader({ 'config.json': broken }).read, 'folder')).rejects.toThrow(
      /^folder: config\.json is not valid JSON/,
    );
  });
});
