/**
 * Keyboard shortcuts for the common actions and the `?` overlay that lists them. Keys typed into
 * a field or the code editor stay there; Escape works everywhere (it cancels, or closes the help).
 */
import { useEffect, useRef, useState } from 'react';
import { useEngine } from './engineBinding';
import { usePlayground } from './playgroundStore';
import { shareUrl } from './shareSync';
import { useAppStore, type ThemePreference } from './store';

export interface Shortcut {
  keys: string;
  description: string;
}

export const SHORTCUTS: readonly Shortcut[] = [
  { keys: 'r', description: 'Run dense and sparse on the prompt' },
  { keys: 's', description: 'Start the sweep' },
  { keys: 'Esc', description: 'Cancel the run or sweep (or close this help)' },
  { keys: 'e', description: 'Edit the pattern (focus the mask_mod editor)' },
  { keys: 'l', description: 'Copy a link to this configuration' },
  { keys: 't', description: 'Switch the colour theme (auto, light, dark)' },
  { keys: '?', description: 'Show or hide this help' },
];

const THEME_ORDER: readonly ThemePreference[] = ['system', 'light', 'dark'];

function typingInto(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return (
    target.isContentEditable ||
    target instanceof HTMLInputElement ||
    target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement
  );
}

export function Shortcuts() {
  const helpOpen = usePlayground((s) => s.helpOpen);
  const setHelpOpen = usePlayground((s) => s.setHelpOpen);
  const { engine } = useEngine();
  const [toast, setToast] = useState<string | null>(null);
  const dialog = useRef<HTMLDivElement>(null);
  const engineRef = useRef(engine);
  useEffect(() => {
    engineRef.current = engine;
  }, [engine]);

  useEffect(() => {
    let toastTimer: ReturnType<typeof setTimeout> | undefined;
    const say = (text: string) => {
      setToast(text);
      clearTimeout(toastTimer);
      toastTimer = setTimeout(() => setToast(null), 2500);
    };
    const onKey = (event: KeyboardEvent) => {
      if (event.ctrlKey || event.metaKey || event.altKey) return;
      const playground = usePlayground.getState();
      if (event.key === 'Escape') {
        if (playground.helpOpen) playground.setHelpOpen(false);
        else if (playground.cancel()) say('Cancelled');
        return;
      }
      if (typingInto(event.target)) return;
      const engineNow = engineRef.current;
      switch (event.key) {
        case '?':
          playground.setHelpOpen(!playground.helpOpen);
          break;
        case 'r':
          if (engineNow) {
            const source = String(
              useAppStore.getState().patterns.params.user_pattern?.source ?? '',
            );
            void playground.startRun(engineNow, source);
          } else say('Load a model first (model picker)');
          break;
        case 's':
          if (engineNow) void playground.startSweep(engineNow);
          else say('Load a model first (model picker)');
          break;
        case 't': {
          const { theme, setTheme } = useAppStore.getState();
          const next = THEME_ORDER[(THEME_ORDER.indexOf(theme) + 1) % THEME_ORDER.length];
          setTheme(next);
          say(`Theme: ${next === 'system' ? 'auto' : next}`);
          break;
        }
        case 'l':
          navigator.clipboard.writeText(shareUrl()).then(
            () => say('Link copied'),
            () => say('Could not copy: the address bar holds the same link'),
          );
          break;
        case 'e': {
          const editor = document.querySelector<HTMLElement>('[data-testid="pattern-source"]');
          if (editor) {
            editor.focus();
            editor.scrollIntoView({ block: 'center' });
          } else say('Pick "Your pattern (mask_mod)" in Sparsity patterns to edit one');
          break;
        }
        default:
          return;
      }
      event.preventDefault();
    };
    window.addEventListener('keydown', onKey);
    return () => {
      window.removeEventListener('keydown', onKey);
      clearTimeout(toastTimer);
    };
  }, []);

  useEffect(() => {
    if (helpOpen) dialog.current?.focus();
  }, [helpOpen]);

  return (
    <>
      {toast && (
        <div className="toast" role="status" data-testid="toast">
          {toast}
        </div>
      )}
      {helpOpen && (
        <div className="overlay" onClick={() => setHelpOpen(false)}>
          <div
            ref={dialog}
            className="help-dialog"
            role="dialog"
            aria-modal="true"
            aria-labelledby="help-title"
            data-testid="help-overlay"
            tabIndex={-1}
            onClick={(e) => e.stopPropagation()}
          >
            <h2 id="help-title">Keyboard shortcuts</h2>
            <table className="shortcut-table">
              <tbody>
                {SHORTCUTS.map((s) => (
                  <tr key={s.keys}>
                    <td>
                      <kbd>{s.keys}</kbd>
                    </td>
                    <td>{s.description}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <button type="button" onClick={() => setHelpOpen(false)}>
              Close
            </button>
          </div>
        </div>
      )}
    </>
  );
}
