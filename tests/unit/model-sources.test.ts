/**
 * Model sources: File objects, a local server in the Hub's layout (range-read plan, download with
 * progress, the Hub's refusals, the offline message), the cache that makes a second load
 * network-free, and the size check that refuses before any weights are downloaded. Every loaded
 * model is compared with what the Node folder loader reads from the same fixture.
 */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LoadedModelInfo } from '../../src/engine/protocol';
import type { GpuCapabilities } from '../../src/gpu/context';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { estimateGpuSize } from '../../src/model/loading/gpuSize';
import { parseModelConfig } from '../../src/model/loading/config';
import {
  getTensor,
  parseSafetensors,
  serializeSafetensors,
  singleFileDirectory,
} from '../../src/model/loading/safetensors';
import {
  loadModelFromSource,
  loadTokenizerFiles,
  ModelLoadError,
  parseRepoId,
  type LoadProgress,
  type ModelFileCache,
  type ModelSource,
} from '../../src/model/loading/sources';
import { resolveWeights } from '../../src/model/loading/weights';
import type { CpuModel } from '../../src/model/runtime/cpuModel';
import { checkDeviceFit } from '../../src/model/runtime/fit';
import { embeddedModelAtStart, parseEmbeddedList, summarizeModel } from '../../src/ui/modelStore';
import { startHubServer, type HubServer } from '../e2e/support/hubServer';

const root = join(import.meta.dirname, '../fixtures/models');
const fixtures = ['llama_gqa_tied', 'llama3_rope_headdim', 'qwen2_bias', 'gpt2'];

/** An in-memory stand-in for a Cache Storage bucket, keyed by URL as the browser's is. */
class MemoryCache implements ModelFileCache {
  readonly entries = new Map<string, { body: ArrayBuffer; headers: [string, string][] }>();

  async match(url: string): Promise<Response | undefined> {
    const entry = this.entries.get(url);
    return entry ? new Response(entry.body.slice(0), { headers: entry.headers }) : undefined;
  }

  async put(url: string, response: Response): Promise<void> {
    this.entries.set(url, {
      body: await response.arrayBuffer(),
      headers: [...response.headers.entries()],
    });
  }
}

function expectSameModel(actual: CpuModel, expected: CpuModel): void {
  expect(actual.config).toEqual(expected.config);
  expect(actual.embedTokens).toEqual(expected.embedTokens);
  expect(actual.layers.length).toBe(expected.layers.length);
  actual.layers.forEach((layer, i) => {
    expect(layer.kv.weight).toEqual(expected.layers[i].kv.weight);
    expect(layer.mlpIn.weight).toEqual(expected.layers[i].mlpIn.weight);
    expect(layer.mlpOut.bias).toEqual(expected.layers[i].mlpOut.bias);
  });
  expect(actual.lmHead).toEqual(expected.lmHead);
  expect(actual.positionEmbedding).toEqual(expected.positionEmbedding);
}

function filesOf(folder: string, names: string[], relativeTo?: string): File[] {
  return names.map((name) => {
    const file = new File([readFileSync(join(folder, name))], name);
    if (relativeTo) Object.defineProperty(file, 'webkitRelativePath', { value: relativeTo + name });
    return file;
  });
}

const caps = (binding: number): GpuCapabilities => ({
  timestampQuery: false,
  subgroups: false,
  shaderF16: false,
  maxWorkgroupStorageBytes: 16384,
  maxInvocationsPerWorkgroup: 256,
  maxWorkgroupSizeX: 256,
  maxStorageBufferBindingSize: binding,
  maxBufferSize: binding,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
});

let tmp: string;
let sharded: string;
let withTokenizerFiles: string;
let hub: HubServer;
const reference = new Map<string, ModelFolder>();

