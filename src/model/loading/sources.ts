/**
 * Loads a model from where a person has it: the Hugging Face Hub by repo id, any URL with the same
 * file names (the app's own public/models/<name>/), or File objects (a folder picker, drag and
 * drop). No DOM: it runs on the page, in a Web Worker and in Node (fetch, Response, File, and Cache
 * Storage where the platform has it).
 *
 * Contract (the engine's worker, src/engine/worker.ts, calls this):
 *
 *   const loaded = await loadModelFromSource(source, { onProgress, onPlan, signal, limits });
 *
 *   source:  { kind: 'hub', repo: 'owner/name', revision?: 'main', endpoint?: 'https://huggingface.co' }
 *            { kind: 'url', baseUrl: 'https://host/models/name/', name?: 'shown name' }
 *                     (baseUrl absolute, or relative to the page; name defaults to the URL)
 *            { kind: 'files', files: File[] }                         (a flat set; subfolders ignored)
 *   1. Plans: reads config.json, the shard index if any, and each safetensors header (HTTP range
 *      requests, or File.slice), resolves and checks every tensor, and estimates the GPU buffers
 *      (gpuSize.ts) against `limits`. A model that cannot fit is refused here with
 *      ModelLoadError kind 'too-large', before any weights are downloaded. onPlan(plan) then.
 *   2. Downloads the files, calling onProgress({ file, loaded, total }) as bytes arrive (total is
 *      null when the server does not say), and builds the CPU model (loadModelFiles in files.ts).
 *   Hub files are kept in Cache Storage keyed by URL (options.cache replaces it), with a manifest
 *   of which files the model has, so a second load makes no network request at all.
 *   Errors are ModelLoadError with a `kind` and a message that says what to do; aborting `signal`
 *   rejects with the signal's reason (an AbortError DOMException by default).
 */
import type { WeightDtype } from '../../kernels/model/common';
import { parseModelConfig, type ModelConfig } from './config';
import {
  CONFIG_FILE,
  loadModelFiles,
  OPTIONAL_JSON_FILES,
  parseJsonFile,
  SHARD_INDEX_FILE,
  SINGLE_WEIGHTS_FILE,
  type ModelFiles,
} from './files';
import { estimateGpuSize, type GpuBufferLimits, type GpuSizeReport } from './gpuSize';
import {
  combineShards,
  HEADER_LENGTH_BYTES,
  parseSafetensorsHeader,
  parseShardIndex,
  safetensorsHeaderSize,
  singleFileDirectory,
  type SafetensorsHeader,
  type TensorLocation,
} from './safetensors';
import { resolveWeights } from './weights';

export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';
export const DEFAULT_REVISION = 'main';
/** The Cache Storage bucket of downloaded Hub files. */
export const MODEL_CACHE_NAME = 'sparse-attention-playground.models.v1';

export type ModelSource =
  | { kind: 'hub'; repo: string; revision?: string; endpoint?: string }
  | { kind: 'url'; baseUrl: string; name?: string }
  | { kind: 'files'; files: readonly File[] };

export interface LoadProgress {
  file: string;
  loaded: number;
  /** null when the server does not say how large the file is. */
  total: number | null;
}

/** The subset of the Cache interface the loader uses, so tests and Node can supply their own. */
export interface ModelFileCache {
  match(url: string): Promise<Response | undefined>;
  put(url: string, response: Response): Promise<void>;
}

export interface ModelPlan {
  /** The repo id, the URL, or the picked folder's name. */
  name: string;
  config: ModelConfig;
  /** The files that will be read, with their sizes when known. */
  files: { name: string; size: number | null }[];
  size: GpuSizeReport;
}

export interface LoadModelOptions {
  onProgress?: (progress: LoadProgress) => void;
  /** Called once the model is checked, before any weights are downloaded. */
  onPlan?: (plan: ModelPlan) => void;
  signal?: AbortSignal;
  /** The device's limits; without them nothing is refused for size. */
  limits?: GpuBufferLimits;
  /** The weight dtype the GPU will hold, for the size estimate (default f32). */
  weightDtype?: WeightDtype;
  /** Where Hub files are kept; default Cache Storage when the platform has it, null for none. */
  cache?: ModelFileCache | null;
  fetch?: typeof fetch;
}

