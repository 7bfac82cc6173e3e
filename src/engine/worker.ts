/**
 * The engine's Web Worker: holds the GPU device and the loaded model, runs sweeps (results into
 * IndexedDB as they come) and single generations, and answers in the messages of protocol.ts. The
 * page talks to it through client.ts; WebGPU is available in workers, so the page stays
 * responsive while a sweep runs.
 */
import { acquireGpuContext, type GpuContext } from '../gpu/context';
import { loadModelFromSource, type LoadedModel } from '../model/loading/sources';
import { promptAttentionMap } from '../model/runtime/attentionMap';
import { uploadModel, type Model } from '../model/runtime/model';
import { TextTokenizer } from '../model/tokenizer';
import { ModelBackend, runtimeMethod, tokenizerCodec } from './modelBackend';
import type {
  AttentionMapRequest,
  GenerateRequest,
  LoadModelRequest,
  StartSweepRequest,
  WorkerReply,
  WorkerRequest,
} from './protocol';
import { IndexedDbResultStore } from './store/indexedDb';
import { runSweep, sweepFingerprint } from './sweep';

interface Loaded {
  files: LoadedModel;
  tokenizer: TextTokenizer;
  chat: boolean;
  backend: ModelBackend;
  request: LoadModelRequest;
}

/** The model kept for generate requests, reused while the attention and length stay the same. */
interface CachedModel {
  key: string;
  model: Model;
}

const scope = self as unknown as {
  postMessage(message: WorkerReply): void;
  onmessage: ((event: MessageEvent<WorkerRequest>) => void) | null;
};

let gpu: Promise<GpuContext> | null = null;
let loaded: Loaded | null = null;
let generationModel: CachedModel | null = null;
const running = new Map<number, AbortController>();
/** The id of the sweep request in progress: one at a time, each loads its own models. */
let sweepRunning: number | null = null;

const post = (reply: WorkerReply) => scope.postMessage(reply);

function context(): Promise<GpuContext> {
  gpu ??= acquireGpuContext(navigator.gpu).catch((error: unknown) => {
    gpu = null;
    throw error;
  });
  return gpu;
}

function requireModel(): Loaded {
  if (!loaded) throw new Error('no model is loaded: load one first');
  return loaded;
}

function dropGenerationModel(): void {
  generationModel?.model.dispose();
  generationModel = null;
}

async function loadModel(request: LoadModelRequest, signal: AbortSignal): Promise<void> {
  if (sweepRunning !== null) {
    throw new Error('a sweep is running on the loaded model: cancel it before loading another');
  }
  const ctx = await context();
  const weightDtype = request.weightDtype ?? 'f32';
  const files = await loadModelFromSource(request.source, {
    signal,
    weightDtype,
    limits: {
      maxBufferSize: ctx.device.limits.maxBufferSize,
      maxStorageBufferBindingSize: ctx.device.limits.maxStorageBufferBindingSize,
    },
    onPlan: (plan) => post({ type: 'loadPlan', id: request.id, plan }),
    onProgress: (progress) => post({ type: 'loadProgress', id: request.id, progress }),
  });
  if (!files.tokenizerJson) {
    throw new Error(
      `${files.plan.name} has no tokenizer.json; the playground needs the model's tokenizer`,
    );
  }
  const tokenizer = new TextTokenizer(files.tokenizerJson, files.tokenizerConfig ?? {});
  const mode = request.chat ?? 'auto';
  const chat = mode === 'on' || (mode === 'auto' && tokenizer.chatTemplate !== null);
  const kvDtype = request.kvDtype ?? 'f32';
  const backend = new ModelBackend(ctx, files.model, tokenizerCodec(tokenizer, { chat }), {
    name: `${files.plan.name} (weights ${weightDtype}, kv ${kvDtype}, chat ${chat ? 'on' : 'off'})`,
    weightDtype,
    kvDtype,
  });
  dropGenerationModel();
  loaded = { files, tokenizer, chat, backend, request };
  const adapter = ctx.adapter;
  post({
    type: 'modelLoaded',
    id: request.id,
    info: {
      model: backend.model,
      chat,
      adapter: adapter.description || adapter.vendor || adapter.architecture || 'WebGPU',
      networkBytes: files.networkBytes,
    },
  });
}

async function startSweep(request: StartSweepRequest, signal: AbortSignal): Promise<void> {
  const { backend } = requireModel();
  if (sweepRunning !== null) {
    throw new Error('a sweep is already running: cancel it or wait for it to finish');
  }
  sweepRunning = request.id;
  try {
    await runSweepToStore(request, backend, signal);
  } finally {
    sweepRunning = null;
  }
}