/** llama_gqa_tied split in two shards plus an index, as large Hub models are stored. */
function writeShardedCopy(folder: string): void {
  const file = parseSafetensors(
    readFileSync(join(root, 'llama_gqa_tied/model.safetensors')).buffer.slice(0) as ArrayBuffer,
    'model.safetensors',
  );
  const names = [...file.tensors.keys()].sort();
  const halves = [names.slice(0, names.length / 2), names.slice(names.length / 2)];
  const weightMap: Record<string, string> = {};
  halves.forEach((half, i) => {
    const shard = `model-0000${i + 1}-of-00002.safetensors`;
    const tensors = half.map((name) => {
      const view = getTensor(file, name);
      weightMap[name] = shard;
      return { name, dtype: view.dtype, shape: view.shape, bytes: view.bytes };
    });
    writeFileSync(join(folder, shard), serializeSafetensors(tensors));
  });
  writeFileSync(
    join(folder, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: {}, weight_map: weightMap }),
  );
  copyFileSync(join(root, 'llama_gqa_tied/config.json'), join(folder, 'config.json'));
}

beforeAll(async () => {
  for (const name of fixtures) reference.set(name, await loadModelFolder(join(root, name)));
  tmp = mkdtempSync(join(tmpdir(), 'model-sources-'));
  sharded = join(tmp, 'sharded');
  withTokenizerFiles = join(tmp, 'tokenizer-files');
  const mistral = join(tmp, 'mistral');
  for (const folder of [sharded, withTokenizerFiles, mistral]) mkdirSync(folder);
  writeShardedCopy(sharded);
  for (const name of ['config.json', 'model.safetensors', 'generation_config.json']) {
    copyFileSync(join(root, 'llama_gqa_tied', name), join(withTokenizerFiles, name));
  }
  writeFileSync(join(withTokenizerFiles, 'tokenizer_config.json'), '{"bos_token": "<s>"}');
  const config = JSON.parse(readFileSync(join(root, 'llama_gqa_tied/config.json'), 'utf8'));
  writeFileSync(
    join(mistral, 'config.json'),
    JSON.stringify({ ...config, architectures: ['MistralForCausalLM'], model_type: 'mistral' }),
  );
  copyFileSync(join(root, 'llama_gqa_tied/model.safetensors'), join(mistral, 'model.safetensors'));

  hub = await startHubServer({
    repos: {
      ...Object.fromEntries(fixtures.map((name) => [`test/${name}`, join(root, name)])),
      'test/sharded': sharded,
      'test/tokenizer-files': withTokenizerFiles,
      'test/mistral': mistral,
    },
    restricted: {
      'meta-llama/Llama-3.2-1B-Instruct': { status: 401, code: 'GatedRepo' },
      'test/forbidden': { status: 403 },
    },
  });
});