export interface LoadedModel extends ModelFiles {
  plan: ModelPlan;
  /** Bytes that came over the network in this load (0 when everything came from the cache). */
  networkBytes: number;
}

export type ModelLoadErrorKind =
  'invalid-source' | 'not-found' | 'gated' | 'offline' | 'http' | 'too-large' | 'unsupported';

export class ModelLoadError extends Error {
  constructor(
    readonly kind: ModelLoadErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ModelLoadError';
  }
}

const REPO_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * A repo id from what a person typed: 'owner/name', or a model page's address. Throws a
 * ModelLoadError saying what a repo id looks like otherwise.
 */
export function parseRepoId(input: string): string {
  let text = input.trim();
  const page = /^https?:\/\/[^/]+\/([^?#]+)/.exec(text);
  if (page) text = page[1].split('/').slice(0, 2).join('/');
  const parts = text.split('/');
  if (parts.length > 2 || !parts.every((part) => REPO_PART.test(part) && !part.includes('..'))) {
    throw new ModelLoadError(
      'invalid-source',
      `'${input.trim()}' is not a Hub repo id: write owner/name as in the model page's address, e.g. HuggingFaceTB/SmolLM2-135M`,
    );
  }
  return text;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}

function isAbort(error: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (error as Error)?.name === 'AbortError';
}

/** How a store reaches its files; planning reads prefixes, loading whole files. */
interface FileStore {
  /** The first `length` bytes (fewer when the file is shorter) and the file's size; null: absent. */
  head(name: string, length: number): Promise<{ bytes: Uint8Array; size: number | null } | null>;
  read(name: string): Promise<ArrayBuffer | null>;
  /** Called after a successful load with the files the model has. */
  finish(present: readonly string[]): Promise<void>;
}

/**
 * Reads a body to the end into one buffer (sized by Content-Length when given, grown when a
 * compressed body turns out larger), reporting progress about every 0.5% and at the end.
 */
async function readBody(
  response: Response,
  file: string,
  total: number | null,
  onProgress: ((progress: LoadProgress) => void) | undefined,
): Promise<ArrayBuffer> {
  if (!response.body) return response.arrayBuffer();
  const reader = response.body.getReader();
  let buffer = new Uint8Array(total ?? 1 << 20);
  let loaded = 0;
  let reported = 0;
  const step = total ? total / 200 : 1 << 20;
  onProgress?.({ file, loaded: 0, total });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (loaded + value.byteLength > buffer.byteLength) {
      const grown = new Uint8Array(Math.max(2 * buffer.byteLength, loaded + value.byteLength));
      grown.set(buffer.subarray(0, loaded));
      buffer = grown;
    }
    buffer.set(value, loaded);
    loaded += value.byteLength;
    if (loaded - reported >= step) {
      reported = loaded;
      // A compressed body can outgrow its Content-Length; then the total is not known after all.
      onProgress?.({ file, loaded, total: total !== null && loaded <= total ? total : null });
    }
  }
  onProgress?.({ file, loaded, total: loaded });
  return loaded === buffer.byteLength ? buffer.buffer : buffer.slice(0, loaded).buffer;
}

/** The first `length` bytes of a body, cancelling the rest. */
async function readPrefix(response: Response, length: number): Promise<Uint8Array> {
  if (!response.body) return new Uint8Array(await response.arrayBuffer()).slice(0, length);
  const reader = response.body.getReader();
  const out = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const { done, value } = await reader.read();
    if (done) break;
    const take = Math.min(value.byteLength, length - filled);
    out.set(value.subarray(0, take), filled);
    filled += take;
  }
  await reader.cancel().catch(() => undefined);
  return out.slice(0, filled);
}

function positiveInteger(text: string | null): number | null {
  if (text === null || !/^\d+$/.test(text)) return null;
  return Number(text);
}

/** The whole file's size from a range response's Content-Range ('bytes 0-7/12345'). */
function sizeFromContentRange(text: string | null): number | null {
  const match = text === null ? null : /\/(\d+)\s*$/.exec(text);
  return match ? Number(match[1]) : null;
}

const SIZE_HEADER = 'x-model-file-size';

interface Manifest {
  files: string[];
}

/** Files over HTTP: the Hub (with its error messages) or any base URL. */
class RemoteStore implements FileStore {
  private readonly fetchFn: typeof fetch;
  private manifest: Manifest | null = null;
  networkBytes = 0;

