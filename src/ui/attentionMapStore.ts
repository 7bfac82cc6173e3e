/**
 * The attention map the page shows: set by whoever ran the model (the engine client after a run
 * with a capture), read by AttentionMapPanel. Null until a real run has produced one.
 */
import { create } from 'zustand';
import type { AttentionMapViewData } from './attentionMapRender';

interface AttentionMapState {
  data: AttentionMapViewData | null;
  setAttentionMap: (data: AttentionMapViewData | null) => void;
}

export const useAttentionMapStore = create<AttentionMapState>()((set) => ({
  data: null,
  setAttentionMap: (data) => set({ data }),
}));