afterAll(async () => {
  await hub?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const hubSource = (repo: string): ModelSource => ({ kind: 'hub', repo, endpoint: hub.endpoint });

async function loadError(source: ModelSource, options = {}): Promise<ModelLoadError> {
  const error = await loadModelFromSource(source, { cache: null, ...options }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ModelLoadError);
  return error as ModelLoadError;
}

describe('GPU size from headers', () => {
  it.each(fixtures)('%s: weight bytes match checkDeviceFit on the loaded model', (name) => {
    const folder = reference.get(name)!;
    const file = parseSafetensors(
      readFileSync(join(root, name, 'model.safetensors')).buffer.slice(0) as ArrayBuffer,
      'model.safetensors',
    );
    const config = parseModelConfig(
      JSON.parse(readFileSync(join(root, name, 'config.json'), 'utf8')),
    );
    const weights = resolveWeights(config, singleFileDirectory(file));
    const fitOptions = { kvDtype: 'f32', maxSeqLen: 64, prefillChunk: 16 } as const;
    for (const weightDtype of ['f32', 'f16'] as const) {
      const estimate = estimateGpuSize(config, weights, null, weightDtype);
      const fit = checkDeviceFit(folder.model, caps(2 ** 30), { ...fitOptions, weightDtype });
      expect(estimate.weightBytes).toBe(fit.weightBytes);
      expect(estimate.problems).toEqual([]);
    }
    // Parameters: every tensor element the checkpoint holds that the forward pass reads.
    const stored = [...file.tensors.values()]
      .filter((t) => !t.name.endsWith('.attn.bias') && !t.name.endsWith('masked_bias'))
      .reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    expect(estimateGpuSize(config, weights, null).parameters).toBe(stored);
  });

  it('names a row wider than the binding limit, and notes the matrices it will split', () => {
    const folder = reference.get('llama_gqa_tied')!;
    const { config } = folder;
    const file = parseSafetensors(
      readFileSync(join(root, 'llama_gqa_tied/model.safetensors')).buffer.slice(0) as ArrayBuffer,
      'model.safetensors',
    );
    const weights = resolveWeights(config, singleFileDirectory(file));
    const rowBytes = config.hiddenSize * 4;
    const narrow = estimateGpuSize(config, weights, {
      maxBufferSize: 2 ** 30,
      maxStorageBufferBindingSize: rowBytes - 4,
    });
    expect(narrow.problems[0]).toMatch(/^embedding: one row of 256 B exceeds the 252 B/);
    const splitting = estimateGpuSize(config, weights, {
      maxBufferSize: 2 ** 30,
      maxStorageBufferBindingSize: rowBytes * 100,
    });
    expect(splitting.problems).toEqual([]);
    expect(splitting.notes.join('\n')).toMatch(
      /embedding \(0\.1 MiB\) will be split into 4 chunks/,
    );
  });
});

describe('files source', () => {
  it('loads a flat set of files as the folder loader does', async () => {
    const files = filesOf(join(root, 'qwen2_bias'), [
      'config.json',
      'model.safetensors',
      'generation_config.json',
    ]);
    const progress: LoadProgress[] = [];
    const loaded = await loadModelFromSource(
      { kind: 'files', files },
      { onProgress: (p) => progress.push(p) },
    );
    expectSameModel(loaded.model, reference.get('qwen2_bias')!.model);
    expect(loaded.generationConfig).toEqual(reference.get('qwen2_bias')!.generationConfig);
    expect(loaded.tokenizerJson).toBeNull();
    expect(loaded.plan.name).toBe('local files');
    expect(loaded.networkBytes).toBe(0);
    const weights = progress.filter((p) => p.file === 'model.safetensors').at(-1);
    const size = readFileSync(join(root, 'qwen2_bias/model.safetensors')).byteLength;
    expect(weights).toEqual({ file: 'model.safetensors', loaded: size, total: size });
  });

  it('takes a picked folder’s top-level files over same-named ones in subfolders', async () => {
    const top = filesOf(join(root, 'gpt2'), ['config.json', 'model.safetensors'], 'gpt2/');
    const nested = filesOf(join(root, 'llama_gqa_tied'), ['config.json'], 'gpt2/onnx/');
    const loaded = await loadModelFromSource({ kind: 'files', files: [...nested, ...top] });
    expect(loaded.plan.name).toBe('gpt2');
    expectSameModel(loaded.model, reference.get('gpt2')!.model);
  });

  it('says which file is missing and what a model folder holds', async () => {
    const files = filesOf(join(root, 'gpt2'), ['model.safetensors']);
    const error = await loadError({ kind: 'files', files });
    expect(error.kind).toBe('not-found');
    expect(error.message).toMatch(/no config\.json .*config\.json, model\.safetensors/);
    expect((await loadError({ kind: 'files', files: [] })).message).toMatch(/no files given/);
  });
});

describe('hub source', () => {
  it.each(fixtures)('%s: plans by range requests, then downloads with progress', async (name) => {
    const before = hub.requests.length;
    const plans: number[] = [];
    const progress: LoadProgress[] = [];
    const loaded = await loadModelFromSource(hubSource(`test/${name}`), {
      cache: null,
      onPlan: () => plans.push(hub.requests.length - before),
      onProgress: (p) => progress.push(p),
    });
    expectSameModel(loaded.model, reference.get(name)!.model);
    const requests = hub.requests.slice(before);
    // Plan: config.json, then the header of model.safetensors in two range requests.
    expect(plans).toEqual([3]);
    expect(requests.slice(0, 3).map((r) => [r.path.split('/').at(-1), r.range])).toEqual([
      ['config.json', null],
      ['model.safetensors', 'bytes=0-7'],
      ['model.safetensors', expect.stringMatching(/^bytes=0-\d+$/)],
    ]);
    const size = readFileSync(join(root, name, 'model.safetensors')).byteLength;
    expect(loaded.plan.files).toContainEqual({ name: 'model.safetensors', size });
    const last = progress.filter((p) => p.file === 'model.safetensors').at(-1);
    expect(last).toEqual({ file: 'model.safetensors', loaded: size, total: size });
    expect(loaded.networkBytes).toBeGreaterThan(size);
  });

  it('loads a sharded model through its index', async () => {
    const loaded = await loadModelFromSource(hubSource('test/sharded'), { cache: null });
    expectSameModel(loaded.model, reference.get('llama_gqa_tied')!.model);
    expect(loaded.plan.files.map((f) => f.name)).toEqual([
      'config.json',
      'model.safetensors.index.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
    ]);
  });

  it('serves a second load from the cache without a single request', async () => {
    const cache = new MemoryCache();
    const first = await loadModelFromSource(hubSource('test/tokenizer-files'), { cache });
    expect(first.tokenizerConfig).toEqual({ bos_token: '<s>' });
    const before = hub.requests.length;
    const progress: LoadProgress[] = [];
    const second = await loadModelFromSource(hubSource('test/tokenizer-files'), {
      cache,
      onProgress: (p) => progress.push(p),
    });
    expect(hub.requests.length - before).toBe(0);
    expect(second.networkBytes).toBe(0);
    expectSameModel(second.model, first.model);
    expect(second.tokenizerConfig).toEqual({ bos_token: '<s>' });
    expect(second.tokenizerJson).toBeNull();
    expect(progress.map((p) => p.file)).toContain('model.safetensors');

    const shardCache = new MemoryCache();
    await loadModelFromSource(hubSource('test/sharded'), { cache: shardCache });
    const beforeShards = hub.requests.length;
    await loadModelFromSource(hubSource('test/sharded'), { cache: shardCache });
    expect(hub.requests.length - beforeShards).toBe(0);
  });

  it('refuses a model too large for the GPU before downloading its weights', async () => {
    const before = hub.requests.length;
    const error = await loadError(hubSource('test/llama_gqa_tied'), {
      limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 128 },
    });
    expect(error.kind).toBe('too-large');
    expect(error.message).toMatch(
      /^test\/llama_gqa_tied is too large for this GPU: embedding: one row of 256 B exceeds the 128 B binding limit.*needs 0\.\d MiB of GPU buffers/,
    );
    const weightRequests = hub.requests
      .slice(before)
      .filter((r) => r.path.endsWith('.safetensors'));
    expect(weightRequests.every((r) => r.range !== null)).toBe(true);
  });

  it('says a missing repo is not found, and a gated one what to do', async () => {
    const missing = await loadError(hubSource('test/no-such-model'));
    expect(missing.kind).toBe('not-found');
    expect(missing.message).toMatch(/^model not found on the Hub: test\/no-such-model\./);

    const gated = await loadError(hubSource('meta-llama/Llama-3.2-1B-Instruct'));
    expect(gated.kind).toBe('gated');
    expect(gated.message).toContain(`${hub.endpoint}/meta-llama/Llama-3.2-1B-Instruct`);
    expect(gated.message).toMatch(/accept its licence.*sends no Hub token.*local files/);

    const forbidden = await loadError(hubSource('test/forbidden'));
    expect(forbidden.kind).toBe('gated');
  });

  it('gives the parser’s message for an unsupported architecture', async () => {
    const error = await loadError(hubSource('test/mistral'));
    expect(error.kind).toBe('unsupported');
    expect(error.message).toMatch(/^test\/mistral: .*MistralForCausalLM.*LlamaForCausalLM/);
  });

  it('says it cannot reach the Hub when the network fails', async () => {
    const closed = await startHubServer({ repos: {} });
    await closed.close();
    const error = await loadError({ kind: 'hub', repo: 'a/b', endpoint: closed.endpoint });
    expect(error.kind).toBe('offline');
    expect(error.message).toMatch(/^cannot reach http:\/\/127\.0\.0\.1:\d+: .*embedded default/);
  });

  it('rejects a malformed repo id or endpoint with what to write instead', async () => {
    expect(parseRepoId(' HuggingFaceTB/SmolLM2-135M ')).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(parseRepoId('https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/tree/main')).toBe(
      'Qwen/Qwen2.5-0.5B-Instruct',
    );
    for (const bad of ['a/b/c', 'owner/../x', 'has space/x', '']) {
      expect(() => parseRepoId(bad)).toThrow(/is not a Hub repo id: write owner\/name/);
    }
    const error = await loadError({ kind: 'hub', repo: 'a/b', endpoint: 'ftp://x' });
    expect(error.message).toMatch(/is not a Hub endpoint/);
  });

  it('stops when cancelled', async () => {
    const controller = new AbortController();
    const promise = loadModelFromSource(hubSource('test/gpt2'), {
      cache: null,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'model.safetensors') controller.abort();
      },
    });
    await expect(promise).rejects.toMatchObject({ name: 'AbortError' });
  });
});

