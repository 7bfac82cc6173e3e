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
import { paramsForPreviewSparsity, PREVIEW_METHODS, type MaskPreview } from '../engine/maskPreview';
import { MaskPreviewClient, PreviewSuperseded, type PlannedPreview } from './maskPreviewClient';
import type { TokenPicture } from './tokenMask';
import { getMethod } from '../methods/registry';
import {
  resolveParams,
  type MethodName,
  type MethodParams,
  type ParamValue,
} from '../methods/types';
import type { SharedPattern } from './shareState';

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
  /** A mask_mod from a shared link that has not run: it waits for the user's click. */
  held: boolean;
  /** Which picture the panel shows. */
  level: 'blocks' | 'tokens';
  /** The token-level picture (planned while level is 'tokens'). */
  tokenPicture: TokenPicture | null;
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
  /** Restores a shared link's pattern; a mask_mod source is held until releasePattern. */
  restorePatterns: (shared: SharedPattern) => void;
  releasePattern: () => void;
  setPatternLevel: (level: 'blocks' | 'tokens') => void;
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
    held: false,
    level: 'blocks',
    tokenPicture: null,
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
  // Plans run in a worker: a user's mask_mod can loop forever without freezing the page.
  let previewClient: MaskPreviewClient | undefined;

  /** Replans the preview soon (coalescing quick changes such as slider drags and typing). */
  const schedulePreview = () => {
    clearTimeout(previewTimer);
    // A shared link's code never runs before the user's click.
    if (get().patterns.held) return;
    set((state) => ({ patterns: { ...state.patterns, computing: true } }));
    previewTimer = setTimeout(() => {
      const { method, seqLen, params, level } = get().patterns;
      previewClient ??= new MaskPreviewClient();
      previewClient.plan(method, seqLen, params[method] ?? {}, level === 'tokens').then(
        (planned) => showPreview(planned, null),
        (error: unknown) => {
          if (!(error instanceof PreviewSuperseded)) showPreview(null, patternError(error));
        },
      );
    }, 60);
  };

  const showPreview = (planned: PlannedPreview | null, error: PatternError | null) => {
    const preview = planned?.preview ?? null;
    set((state) => ({
      patterns: {
        ...state.patterns,
        // A failed plan keeps the last pictures, marked stale by the error beside them.
        preview: preview ?? state.patterns.preview,
        tokenPicture: planned ? planned.tokens : state.patterns.tokenPicture,
        error,
        computing: false,
        head: Math.min(
          state.patterns.head,
          ((preview ?? state.patterns.preview)?.numHeads ?? 1) - 1,
        ),
      },
    }));
  };

  /** A change by the user: it also releases a held shared pattern (the user acted on it). */
  const updatePatterns = (change: (p: PatternsState) => Partial<PatternsState>) => {
    set((state) => ({ patterns: { ...state.patterns, ...change(state.patterns), held: false } }));
    schedulePreview();
  };

  /** The method's params for the current sparsity target, keeping its code params. */
  const paramsAt = (p: PatternsState, method: MethodName, sparsity: number, seqLen: number) =>
    paramsForPreviewSparsity(method, sparsity, seqLen, p.params[method] ?? {});

  const currentPatterns = () => get().patterns;

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

    restorePatterns: (shared) => {
      const holdsCode = shared.method === 'user_pattern';
      const userPattern = {
        ...(currentPatterns().params.user_pattern ??
          resolveParams(getMethod('user_pattern').params)),
        source: shared.userSource,
      };
      clearTimeout(previewTimer);
      set((state) => ({
        patterns: {
          ...state.patterns,
          method: shared.method,
          seqLen: shared.seqLen,
          sparsity: shared.sparsity,
          params: {
            ...state.patterns.params,
            user_pattern: userPattern,
            [shared.method]: holdsCode
              ? { ...shared.params, source: shared.userSource }
              : shared.params,
          },
          preview: null,
          error: null,
          computing: !holdsCode,
          held: holdsCode,
        },
      }));
      if (!holdsCode) schedulePreview();
    },

    releasePattern: () => updatePatterns(() => ({})),

    setPatternLevel: (level) => {
      set((state) => ({ patterns: { ...state.patterns, level } }));
      schedulePreview();
    },

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
