/**
 * The attention map the page shows and the request that makes one: mapPrompt runs a prompt through
 * the loaded model in the engine worker (with the run settings' attention) and keeps the map of
 * one layer. Null until a real run has produced one.
 */
import { create } from 'zustand';
import type { AttentionPair } from '../engine/sweepTypes';
import { viewDataFromRun, type AttentionMapViewData } from './attentionMapRender';
import { engineClient } from './engineClient';

export interface MapPromptRequest {
  modelName: string;
  numLayers: number;
  text: string;
  attention: AttentionPair;
  layer: number;
}

interface AttentionMapState {
  data: AttentionMapViewData | null;
  running: boolean;
  /** Why the last request failed, in words. */
  error: string | null;
  setAttentionMap: (data: AttentionMapViewData | null) => void;
  mapPrompt: (request: MapPromptRequest) => Promise<void>;
}

/** What is wrong with the request, or null. */
function requestProblem({ text, layer, numLayers }: MapPromptRequest): string | null {
  if (text.trim() === '') return 'Type a prompt to map its attention.';
  if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
    return `Choose a layer from 0 to ${numLayers - 1}.`;
  }
  return null;
}

export const useAttentionMapStore = create<AttentionMapState>()((set, get) => ({
  data: null,
  running: false,
  error: null,
  setAttentionMap: (data) => set({ data }),
  mapPrompt: async (request) => {
    if (get().running) return;
    const problem = requestProblem(request);
    if (problem) {
      set({ error: problem });
      return;
    }
    set({ running: true, error: null });
    try {
      const reply = await engineClient().attentionMap({
        prompt: { text: request.text },
        attention: request.attention,
        layer: request.layer,
      });
      const data = viewDataFromRun({
        title: `${request.modelName} · ${reply.tokens.length} tokens`,
        layer: request.layer,
        map: reply.map,
        tokens: reply.tokens,
        stats: reply.stats,
      });
      set({ data, running: false });
    } catch (error) {
      set({ running: false, error: error instanceof Error ? error.message : String(error) });
    }
  },
}));
