/**
 * The run and sweep panels' state (zustand): the configuration they edit, the comparison run
 * (dense and sparse generations streamed side by side), the sweep (results streamed into the
 * plots), the help overlay, and what a shared link restored. Work goes through the engine
 * (engineBinding.ts: the engine's worker); nothing here runs on the main thread's GPU.
 */
import { create } from 'zustand';
import type { AttentionPair, SampleResult, SweepConfig, SweepProgress } from '../engine/sweepTypes';
import type { MethodName, MethodParams, ParamValue, Phase } from '../methods/types';
import type { GenerationOutcome, PlaygroundEngine, PromptSpec } from './engineTypes';
import {
  defaultRunConfig,
  defaultSweepConfig,
  NOMINAL_DIMS,
  paramsAtSparsity,
  sweepProblem,
  type AttentionDims,
  type RunConfig,
} from './runConfig';

export interface GenerationView {
  attention: AttentionPair;
  /** Streamed tokens so far. */
  tokens: { id: number; text: string }[];
  outcome: GenerationOutcome | null;
  error: string | null;
}

export type WorkStatus = 'idle' | 'running' | 'done' | 'cancelled' | 'failed';

export interface RunState {
  status: WorkStatus;
  /** Why the run failed or what it is doing. */
  message: string | null;
  dense: GenerationView | null;
  sparse: GenerationView | null;
}

export interface SweepState {
  status: WorkStatus;
  message: string | null;
  progress: SweepProgress | null;
  results: SampleResult[];
}

export interface LinkNotice {
  kind: 'info' | 'error';
  text: string;
}

interface PlaygroundState {
  run: RunConfig;
  runState: RunState;
  sweep: SweepConfig;
  sweepState: SweepState;
  helpOpen: boolean;
  /** What loading a shared link said (restored, or why it could not be read). */
  linkNotice: LinkNotice | null;
  /** The model a shared link was made with (shown, never loaded by the link). */
  sharedModel: string | null;
  /** Attention dims of the loaded model (for paramsForSparsity); nominal ones until then. */
  dims: AttentionDims;

