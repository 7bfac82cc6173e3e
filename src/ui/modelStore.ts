/**
 * The model choice and its load state (zustand): which model, download progress per file, the
 * loaded model's summary or a plain error. The model is loaded into the engine's worker through
 * its client (src/engine/client.ts), which runs loadModelFromSource there and relays the plan and
 * the progress.
 */
import { create } from 'zustand';
import type { LoadedModelInfo } from '../engine/protocol';
import {
  clearModelCache,
  DEFAULT_HUB_ENDPOINT,
  loadTokenizerFiles,
  type ModelPlan,
  type ModelSource,
} from '../model/loading/sources';
import { engineClient } from './engineClient';
import { formatBytes } from './format';

/** Hub repos small enough for a laptop GPU, offered as one-click choices. */
export const SUGGESTED_HUB_MODELS: readonly { repo: string; note: string }[] = [
  { repo: 'HuggingFaceTB/SmolLM2-135M', note: '135M, base' },
  { repo: 'HuggingFaceTB/SmolLM2-135M-Instruct', note: '135M, chat' },
  { repo: 'HuggingFaceTB/SmolLM2-360M-Instruct', note: '360M, chat' },
  { repo: 'Qwen/Qwen2.5-0.5B-Instruct', note: '0.5B, chat' },
  { repo: 'meta-llama/Llama-3.2-1B-Instruct', note: '1.2B, chat, gated' },
  { repo: 'openai-community/gpt2', note: '124M, GPT-2' },
];

/** An entry of public/models/index.json: a model that ships with the app. */
export interface EmbeddedModel {
  name: string;
  label: string;
  /** Folder relative to the page, e.g. 'models/<name>/'. */
  path: string;
  /** The model card, a file in that folder (what the model can and cannot do), when it has one. */
  card?: string;
}

export type EmbeddedList =
  | { status: 'loading' }
  | { status: 'ready'; models: EmbeddedModel[] }
  | { status: 'failed'; message: string };

export interface FileProgress {
  file: string;
  loaded: number;
  total: number | null;
}

/** What the page shows of a loaded model; every figure comes from its files and the device. */
export interface ModelSummary {
  name: string;
  architecture: string;
  layers: number;
  hiddenSize: number;
  heads: number;
  kvHeads: number;
  vocabSize: number;
  maxPositions: number;
  parameters: number;
  weightBytes: number;
  /** Whether every weight buffer is within the engine device's limits (the plan's size check). */
  fits: boolean;
  fitProblems: string[];
  fitNotes: string[];
  /** Where the engine runs it, e.g. the adapter's description. */
  adapter: string;
  chat: boolean;
  networkBytes: number;
}

export type ModelLoadState =
  | { status: 'idle' }
  | { status: 'loading'; name: string; plan: ModelPlan | null; files: FileProgress[] }
  | { status: 'loaded'; summary: ModelSummary }
  | { status: 'failed'; name: string; message: string }
  | { status: 'cancelled'; name: string };

interface ModelStoreState {
  /** The Hub (or a mirror, or a test server): the page's `hub` URL parameter, else the Hub. */
  hubEndpoint: string;
  embedded: EmbeddedList;
  load: ModelLoadState;
  fetchEmbeddedList: () => Promise<void>;
  loadModel: (source: ModelSource) => Promise<void>;
  cancel: () => void;
  clearCache: () => Promise<void>;
}

export function summarizeModel(plan: ModelPlan, info: LoadedModelInfo): ModelSummary {
  const { config, size } = plan;
  return {
    name: plan.name,
    architecture: config.architecture,
    layers: config.numLayers,
    hiddenSize: config.hiddenSize,
    heads: config.numHeads,
    kvHeads: config.numKvHeads,
    vocabSize: config.vocabSize,
    maxPositions: config.maxPositionEmbeddings,
    parameters: size.parameters,
    weightBytes: size.weightBytes,
    fits: size.problems.length === 0,
    fitProblems: size.problems,
    fitNotes: size.notes,
    adapter: info.adapter,
    chat: info.chat,
    networkBytes: info.networkBytes,
  };
}

/** Parses public/models/index.json, saying which entry is malformed. */
export function parseEmbeddedList(json: unknown): EmbeddedModel[] {
  if (!Array.isArray(json)) throw new Error('models/index.json is not a JSON array');
  return json.map((entry: unknown, i) => {
    const { name, label, path, card } = (entry ?? {}) as Record<string, unknown>;
    if (typeof name !== 'string' || typeof label !== 'string' || typeof path !== 'string') {
      throw new Error(`models/index.json entry ${i} needs string name, label and path`);
    }
    if (card === undefined) return { name, label, path };
    if (typeof card !== 'string' || card === '' || card.includes('/')) {
      throw new Error(`models/index.json entry ${i}: card must name a file in the model's folder`);
    }
    return { name, label, path, card };
  });
}

function hubEndpointFromPage(): string {
  if (typeof location === 'undefined') return DEFAULT_HUB_ENDPOINT;
  return new URLSearchParams(location.search).get('hub') || DEFAULT_HUB_ENDPOINT;
}