  constructor(
    private readonly base: string,
    private readonly name: string,
    private readonly hub: { repo: string; revision: string; endpoint: string } | null,
    private readonly cache: ModelFileCache | null,
    private readonly options: LoadModelOptions,
  ) {
    this.fetchFn = options.fetch ?? globalThis.fetch.bind(globalThis);
  }

  private url(file: string): string {
    return `${this.base}${file.split('/').map(encodeURIComponent).join('/')}`;
  }

  private get manifestKey(): string {
    return `${this.base}?playground-manifest`;
  }

  async loadManifest(): Promise<void> {
    const cached = await this.cache?.match(this.manifestKey);
    if (!cached) return;
    const json = (await cached.json()) as Manifest;
    if (Array.isArray(json.files)) this.manifest = json;
  }

  async finish(present: readonly string[]): Promise<void> {
    if (!this.cache) return;
    const body = JSON.stringify({ files: [...present] } satisfies Manifest);
    await this.cache.put(this.manifestKey, new Response(body));
  }

  /** Known absent: the manifest of a cached model does not list it. */
  private knownAbsent(file: string): boolean {
    return this.manifest !== null && !this.manifest.files.includes(file);
  }

  private async cached(file: string): Promise<Response | undefined> {
    return this.cache?.match(this.url(file));
  }

  private failure(file: string, response: Response): ModelLoadError {
    const code = response.headers.get('x-error-code');
    const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (!this.hub) {
      return new ModelLoadError(
        response.status === 404 ? 'not-found' : 'http',
        `${this.name}: ${file} could not be read (HTTP ${status})`,
      );
    }
    const { repo, revision, endpoint } = this.hub;
    const page = `${endpoint}/${repo}`;
    const localFix =
      'This app sends no Hub token: download its files (config.json, model.safetensors, ' +
      'tokenizer.json, ...) and load them here as local files, or pick an ungated model.';
    if (code === 'RepoNotFound' || (response.status === 404 && file === CONFIG_FILE)) {
      return new ModelLoadError(
        'not-found',
        `model not found on the Hub: ${repo}. Check the repo id (owner/name, as in the model page's address); private models cannot be loaded here.`,
      );
    }
    if (code === 'RevisionNotFound') {
      return new ModelLoadError('not-found', `revision '${revision}' not found in ${repo}`);
    }
    if (code === 'GatedRepo' || response.status === 403) {
      return new ModelLoadError(
        'gated',
        `${repo} is gated: sign in on ${page} and accept its licence there. ${localFix}`,
      );
    }
    if (response.status === 401) {
      return new ModelLoadError(
        'gated',
        `the Hub refused ${repo} (401): it does not exist, or it is private or gated. Check the repo id; for a gated model accept its licence on ${page}. ${localFix}`,
      );
    }
    return new ModelLoadError(
      response.status === 404 ? 'not-found' : 'http',
      `the Hub answered ${status} for ${file} of ${repo}${response.status >= 500 ? ': try again in a while' : ''}`,
    );
  }

  /** fetch, with network failures turned into the offline message. */
  private async request(file: string, headers?: Record<string, string>): Promise<Response> {
    const { signal } = this.options;
    try {
      return await this.fetchFn(this.url(file), { headers, signal });
    } catch (error) {
      if (isAbort(error, signal)) throw signal?.reason ?? error;
      const offline = (globalThis.navigator as Navigator | undefined)?.onLine === false;
      const host = this.hub?.endpoint ?? this.base;
      throw new ModelLoadError(
        'offline',
        `cannot reach ${host}: ${offline ? 'this device is offline' : 'the network request failed (offline, blocked, or the server does not allow cross-origin requests)'}. ` +
          'Check the connection; the embedded default model works offline, and models loaded before come from this browser’s cache.',
        { cause: error },
      );
    }
  }

