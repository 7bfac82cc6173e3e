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
import {
  paramsForPreviewSparsity,
  planMaskPreview,
  PREVIEW_METHODS,
  type MaskPreview,
} from '../engine/maskPreview';
import type { MethodName, MethodParams, ParamValue } from '../methods/types';

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

export interface PatternError {
  message: string;
  /** 1-based line in the user's mask_mod source, when known. */
  line: number | null;
}

export interface PatternsState {
  method: MethodName;
  seqLen: number;
  /** The asked (target) sparsity of the slider. */
  sparsity: number;
  /** Current params of every method, kept when switching between them. */
  params: Partial<Record<MethodName, MethodParams>>;
  head: number;
  preview: MaskPreview | null;
  error: PatternError | null;
  computing: boolean;
}

interface AppState {
  gpu: GpuState;
  selfCheck: SelfCheckState;
  theme: ThemePreference;
  connect: () => Promise<void>;
  runSelfCheck: () => Promise<void>;
  setTheme: (theme: ThemePreference) => void;
  patterns: PatternsState;
  setPatternMethod: (method: MethodName) => void;
  setPatternSeqLen: (seqLen: number) => void;
  setPatternSparsity: (sparsity: number) => void;
  setPatternParam: (key: string, value: ParamValue) => void;
  setPatternHead: (head: number) => void;
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

const initialSparsity = 0.5;
const initialSeqLen = 1024;

function initialPatterns(): PatternsState {
  const method = PREVIEW_METHODS[0];
  return {
    method,
    seqLen: initialSeqLen,
    sparsity: initialSparsity,
    params: { [method]: paramsForPreviewSparsity(method, initialSparsity, initialSeqLen, {}) },
    head: 0,
    preview: null,
    error: null,
    computing: true,
  };
}

function patternError(error: unknown): PatternError {
  const line =
    error instanceof Error && 'line' in error && typeof error.line === 'number' ? error.line : null;
  return { message: messageOf(error), line };
}

/** The live device; kept out of the reactive state because components never use it directly. */
let context: GpuContext | undefined;

export const useAppStore = create<AppState>()((set, get) => {
  let previewTimer: ReturnType<typeof setTimeout> | undefined;

  /** Replans the preview soon (coalescing quick changes such as slider drags and typing). */
  const schedulePreview = () => {
    clearTimeout(previewTimer);
    set((state) => ({ patterns: { ...state.patterns, computing: true } }));
    previewTimer = setTimeout(() => {
      const { method, seqLen, params } = get().patterns;
      let preview: MaskPreview | null = null;
      let error: PatternError | null = null;
      try {
        preview = planMaskPreview(method, seqLen, params[method] ?? {});
      } catch (e) {
        error = patternError(e);
      }
      set((state) => ({
        patterns: {
          ...state.patterns,
          // A failed plan keeps the last picture, marked stale by the error beside it.
          preview: preview ?? state.patterns.preview,
          error,
          computing: false,
          head: Math.min(state.patterns.head, (preview?.numHeads ?? 1) - 1),
        },
      }));
    }, 60);
  };

  const updatePatterns = (change: (p: PatternsState) => Partial<PatternsState>) => {
    set((state) => ({ patterns: { ...state.patterns, ...change(state.patterns) } }));
    schedulePreview();
  };

  /** The method's params for the current sparsity target, keeping its code params. */
  const paramsAt = (p: PatternsState, method: MethodName, sparsity: number, seqLen: number) =>
    paramsForPreviewSparsity(method, sparsity, seqLen, p.params[method] ?? {});

  if (typeof window !== 'undefined') queueMicrotask(schedulePreview);

  return {
    gpu: { status: 'connecting' },
    selfCheck: { status: 'idle', results: [] },
    theme: storedTheme(),
    patterns: initialPatterns(),

    setPatternMethod: (method) =>
      updatePatterns((p) => ({
        method,
        params: {
          ...p.params,
          [method]: p.params[method] ?? paramsAt(p, method, p.sparsity, p.seqLen),
        },
        error: null,
      })),

    setPatternSeqLen: (seqLen) =>
      updatePatterns((p) => ({
        seqLen,
        params: { ...p.params, [p.method]: paramsAt(p, p.method, p.sparsity, seqLen) },
      })),

    setPatternSparsity: (sparsity) =>
      updatePatterns((p) => ({
        sparsity,
        params: { ...p.params, [p.method]: paramsAt(p, p.method, sparsity, p.seqLen) },
      })),

    setPatternParam: (key, value) =>
      updatePatterns((p) => ({
        params: { ...p.params, [p.method]: { ...p.params[p.method], [key]: value } },
      })),

    setPatternHead: (head) => set((state) => ({ patterns: { ...state.patterns, head } })),

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
  };
});
