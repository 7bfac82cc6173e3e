/**
 * The page's side of the engine worker (worker.ts): one method per request of protocol.ts, each a
 * promise that settles with the request's 'done' or 'error' reply, with callbacks for what streams
 * before it. An AbortSignal cancels a request: a model load rejects with an AbortError, a sweep
 * resolves after its final event (cancelled: true), a generation resolves with the tokens it had
 * (stopReason 'callback').
 */
import type { LoadProgress, ModelPlan, ModelSource } from '../model/loading/sources';
import type {
  AttentionMapReply,
  AttentionMapRequest,
  GenerateReply,
  GenerateRequest,
  LoadedModelInfo,
  LoadModelRequest,
  WorkerReply,
  WorkerRequest,
} from './protocol';
import type { SweepConfig, SweepEvent } from './sweepTypes';

/** The engine worker, bundled by Vite as a module worker. */
export function createEngineWorker(): Worker {
  return new Worker(new URL('./worker.ts', import.meta.url), { type: 'module' });
}

/** The message channel the client needs (a Worker, or a test double). */
export interface WorkerPort {
  postMessage(message: WorkerRequest): void;
  addEventListener(type: 'message', listener: (event: MessageEvent<WorkerReply>) => void): void;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  terminate?(): void;
}

interface Pending {
  onReply(reply: WorkerReply): void;
  resolve(): void;
  reject(error: Error): void;
}

/**
 * A 'url' source relative to the page made absolute: the worker would resolve it against its own
 * script's address (the assets folder) instead.
 */
export function pageRelativeSource(source: ModelSource, pageUrl: string): ModelSource {
  return source.kind === 'url'
    ? { ...source, baseUrl: new URL(source.baseUrl, pageUrl).href }
    : source;
}

function abortError(message: string): Error {
  const error = new Error(message);
  error.name = 'AbortError';
  return error;
}

export class EngineClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly port: WorkerPort = createEngineWorker()) {
    port.addEventListener('message', (event: MessageEvent<WorkerReply>) =>
      this.receive(event.data),
    );
    port.addEventListener('error', (event: ErrorEvent) => {
      const error = new Error(`the engine worker failed: ${event.message || 'unknown error'}`);
      for (const request of this.pending.values()) request.reject(error);
      this.pending.clear();
    });
  }

  /** Loads a model into the worker (replacing the one it had). */
  loadModel(
    source: ModelSource,
    options: Omit<LoadModelRequest, 'type' | 'id' | 'source'> & {
      onPlan?: (plan: ModelPlan) => void;
      onProgress?: (progress: LoadProgress) => void;
      signal?: AbortSignal;
    } = {},
  ): Promise<LoadedModelInfo> {
    const { onPlan, onProgress, signal, ...rest } = options;
    let info: LoadedModelInfo | null = null;
    const pageUrl = globalThis.document?.baseURI ?? globalThis.location?.href;
    const resolved = pageUrl ? pageRelativeSource(source, pageUrl) : source;
    return this.send(
      (id) => ({ type: 'loadModel', id, source: resolved, ...rest }),
      (reply) => {
        if (reply.type === 'loadPlan') onPlan?.(reply.plan);
        if (reply.type === 'loadProgress') onProgress?.(reply.progress);
        if (reply.type === 'modelLoaded') info = reply.info;
      },
      signal,
    ).then(() => {
      if (!info) throw new Error('the engine worker finished loading without describing the model');
      return info;
    });
  }

  /**
   * Runs a sweep on the loaded model; every event is handed to onEvent as it happens (with the
   * sweep's IndexedDB id). Resolves after the final 'done' event, also when cancelled through the
   * signal: what finished is in IndexedDB and the same config resumes it.
   */
  runSweep(
    config: SweepConfig,
    options: { onEvent: (event: SweepEvent, sweepId: string) => void; signal?: AbortSignal },
  ): Promise<void> {
    return this.send(
      (id) => ({ type: 'startSweep', id, config }),
      (reply) => {
        if (reply.type === 'sweepEvent') options.onEvent(reply.event, reply.sweepId);
      },
      options.signal,
    );
  }

  /** One generation; tokens stream to onToken (with the text decoded so far). */
  generate(
    request: Omit<GenerateRequest, 'type' | 'id'>,
    options: {
      onToken?: (token: number, index: number, text: string) => void;
      signal?: AbortSignal;
    } = {},
  ): Promise<GenerateReply> {
    let result: GenerateReply | null = null;
    return this.send(
      (id) => ({ type: 'generate', id, ...request }),
      (reply) => {
        if (reply.type === 'token') options.onToken?.(reply.token, reply.index, reply.text);
        if (reply.type === 'generated') result = reply.reply;
      },
      options.signal,
    ).then(() => {
      if (!result) throw new Error('the engine worker finished generating without a result');
      return result;
    });
  }

  /** The attention map of one layer for a prompt (the worker runs it on a model of its own). */
  attentionMap(
    request: Omit<AttentionMapRequest, 'type' | 'id'>,
    options: { signal?: AbortSignal } = {},
  ): Promise<AttentionMapReply> {
    let result: AttentionMapReply | null = null;
    return this.send(
      (id) => ({ type: 'attentionMap', id, ...request }),
      (reply) => {
        if (reply.type === 'attentionMap') result = reply.reply;
      },
      options.signal,
    ).then(() => {
      if (!result) throw new Error('the engine worker finished the attention map without a map');
      return result;
    });
  }

  /** Stops the worker; pending requests reject. */
  terminate(): void {
    this.port.terminate?.();
    for (const request of this.pending.values()) request.reject(abortError('the engine stopped'));
    this.pending.clear();
  }

  private send(
    build: (id: number) => WorkerRequest,
    onReply: (reply: WorkerReply) => void,
    signal?: AbortSignal,
  ): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError('cancelled before it started'));
    const id = this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const cancel = () => this.port.postMessage({ type: 'cancel', id });
      signal?.addEventListener('abort', cancel, { once: true });
      const cleanup = () => signal?.removeEventListener('abort', cancel);
      this.pending.set(id, {
        onReply,
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      });
      this.port.postMessage(build(id));
    });
  }

  private receive(reply: WorkerReply): void {
    const request = this.pending.get(reply.id);
    if (!request) return;
    if (reply.type === 'done') {
      this.pending.delete(reply.id);
      request.resolve();
    } else if (reply.type === 'error') {
      this.pending.delete(reply.id);
      request.reject(reply.cancelled ? abortError(reply.message) : new Error(reply.message));
    } else {
      request.onReply(reply);
    }
  }
}