  async head(
    file: string,
    length: number,
  ): Promise<{ bytes: Uint8Array; size: number | null } | null> {
    if (this.knownAbsent(file)) return null;
    const hit = await this.cached(file);
    if (hit) {
      return {
        bytes: await readPrefix(hit, length),
        size: positiveInteger(hit.headers.get(SIZE_HEADER)),
      };
    }
    const response = await this.request(file, { Range: `bytes=0-${length - 1}` });
    if (response.status === 404 && file !== CONFIG_FILE) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw this.failure(file, response);
    if (response.status === 206) {
      const bytes = new Uint8Array(await response.arrayBuffer()).slice(0, length);
      this.networkBytes += bytes.byteLength;
      return { bytes, size: sizeFromContentRange(response.headers.get('content-range')) };
    }
    // The server ignored the range: take the prefix and drop the rest.
    const bytes = await readPrefix(response, length);
    this.networkBytes += bytes.byteLength;
    return { bytes, size: positiveInteger(response.headers.get('content-length')) };
  }

  async read(file: string): Promise<ArrayBuffer | null> {
    const { onProgress, signal } = this.options;
    if (this.knownAbsent(file)) return null;
    const hit = await this.cached(file);
    if (hit) {
      const total = positiveInteger(hit.headers.get(SIZE_HEADER));
      const bytes = await hit.arrayBuffer();
      onProgress?.({ file, loaded: bytes.byteLength, total: total ?? bytes.byteLength });
      return bytes;
    }
    const response = await this.request(file);
    if (response.status === 404 && file !== CONFIG_FILE) {
      await response.body?.cancel();
      return null;
    }
    if (!response.ok) throw this.failure(file, response);
    let bytes: ArrayBuffer;
    try {
      const total = positiveInteger(response.headers.get('content-length'));
      bytes = await readBody(response, file, total, onProgress);
    } catch (error) {
      if (isAbort(error, signal)) throw signal?.reason ?? error;
      throw new ModelLoadError(
        'offline',
        `the download of ${file} from ${this.name} broke off: check the connection and load again (files already downloaded come from the cache)`,
        { cause: error },
      );
    }
    this.networkBytes += bytes.byteLength;
    if (this.cache) {
      const headers = { [SIZE_HEADER]: String(bytes.byteLength) };
      // A full quota must not fail the load: the model is in memory, only the next load is slower.
      await this.cache.put(this.url(file), new Response(bytes, { headers })).catch(() => undefined);
    }
    return bytes;
  }
}

/** 'folder/sub/name' for a file from a folder picker; Node's File has no webkitRelativePath. */
function relativePath(file: File): string {
  return file.webkitRelativePath || file.name;
}

/** File objects by name; in a picked folder the shallowest file of a name wins. */
class FilesStore implements FileStore {
  private readonly byName = new Map<string, File>();

  constructor(
    files: readonly File[],
    private readonly options: LoadModelOptions,
  ) {
    const depth = (file: File) => relativePath(file).split('/').length;
    for (const file of files) {
      const current = this.byName.get(file.name);
      if (!current || depth(file) < depth(current)) this.byName.set(file.name, file);
    }
  }

  /** The picked folder's name, or the first file's when the files were dropped one by one. */
  get name(): string {
    const withFolder = [...this.byName.values()].find((f) => relativePath(f).includes('/'));
    return withFolder ? relativePath(withFolder).split('/')[0] : 'local files';
  }

  async head(name: string, length: number) {
    const file = this.byName.get(name);
    if (!file) return null;
    return { bytes: new Uint8Array(await file.slice(0, length).arrayBuffer()), size: file.size };
  }

  async read(name: string): Promise<ArrayBuffer | null> {
    const file = this.byName.get(name);
    if (!file) return null;
    this.options.onProgress?.({ file: name, loaded: 0, total: file.size });
    const bytes = await file.arrayBuffer();
    this.options.onProgress?.({ file: name, loaded: bytes.byteLength, total: file.size });
    return bytes;
  }

  async finish(): Promise<void> {}
}

/**
 * The file size a header implies (its data section ends where the last tensor ends), for servers
 * that say neither Content-Range nor Content-Length.
 */
function impliedFileSize(headerBytes: Uint8Array, headerSize: number, file: string): number {
  const json = parseJsonFile(
    headerBytes.slice(HEADER_LENGTH_BYTES, headerSize).buffer,
    'header',
    file,
  );
  let end = 0;
  for (const [key, entry] of Object.entries(json as Record<string, unknown>)) {
    const offsets = (entry as { data_offsets?: unknown }).data_offsets;
    if (key !== '__metadata__' && Array.isArray(offsets) && typeof offsets[1] === 'number') {
      end = Math.max(end, offsets[1]);
    }
  }
  return headerSize + end;
}