/**
 * The bundled model to load when the page starts, or null: the first one of models/index.json,
 * once the GPU is ready and while nothing else is loaded or loading, so a first visit shows real
 * results without a click. Not with `?model=none` in the URL (start empty), nor when a shared link
 * names a model that is not bundled (the page says which model the link was made with).
 */
export function embeddedModelAtStart(page: {
  search: string;
  gpuReady: boolean;
  embedded: EmbeddedList;
  load: ModelLoadState;
  sharedModel: string | null;
}): EmbeddedModel | null {
  const { search, gpuReady, embedded, load, sharedModel } = page;
  if (new URLSearchParams(search).get('model') === 'none') return null;
  if (!gpuReady || load.status !== 'idle' || embedded.status !== 'ready') return null;
  if (sharedModel !== null) {
    return embedded.models.find((m) => m.label === sharedModel || m.name === sharedModel) ?? null;
  }
  return embedded.models[0] ?? null;
}

/** What the page keeps of the loaded model; its weights live in the engine's worker. */
export interface PageModel {
  plan: ModelPlan;
  info: LoadedModelInfo;
  /** For encoding prompts on the page as the worker does (null when the model has none). */
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
}

let loadedModel: PageModel | null = null;

export function getLoadedModel(): PageModel | null {
  return loadedModel;
}

/** A page-relative folder (public/models/<name>/) as an absolute URL the worker can fetch. */
function resolvedSource(source: ModelSource): ModelSource {
  if (source.kind !== 'url' || typeof location === 'undefined') return source;
  return { ...source, baseUrl: new URL(source.baseUrl, location.href).href };
}

function nameOf(source: ModelSource): string {
  switch (source.kind) {
    case 'hub':
      return source.repo.trim();
    case 'url':
      return source.name ?? source.baseUrl;
    case 'files':
      return 'local files';
  }
}

export const useModelStore = create<ModelStoreState>()((set, get) => {
  let controller: AbortController | null = null;

  /** Applies a change to the in-flight load only (a cancelled or superseded one is left alone). */
  const updateLoading = (
    mine: AbortController,
    change: (state: Extract<ModelLoadState, { status: 'loading' }>) => ModelLoadState,
  ) => {
    const { load } = get();
    if (controller === mine && load.status === 'loading') set({ load: change(load) });
  };

  return {
    hubEndpoint: hubEndpointFromPage(),
    embedded: { status: 'loading' },
    load: { status: 'idle' },

    fetchEmbeddedList: async () => {
      try {
        const response = await fetch('models/index.json');
        if (!response.ok) throw new Error(`models/index.json: HTTP ${response.status}`);
        set({ embedded: { status: 'ready', models: parseEmbeddedList(await response.json()) } });
      } catch (error) {
        set({ embedded: { status: 'failed', message: (error as Error).message } });
      }
    },

    loadModel: async (source) => {
      controller?.abort();
      const mine = new AbortController();
      controller = mine;
      const name = nameOf(source);
      set({ load: { status: 'loading', name, plan: null, files: [] } });
      let plan: ModelPlan | null = null;
      const resolved = resolvedSource(source);
      try {
        const info = await engineClient().loadModel(resolved, {
          signal: mine.signal,
          onPlan: (checked) => {
            plan = checked;
            updateLoading(mine, (load) => ({
              ...load,
              name: checked.name,
              plan: checked,
              // Files read while planning (config.json) keep the progress they reported.
              files: checked.files.map(
                (f) =>
                  load.files.find((p) => p.file === f.name) ?? {
                    file: f.name,
                    loaded: 0,
                    total: f.size,
                  },
              ),
            }));
          },
          onProgress: (progress) =>
            updateLoading(mine, (load) => {
              const files = load.files.filter((f) => f.file !== progress.file);
              const index = load.files.findIndex((f) => f.file === progress.file);
              files.splice(index < 0 ? files.length : index, 0, progress);
              return { ...load, files };
            }),
        });
        const tokenizer = await loadTokenizerFiles(resolved, { signal: mine.signal });
        if (controller !== mine) return;
        if (!plan) throw new Error('the engine loaded the model without reporting its plan');
        loadedModel = { plan, info, ...tokenizer };
        set({ load: { status: 'loaded', summary: summarizeModel(plan, info) } });
      } catch (error) {
        if (controller !== mine) return;
        if (mine.signal.aborted) {
          set({ load: { status: 'cancelled', name } });
        } else {
          set({ load: { status: 'failed', name, message: (error as Error).message } });
        }
      } finally {
        if (controller === mine) controller = null;
      }
    },

    cancel: () => controller?.abort(),

    clearCache: async () => {
      await clearModelCache();
    },
  };
});

/** "12.3 MiB of 45.6 MiB" for a progress row. */
export function describeProgress(progress: FileProgress): string {
  return progress.total === null
    ? formatBytes(progress.loaded)
    : `${formatBytes(progress.loaded)} of ${formatBytes(progress.total)}`;
}
