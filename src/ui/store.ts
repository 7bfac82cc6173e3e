/**
 * The app's state (zustand). Components read it and call its actions; the actions talk to the GPU
 * runtime and the engine, so no component touches a device or a buffer.
 */
import { create } from 'zustand';
import {
  acquireGpuContext,
  WebGpuUnavailableError,
  type AdapterSummary,
  type GpuCapabilities,
  type GpuContext,
} from '../gpu/context';
import { runSelfCheck, type SelfCheckResult } from '../engine/selfCheck';

export type GpuState =
  | { status: 'connecting' }
  | { status: 'ready'; adapter: AdapterSummary; caps: GpuCapabilities }
  | { status: 'unavailable'; message: string }
  | { status: 'lost'; message: string; adapter: AdapterSummary }
  | { status: 'failed'; message: string };

export interface SelfCheckState {
  status: 'idle' | 'running' | 'done';
  /** Index-aligned with selfCheckCases; missing entries have not run yet. */
  results: SelfCheckResult[];
}

export type ThemePreference = 'system' | 'light' | 'dark';

interface AppState {
  gpu: GpuState;
  selfCheck: SelfCheckState;
  theme: ThemePreference;
  connect: () => Promise<void>;
  runSelfCheck: () => Promise<void>;
  setTheme: (theme: ThemePreference) => void;
}

const themeKey = 'sparse-attention-playground.theme';

function storedTheme(): ThemePreference {
  try {
    const value = localStorage.getItem(themeKey);
    return value === 'light' || value === 'dark' ? value : 'system';
  } catch {
    return 'system';
  }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The live device; kept out of the reactive state because components never use it directly. */
let context: GpuContext | undefined;

export const useAppStore = create<AppState>()((set, get) => ({
  gpu: { status: 'connecting' },
  selfCheck: { status: 'idle', results: [] },
  theme: storedTheme(),

  connect: async () => {
    context = undefined;
    set({ gpu: { status: 'connecting' }, selfCheck: { status: 'idle', results: [] } });
    let ctx: GpuContext;
    try {
      ctx = await acquireGpuContext(navigator.gpu);
    } catch (error) {
      const message = messageOf(error);
      set({
        gpu:
          error instanceof WebGpuUnavailableError
            ? { status: 'unavailable', message }
            : { status: 'failed', message: `Could not start WebGPU: ${message}` },
      });
      return;
    }
    context = ctx;
    void ctx.lost.then((info) => {
      if (context !== ctx) return;
      context = undefined;
      const detail = info.message ? `: ${info.message.replace(/\.+$/, '')}` : '';
      set((state) => ({
        gpu: {
          status: 'lost',
          message: `The GPU device was lost (${info.reason})${detail}.`,
          adapter: ctx.adapter,
        },
        // A check cut short by the loss ends here; its remaining cases show as not run.
        selfCheck: {
          ...state.selfCheck,
          status: state.selfCheck.status === 'idle' ? 'idle' : 'done',
        },
      }));
    });
    set({ gpu: { status: 'ready', adapter: ctx.adapter, caps: ctx.caps } });
    await get().runSelfCheck();
  },

  runSelfCheck: async () => {
    const ctx = context;
    if (!ctx || get().selfCheck.status === 'running') return;
    set({ selfCheck: { status: 'running', results: [] } });
    // A reconnect while this runs starts a fresh check on the new device; this one then goes quiet.
    await runSelfCheck(ctx, (result, index) => {
      if (context !== ctx) return;
      const results = [...get().selfCheck.results];
      results[index] = result;
      set({ selfCheck: { status: 'running', results } });
    });
    if (context !== ctx) return;
    set((state) => ({ selfCheck: { ...state.selfCheck, status: 'done' } }));
  },

  setTheme: (theme) => {
    try {
      localStorage.setItem(themeKey, theme);
    } catch {
      // Storage can be unavailable (private windows); the choice then lasts for this visit only.
    }
    set({ theme });
  },
}));
