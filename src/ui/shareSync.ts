/**
 * Keeps the URL hash in step with the configuration (so the address bar is always a link to what
 * is on screen) and restores a shared link at start. Restoring only sets controls: no model is
 * loaded and no user code runs until the user clicks (store.ts holds a shared mask_mod).
 */
import { useModelStore } from './modelStore';
import { usePlayground } from './playgroundStore';
import { decodeShareHash, encodeShareHash, type SharedState } from './shareState';
import { useAppStore } from './store';

export function currentShareState(): SharedState {
  const { run, sweep, sharedModel } = usePlayground.getState();
  const { patterns } = useAppStore.getState();
  const load = useModelStore.getState().load;
  return {
    v: 1,
    model: load.status === 'loaded' ? load.summary.name : sharedModel,
    run,
    sweep,
    pattern: {
      method: patterns.method,
      seqLen: patterns.seqLen,
      sparsity: patterns.sparsity,
      params: patterns.params[patterns.method] ?? {},
      userSource: String(patterns.params.user_pattern?.source ?? ''),
    },
  };
}

/** Restores the configuration a hash carries; says what happened in the link notice. */
export function restoreFromHash(hash: string): void {
  const playground = usePlayground.getState();
  let shared: SharedState | null;
  try {
    shared = decodeShareHash(hash);
  } catch (error) {
    playground.setLinkNotice({
      kind: 'error',
      text: `This link's configuration could not be used (${(error as Error).message}). The page shows its defaults.`,
    });
    return;
  }
  if (!shared) return;
  playground.restore(shared.run, shared.sweep, shared.model);
  useAppStore.getState().restorePatterns(shared.pattern);
  const model = shared.model ? ` It was made with the model ${shared.model}.` : '';
  playground.setLinkNotice({
    kind: 'info',
    text:
      `Configuration restored from the link.${model} Nothing has run: load a model and ` +
      'press Run (or review the pattern code) when you are ready.',
  });
}

/** The link to the current configuration. */
export function shareUrl(): string {
  const url = new URL(location.href);
  url.hash = encodeShareHash(currentShareState());
  return url.toString();
}

/** Writes the hash after each change (coalesced); returns the unsubscribe function. */
export function startUrlSync(): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const write = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const hash = encodeShareHash(currentShareState());
      if (location.hash !== hash) history.replaceState(history.state, '', hash);
    }, 250);
  };
  const unsubscribers = [
    usePlayground.subscribe((s, prev) => {
      if (s.run !== prev.run || s.sweep !== prev.sweep) write();
    }),
    useAppStore.subscribe((s, prev) => {
      const a = s.patterns;
      const b = prev.patterns;
      if (a.method !== b.method || a.seqLen !== b.seqLen || a.params !== b.params) write();
    }),
  ];
  return () => {
    clearTimeout(timer);
    unsubscribers.forEach((u) => u());
  };
}