async function readHeader(store: FileStore, file: string): Promise<SafetensorsHeader | null> {
  const prefix = await store.head(file, HEADER_LENGTH_BYTES);
  if (!prefix) return null;
  const headerSize = safetensorsHeaderSize(prefix.bytes, file, prefix.size ?? undefined);
  const whole = await store.head(file, headerSize);
  if (!whole) throw new ModelLoadError('http', `${file} disappeared while it was being read`);
  const size = whole.size ?? impliedFileSize(whole.bytes, headerSize, file);
  return parseSafetensorsHeader(whole.bytes, size, file);
}

/** Wraps what the parsers throw (unsupported architecture or dtype, bad files) with the model's name. */
async function asUnsupported<T>(
  name: string,
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof ModelLoadError || isAbort(error, signal)) throw error;
    throw new ModelLoadError('unsupported', `${name}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** Step 1: config, weight headers, tensor check and GPU size, without downloading weights. */
async function planModel(
  store: FileStore,
  name: string,
  options: LoadModelOptions,
): Promise<{ plan: ModelPlan; configBytes: ArrayBuffer; indexBytes: ArrayBuffer | null }> {
  const configBytes = await store.read(CONFIG_FILE);
  if (!configBytes) {
    throw new ModelLoadError(
      'not-found',
      `${name}: no ${CONFIG_FILE} (a model is the folder holding config.json, model.safetensors and tokenizer.json)`,
    );
  }
  return asUnsupported(name, options.signal, async () => {
    const config = parseModelConfig(parseJsonFile(configBytes, CONFIG_FILE, name));
    const files: ModelPlan['files'] = [{ name: CONFIG_FILE, size: configBytes.byteLength }];
    let directory: Map<string, TensorLocation>;
    let indexBytes: ArrayBuffer | null = null;
    const single = await readHeader(store, SINGLE_WEIGHTS_FILE);
    if (single) {
      directory = singleFileDirectory(single);
      files.push({ name: SINGLE_WEIGHTS_FILE, size: dataEnd(single) });
    } else {
      indexBytes = await store.read(SHARD_INDEX_FILE);
      if (!indexBytes) {
        throw new ModelLoadError(
          'unsupported',
          `${name}: no ${SINGLE_WEIGHTS_FILE} or ${SHARD_INDEX_FILE} (only safetensors checkpoints are supported)`,
        );
      }
      const index = parseShardIndex(parseJsonFile(indexBytes, SHARD_INDEX_FILE, name));
      files.push({ name: SHARD_INDEX_FILE, size: indexBytes.byteLength });
      const headers = new Map<string, SafetensorsHeader>();
      for (const shard of index.files) {
        throwIfAborted(options.signal);
        const header = await readHeader(store, shard);
        if (header) {
          headers.set(shard, header);
          files.push({ name: shard, size: dataEnd(header) });
        }
      }
      directory = combineShards(index, headers);
    }
    const weights = resolveWeights(config, directory);
    const weightDtype = options.weightDtype ?? 'f32';
    const size = estimateGpuSize(config, weights, options.limits ?? null, weightDtype);
    if (size.problems.length > 0) {
      throw new ModelLoadError(
        'too-large',
        `${name} is too large for this GPU: ${size.problems.join('; ')}. It ${size.notes[0]}; pick a smaller model.`,
      );
    }
    return { plan: { name, config, files, size }, configBytes, indexBytes };
  });
}

/** A file's size from its header: where the last tensor's data ends. */
function dataEnd(header: SafetensorsHeader): number {
  let end = 0;
  for (const tensor of header.tensors.values()) end = Math.max(end, tensor.dataOffsets[1]);
  return header.dataOffset + end;
}

async function defaultCache(): Promise<ModelFileCache | null> {
  if (typeof caches === 'undefined') return null;
  try {
    const cache = await caches.open(MODEL_CACHE_NAME);
    return {
      match: (url) => cache.match(url),
      put: (url, response) => cache.put(url, response),
    };
  } catch {
    // Cache Storage refuses opaque origins and some private modes; load without it.
    return null;
  }
}

/** Deletes every cached Hub download (for the picker's "clear cache"). */
export async function clearModelCache(): Promise<boolean> {
  if (typeof caches === 'undefined') return false;
  return caches.delete(MODEL_CACHE_NAME);
}

function absoluteBase(url: string): string {
  const base = url.endsWith('/') ? url : `${url}/`;
  const location = (globalThis as { location?: { href: string } }).location;
  try {
    return new URL(base, location?.href).href;
  } catch (error) {
    throw new ModelLoadError(
      'invalid-source',
      `'${url}' is not a URL a model can be loaded from: give an absolute http(s) URL of the folder holding config.json`,
      { cause: error },
    );
  }
}

function endpointBase(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (error) {
    throw new ModelLoadError(
      'invalid-source',
      `'${endpoint}' is not a Hub endpoint: give an http(s) URL such as ${DEFAULT_HUB_ENDPOINT}`,
      { cause: error },
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ModelLoadError(
      'invalid-source',
      `'${endpoint}' is not a Hub endpoint: give an http(s) URL such as ${DEFAULT_HUB_ENDPOINT}`,
    );
  }
  return url.href.replace(/\/+$/, '');
}

async function storeFor(
  source: ModelSource,
  options: LoadModelOptions,
): Promise<{ store: FileStore & { networkBytes?: number }; name: string }> {
  switch (source.kind) {
    case 'hub': {
      const repo = parseRepoId(source.repo);
      const revision = source.revision?.trim() || DEFAULT_REVISION;
      const endpoint = endpointBase(source.endpoint ?? DEFAULT_HUB_ENDPOINT);
      const base = `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/`;
      const cache = options.cache === undefined ? await defaultCache() : options.cache;
      const store = new RemoteStore(base, repo, { repo, revision, endpoint }, cache, options);
      await store.loadManifest();
      return { store, name: repo };
    }
    case 'url': {
      const base = absoluteBase(source.baseUrl);
      const name = source.name ?? base;
      const store = new RemoteStore(base, name, null, options.cache ?? null, options);
      await store.loadManifest();
      return { store, name };
    }
    case 'files': {
      if (source.files.length === 0) {
        throw new ModelLoadError(
          'invalid-source',
          'no files given: pick the model’s folder, or drop config.json, model.safetensors and tokenizer.json together',
        );
      }
      const store = new FilesStore(source.files, options);
      return { store, name: store.name };
    }
  }
}

/** Plans (size check first), downloads and builds a model; see the header comment. */
export async function loadModelFromSource(
  source: ModelSource,
  options: LoadModelOptions = {},
): Promise<LoadedModel> {
  const { signal } = options;
  throwIfAborted(signal);
  const { store, name } = await storeFor(source, options);
  const { plan, configBytes, indexBytes } = await planModel(store, name, options);
  options.onPlan?.(plan);
  throwIfAborted(signal);
  const planned = new Set(plan.files.map((file) => file.name));
  const present: string[] = [];
  const model = await asUnsupported(name, signal, () =>
    loadModelFiles(async (file) => {
      throwIfAborted(signal);
      let bytes: ArrayBuffer | null;
      if (file === CONFIG_FILE) bytes = configBytes;
      else if (file === SHARD_INDEX_FILE) bytes = indexBytes;
      else if (planned.has(file) || (OPTIONAL_JSON_FILES as readonly string[]).includes(file)) {
        bytes = await store.read(file);
      } else bytes = null; // model.safetensors of a sharded model: the plan knows it is absent.
      if (bytes) present.push(file);
      return bytes;
    }, name),
  );
  await store.finish(present);
  return { ...model, plan, networkBytes: store.networkBytes ?? 0 };
}

export interface TokenizerFiles {
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
}

/**
 * Only tokenizer.json and tokenizer_config.json of a model, for a page whose engine worker holds
 * the weights: after the worker's load, Hub files come from the cache without a request.
 */
export async function loadTokenizerFiles(
  source: ModelSource,
  options: Pick<LoadModelOptions, 'signal' | 'cache' | 'fetch'> = {},
): Promise<TokenizerFiles> {
  const { store, name } = await storeFor(source, options);
  const [tokenizerJson, tokenizerConfig] = await Promise.all(
    ['tokenizer.json', 'tokenizer_config.json'].map(async (file) => {
      const bytes = await store.read(file);
      return bytes === null ? null : parseJsonFile(bytes, file, name);
    }),
  );
  return { tokenizerJson, tokenizerConfig };
}