describe('url source (the app’s own models)', () => {
  it('loads from a base URL with the Hub’s file names, named as asked', async () => {
    const baseUrl = `${hub.endpoint}/test/llama3_rope_headdim/resolve/main`;
    const loaded = await loadModelFromSource({ kind: 'url', baseUrl, name: 'Bundled' });
    expect(loaded.plan.name).toBe('Bundled');
    expectSameModel(loaded.model, reference.get('llama3_rope_headdim')!.model);
  });

  it('says which file could not be read, and rejects what is not a URL', async () => {
    const missing = await loadError({ kind: 'url', baseUrl: `${hub.endpoint}/nowhere/x/y/` });
    expect(missing.message).toMatch(/\/nowhere\/x\/y\/: config\.json could not be read \(HTTP 404/);
    const relative = await loadError({ kind: 'url', baseUrl: 'models/default/' });
    expect(relative.kind).toBe('invalid-source');
    expect(relative.message).toMatch(/give an absolute http\(s\) URL/);
  });
});

describe('the picker’s store', () => {
  it('summarizes a loaded model from its plan and the engine’s answer', async () => {
    const loaded = await loadModelFromSource(hubSource('test/gpt2'), {
      cache: null,
      limits: { maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 },
    });
    const { config } = loaded;
    const info: LoadedModelInfo = {
      model: {
        name: 'test/gpt2',
        layers: config.numLayers,
        heads: config.numHeads,
        kvHeads: config.numKvHeads,
        headDim: config.headDim,
        width: config.hiddenSize,
        vocabSize: config.vocabSize,
        maxPositions: config.maxPositionEmbeddings,
        kvBytes: 4,
      },
      chat: false,
      adapter: 'SwiftShader',
      networkBytes: loaded.networkBytes,
    };
    const summary = summarizeModel(loaded.plan, info);
    expect(summary).toMatchObject({
      name: 'test/gpt2',
      architecture: 'GPT2LMHeadModel',
      layers: config.numLayers,
      parameters: loaded.plan.size.parameters,
      fits: true,
      adapter: 'SwiftShader',
      networkBytes: loaded.networkBytes,
    });
    // The same weight bytes the runtime's own check counts once the model is on the device.
    const fit = checkDeviceFit(loaded.model, caps(2 ** 30), {
      weightDtype: 'f32',
      kvDtype: 'f32',
      maxSeqLen: 64,
      prefillChunk: 16,
    });
    expect(summary.weightBytes).toBe(fit.weightBytes);
    // A plan checked against a binding limit below GPT-2's position table says what does not fit.
    const weights = resolveWeights(
      config,
      singleFileDirectory(
        parseSafetensors(
          readFileSync(join(root, 'gpt2/model.safetensors')).buffer.slice(0) as ArrayBuffer,
          'model.safetensors',
        ),
      ),
    );
    const size = estimateGpuSize(config, weights, {
      maxBufferSize: 2 ** 30,
      maxStorageBufferBindingSize: 4096,
    });
    const small = summarizeModel({ ...loaded.plan, size }, info);
    expect(small.fits).toBe(false);
    expect(small.fitProblems.join('\n')).toMatch(/position embedding needs/);
  });

  it('reads only the tokenizer files, from the cache once the model was loaded', async () => {
    const cache = new MemoryCache();
    const source = hubSource('test/tokenizer-files');
    await loadModelFromSource(source, { cache });
    const before = hub.requests.length;
    const tokenizer = await loadTokenizerFiles(source, { cache });
    expect(hub.requests.length).toBe(before);
    expect(tokenizer).toEqual({ tokenizerJson: null, tokenizerConfig: { bos_token: '<s>' } });
    const files = filesOf(withTokenizerFiles, ['config.json', 'tokenizer_config.json']);
    expect(await loadTokenizerFiles({ kind: 'files', files })).toEqual(tokenizer);
  });

  it('reads models/index.json, naming a malformed entry', () => {
    expect(parseEmbeddedList([])).toEqual([]);
    const entry = { name: 'tiny', label: 'Tiny', path: 'models/tiny/' };
    expect(parseEmbeddedList([entry])).toEqual([entry]);
    expect(() => parseEmbeddedList({})).toThrow(/not a JSON array/);
    expect(() => parseEmbeddedList([entry, { name: 'x' }])).toThrow(/entry 1 needs string name/);
    const carded = { ...entry, card: 'README.md' };
    expect(parseEmbeddedList([carded])).toEqual([carded]);
    for (const card of [3, '', '../README.md']) {
      expect(() => parseEmbeddedList([{ ...entry, card }])).toThrow(/entry 0: card must name/);
    }
  });

  it('loads the first bundled model at start, once the GPU is ready and nothing else is', () => {
    const tiny = { name: 'tiny', label: 'Tiny', path: 'models/tiny/' };
    const other = { name: 'other', label: 'Other', path: 'models/other/' };
    const start = {
      search: '',
      gpuReady: true,
      embedded: { status: 'ready' as const, models: [tiny, other] },
      load: { status: 'idle' as const },
      sharedModel: null,
    };
    expect(embeddedModelAtStart(start)).toEqual(tiny);
    expect(embeddedModelAtStart({ ...start, search: '?hub=http://x' })).toEqual(tiny);
    // Start empty on request; wait for the GPU and the list; never over a user's own choice.
    expect(embeddedModelAtStart({ ...start, search: '?model=none' })).toBeNull();
    expect(embeddedModelAtStart({ ...start, gpuReady: false })).toBeNull();
    expect(embeddedModelAtStart({ ...start, embedded: { status: 'loading' } })).toBeNull();
    expect(
      embeddedModelAtStart({ ...start, embedded: { status: 'ready', models: [] } }),
    ).toBeNull();
    const loading = { status: 'loading' as const, name: 'org/repo', plan: null, files: [] };
    expect(embeddedModelAtStart({ ...start, load: loading })).toBeNull();
    expect(
      embeddedModelAtStart({ ...start, load: { status: 'cancelled', name: 'Tiny' } }),
    ).toBeNull();
    // A shared link: its model if it is bundled, else nothing (the page names the link's model).
    expect(embeddedModelAtStart({ ...start, sharedModel: 'Other' })).toEqual(other);
    expect(
      embeddedModelAtStart({ ...start, sharedModel: 'HuggingFaceTB/SmolLM2-135M' }),
    ).toBeNull();
  });
});