async function runSweepToStore(
  request: StartSweepRequest,
  backend: ModelBackend,
  signal: AbortSignal,
): Promise<void> {
  const sweepId = sweepFingerprint(request.config, backend.model);
  const store = await IndexedDbResultStore.open({
    sweepId,
    model: backend.model,
    config: request.config,
  });
  // A sweep creates its own models; the cached generation model would only hold GPU memory.
  dropGenerationModel();
  try {
    for await (const event of runSweep(request.config, backend, store, { signal })) {
      post({ type: 'sweepEvent', id: request.id, sweepId, event });
    }
  } finally {
    store.close();
  }
}

async function generate(request: GenerateRequest, signal: AbortSignal): Promise<void> {
  const current = requireModel();
  const ctx = await context();
  const promptIds =
    'ids' in request.prompt
      ? request.prompt.ids
      : current.backend.encodePrompt(request.prompt.text, [
          { role: 'user', content: request.prompt.text },
        ]);
  const maxSeqLen = promptIds.length + request.maxNewTokens;
  const limit = current.backend.model.maxPositions;
  if (maxSeqLen > limit) {
    throw new Error(
      `${promptIds.length} prompt tokens + ${request.maxNewTokens} new tokens exceed the ` +
        `${limit} positions of the model; shorten the prompt or ask for fewer tokens`,
    );
  }
  // Models are sized in steps of 1024 tokens so that similar requests share one upload.
  const capacity = Math.min(limit, Math.ceil(maxSeqLen / 1024) * 1024);
  const key = JSON.stringify([request.attention, capacity]);
  if (generationModel?.key !== key) {
    dropGenerationModel();
    const { weightDtype, kvDtype } = current.request;
    generationModel = {
      key,
      model: await uploadModel(ctx, current.files.model, {
        weightDtype,
        kvDtype,
        maxSeqLen: capacity,
        attention: {
          prefill: runtimeMethod(request.attention.prefill),
          decode: runtimeMethod(request.attention.decode),
        },
      }),
    };
  }
  const { model } = generationModel;
  const ids: number[] = [];
  const result = await model.generate(promptIds, {
    maxNewTokens: request.maxNewTokens,
    temperature: request.temperature,
    topK: request.topK,
    topP: request.topP,
    seed: request.seed,
    onToken: (token, index) => {
      ids.push(token);
      post({
        type: 'token',
        id: request.id,
        token,
        index,
        text: current.tokenizer.decode(ids, { skipSpecialTokens: true }),
      });
      return !signal.aborted;
    },
  });
  post({
    type: 'generated',
    id: request.id,
    reply: {
      promptIds: [...promptIds],
      ids: result.ids,
      text: current.tokenizer.decode(result.ids, { skipSpecialTokens: true }),
      stopReason: result.stopReason,
      timings: result.timings,
      stats: model.stats,
    },
  });
}

// ---- attention map (src/model/runtime/attentionMap.ts) ----
async function attentionMap(request: AttentionMapRequest): Promise<void> {
  const current = requireModel();
  const ctx = await context();
  const ids =
    'ids' in request.prompt
      ? request.prompt.ids
      : current.backend.encodePrompt(request.prompt.text, [
          { role: 'user', content: request.prompt.text },
        ]);
  const limit = current.backend.model.maxPositions;
  if (ids.length > limit) {
    throw new Error(`${ids.length} prompt tokens exceed the ${limit} positions of the model`);
  }
  // A model sized for the prompt; the cached generation model would only hold GPU memory.
  dropGenerationModel();
  const { weightDtype, kvDtype } = current.request;
  const model = await uploadModel(ctx, current.files.model, {
    weightDtype,
    kvDtype,
    maxSeqLen: ids.length,
    attention: {
      prefill: runtimeMethod(request.attention.prefill),
      decode: runtimeMethod(request.attention.decode),
    },
  });
  try {
    const { prefill } = request.attention;
    const map = await promptAttentionMap(ctx, model, {
      ids,
      layer: request.layer,
      blockSize: request.blockSize,
      method: prefill.name === 'dense' ? undefined : prefill,
    });
    const tokens = ids.map((id) => current.tokenizer.decode([id], { skipSpecialTokens: false }));
    post({ type: 'attentionMap', id: request.id, reply: { map, tokens, stats: model.stats } });
  } finally {
    model.dispose();
  }
}
// ---- end attention map ----

async function handle(request: Exclude<WorkerRequest, { type: 'cancel' }>): Promise<void> {
  const controller = new AbortController();
  running.set(request.id, controller);
  try {
    if (request.type === 'loadModel') await loadModel(request, controller.signal);
    else if (request.type === 'startSweep') await startSweep(request, controller.signal);
    else if (request.type === 'attentionMap') await attentionMap(request);
    else await generate(request, controller.signal);
    post({ type: 'done', id: request.id });
  } catch (error) {
    const cancelled = controller.signal.aborted;
    const message = error instanceof Error ? error.message : String(error);
    post({ type: 'error', id: request.id, message, cancelled });
  } finally {
    running.delete(request.id);
  }
}

scope.onmessage = (event) => {
  const request = event.data;
  if (request.type === 'cancel') {
    running.get(request.id)?.abort();
    return;
  }
  void handle(request);
};