  setRun: (change: Partial<RunConfig>) => void;
  setRunMethod: (phase: Phase, method: MethodName) => void;
  setRunParam: (phase: Phase, key: string, value: ParamValue) => void;
  setRunSparsity: (sparsity: number) => void;
  setRunLength: (length: number) => void;
  setDims: (dims: AttentionDims) => void;
  setSweep: (change: Partial<SweepConfig>) => void;
  toggleSweepItem: (list: 'tasks' | 'prefillMethods' | 'decodeMethods', item: string) => void;
  toggleSweepLength: (length: number) => void;
  setHelpOpen: (open: boolean) => void;
  setLinkNotice: (notice: LinkNotice | null) => void;
  restore: (run: RunConfig, sweep: SweepConfig, model: string | null) => void;
  /** Starts the dense vs sparse comparison; `patternSource` is the pattern editor's mask_mod. */
  startRun: (engine: PlaygroundEngine, patternSource: string) => Promise<void>;
  startSweep: (engine: PlaygroundEngine) => Promise<void>;
  /** Cancels whatever runs (comparison or sweep); true when something was cancelled. */
  cancel: () => boolean;
  /** Results shown from elsewhere (an imported file or a previous session). */
  showResults: (results: SampleResult[]) => void;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isAbort(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}

/** The first index where two token id lists differ; null when one is a prefix of the other. */
export function firstDivergence(a: readonly number[], b: readonly number[]): number | null {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? null : n;
}

/** The prompt of a run configuration, or why it cannot run. */
export function promptOf(run: RunConfig): PromptSpec {
  if (run.source === 'task') {
    return { kind: 'task', task: run.task, length: run.length, seed: run.seed };
  }
  if (run.customText.trim() === '') {
    throw new Error('Paste the text to run on (or pick a task).');
  }
  if (run.customQuestion.trim() === '') {
    throw new Error('Write the question to ask about your text.');
  }
  return { kind: 'custom', text: run.customText, question: run.customQuestion };
}

const DENSE_PAIR: AttentionPair = {
  prefill: { name: 'dense', params: {} },
  decode: { name: 'dense', params: {} },
};

export const usePlayground = create<PlaygroundState>()((set, get) => {
  let controller: AbortController | null = null;

  /** The phase's params at the run's sparsity and length (code params kept). */
  const paramsFor = (run: RunConfig, phase: Phase, method: MethodName, current: MethodParams) =>
    paramsAtSparsity(phase, method, run.sparsity, run.length, get().dims, current);

  const retune = (run: RunConfig): RunConfig => ({
    ...run,
    prefill: {
      ...run.prefill,
      params: paramsFor(run, 'prefill', run.prefill.method, run.prefill.params),
    },
    decode: {
      ...run.decode,
      params: paramsFor(run, 'decode', run.decode.method, run.decode.params),
    },
  });

  const begin = () => {
    controller?.abort();
    controller = new AbortController();
    return controller;
  };

  return {
    run: defaultRunConfig(),
    runState: { status: 'idle', message: null, dense: null, sparse: null },
    sweep: defaultSweepConfig(),
    sweepState: { status: 'idle', message: null, progress: null, results: [] },
    helpOpen: false,
    linkNotice: null,
    sharedModel: null,
    dims: NOMINAL_DIMS,

    setRun: (change) => set((s) => ({ run: { ...s.run, ...change } })),
    setRunMethod: (phase, method) =>
      set((s) => ({
        run: { ...s.run, [phase]: { method, params: paramsFor(s.run, phase, method, {}) } },
      })),
    setRunParam: (phase, key, value) =>
      set((s) => ({
        run: {
          ...s.run,
          [phase]: { ...s.run[phase], params: { ...s.run[phase].params, [key]: value } },
        },
      })),
    setRunSparsity: (sparsity) => set((s) => ({ run: retune({ ...s.run, sparsity }) })),
    setRunLength: (length) => set((s) => ({ run: retune({ ...s.run, length }) })),
    setDims: (dims) => {
      set({ dims });
      set((s) => ({ run: retune(s.run) }));
    },

    setSweep: (change) => set((s) => ({ sweep: { ...s.sweep, ...change } })),
    toggleSweepItem: (list, item) =>
      set((s) => {
        const current = s.sweep[list];
        const next = current.includes(item)
          ? current.filter((x) => x !== item)
          : [...current, item];
        return { sweep: { ...s.sweep, [list]: next } };
      }),
    toggleSweepLength: (length) =>
      set((s) => {
        const current = s.sweep.lengths;
        const next = current.includes(length)
          ? current.filter((x) => x !== length)
          : [...current, length].sort((a, b) => a - b);
        return { sweep: { ...s.sweep, lengths: next } };
      }),

    setHelpOpen: (helpOpen) => set({ helpOpen }),
    setLinkNotice: (linkNotice) => set({ linkNotice }),
    restore: (run, sweep, model) => set({ run, sweep, sharedModel: model }),

    startRun: async (engine, patternSource) => {
      const state = get();
      if (state.runState.status === 'running' || state.sweepState.status === 'running') return;
      let prompt: PromptSpec;
      try {
        prompt = promptOf(state.run);
      } catch (error) {
        set({
          runState: { status: 'failed', message: messageOf(error), dense: null, sparse: null },
        });
        return;
      }
      const withSource = (phase: Phase): MethodParams => {
        const { method, params } = state.run[phase];
        return method === 'user_pattern' ? { ...params, source: patternSource } : params;
      };
      const sparsePair: AttentionPair = {
        prefill: { name: state.run.prefill.method, params: withSource('prefill') },
        decode: { name: state.run.decode.method, params: withSource('decode') },
      };
      const { signal } = begin();
      const fresh = (attention: AttentionPair): GenerationView => ({
        attention,
        tokens: [],
        outcome: null,
        error: null,
      });
      set({
        runState: {
          status: 'running',
          message: 'Dense attention…',
          dense: fresh(DENSE_PAIR),
          sparse: fresh(sparsePair),
        },
      });
      const update = (side: 'dense' | 'sparse', change: (v: GenerationView) => GenerationView) =>
        set((s) => {
          const view = s.runState[side];
          return view ? { runState: { ...s.runState, [side]: change(view) } } : {};
        });
      const generate = async (side: 'dense' | 'sparse', attention: AttentionPair) => {
        const outcome = await engine.generate(
          { prompt, attention, maxNewTokens: state.run.maxNewTokens },
          (token) => update(side, (v) => ({ ...v, tokens: [...v.tokens, token] })),
          signal,
        );
        update(side, (v) => ({
          ...v,
          outcome,
          tokens: outcome.ids.map((id, i) => ({ id, text: v.tokens[i]?.text ?? '' })),
        }));
      };
      let side: 'dense' | 'sparse' = 'dense';
      try {
        await generate('dense', DENSE_PAIR);
        side = 'sparse';
        set((s) => ({ runState: { ...s.runState, message: 'Sparse attention…' } }));
        await generate('sparse', sparsePair);
        set((s) => ({ runState: { ...s.runState, status: 'done', message: null } }));
      } catch (error) {
        const cancelled = isAbort(error) || signal.aborted;
        update(side, (v) => ({ ...v, error: cancelled ? 'cancelled' : messageOf(error) }));
        set((s) => ({
          runState: {
            ...s.runState,
            // Stopped during the dense run: the sparse one never started.
            sparse: side === 'dense' ? null : s.runState.sparse,
            status: cancelled ? 'cancelled' : 'failed',
            message: cancelled ? 'Cancelled.' : messageOf(error),
          },
        }));
      }
    },

    startSweep: async (engine) => {
      const state = get();
      if (state.runState.status === 'running' || state.sweepState.status === 'running') return;
      const problem = sweepProblem(state.sweep);
      if (problem) {
        set((s) => ({ sweepState: { ...s.sweepState, status: 'failed', message: problem } }));
        return;
      }
      const { signal } = begin();
      set({ sweepState: { status: 'running', message: 'Starting…', progress: null, results: [] } });
      try {
        await engine.sweep(
          state.sweep,
          (event, sweepId) => {
            switch (event.type) {
              case 'plan':
                set((s) => ({
                  sweepState: { ...s.sweepState, progress: event.progress, message: null },
                }));
                // A resumed sweep runs only what is missing: show what an earlier session stored.
                if (event.progress.resumed > 0) {
                  engine.storedResults(sweepId).then(
                    (stored) =>
                      set((s) => ({
                        sweepState: {
                          ...s.sweepState,
                          results: [...stored, ...s.sweepState.results],
                        },
                      })),
                    (error: unknown) =>
                      set((s) => ({
                        sweepState: {
                          ...s.sweepState,
                          message: `Earlier results could not be read: ${messageOf(error)}`,
                        },
                      })),
                  );
                }
                break;
              case 'point':
                set((s) => ({
                  sweepState: {
                    ...s.sweepState,
                    message: `${event.point.method} at ${event.point.sparsity} on ${event.length} tokens`,
                  },
                }));
                break;
              case 'result':
                set((s) => ({
                  sweepState: {
                    ...s.sweepState,
                    progress: event.progress,
                    results: [...s.sweepState.results, event.result],
                  },
                }));
                break;
              case 'done':
                set((s) => ({
                  sweepState: {
                    ...s.sweepState,
                    progress: event.progress,
                    status: event.cancelled ? 'cancelled' : 'done',
                    message: event.cancelled ? 'Cancelled: finished results are kept.' : null,
                  },
                }));
                break;
              case 'reference':
                break;
            }
          },
          signal,
        );
        set((s) =>
          s.sweepState.status === 'running'
            ? { sweepState: { ...s.sweepState, status: signal.aborted ? 'cancelled' : 'done' } }
            : {},
        );
      } catch (error) {
        const cancelled = isAbort(error) || signal.aborted;
        set((s) => ({
          sweepState: {
            ...s.sweepState,
            status: cancelled ? 'cancelled' : 'failed',
            message: cancelled ? 'Cancelled: finished results are kept.' : messageOf(error),
          },
        }));
      }
    },

    cancel: () => {
      const { runState, sweepState } = get();
      if (runState.status !== 'running' && sweepState.status !== 'running') return false;
      controller?.abort();
      return true;
    },

    showResults: (results) =>
      set((s) => ({ sweepState: { ...s.sweepState, status: 'done', message: null, results } })),
  };
});
