import { useLayoutEffect, useState } from 'react';
import { AttentionMapPanel } from './AttentionMap';
import { GpuPanel } from './GpuPanel';
import { ModelPicker } from './ModelPicker';
import { PatternsPanel } from './PatternsPanel';
import { RunPanel } from './RunPanel';
import { SelfCheckPanel } from './SelfCheckPanel';
import { Shortcuts } from './Shortcuts';
import { SweepPanel } from './SweepPanel';
import { ThemeToggle } from './ThemeToggle';
import { usePlayground } from './playgroundStore';
import { shareUrl } from './shareSync';
import { useAppStore } from './store';

function LinkNotice() {
  const notice = usePlayground((s) => s.linkNotice);
  const setNotice = usePlayground((s) => s.setLinkNotice);
  if (!notice) return null;
  return (
    <div
      className={notice.kind === 'error' ? 'link-notice link-error' : 'link-notice'}
      role={notice.kind === 'error' ? 'alert' : 'status'}
      data-testid="link-notice"
    >
      <span>{notice.text}</span>
      <button type="button" className="small" onClick={() => setNotice(null)}>
        Dismiss
      </button>
    </div>
  );
}

function ShareButton() {
  const [copied, setCopied] = useState<string | null>(null);
  return (
    <button
      type="button"
      data-testid="copy-link"
      title="Copy a link to this configuration (l)"
      onClick={() =>
        navigator.clipboard.writeText(shareUrl()).then(
          () => setCopied('Link copied'),
          () => setCopied('The address bar holds the link'),
        )
      }
      onBlur={() => setCopied(null)}
    >
      {copied ?? 'Copy link'}
    </button>
  );
}

export function App() {
  const theme = useAppStore((s) => s.theme);
  const setHelpOpen = usePlayground((s) => s.setHelpOpen);
  // A layout effect: it runs before the panels' effects, so canvases repaint in the new theme.
  useLayoutEffect(() => {
    const root = document.documentElement;
    if (theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = theme;
  }, [theme]);

  return (
    <div className="app">
      <header className="app-header">
        <div>
          <h1>Sparse Attention Playground</h1>
          <p className="tagline">Sparse attention on your own GPU, in the browser, via WebGPU</p>
        </div>
        <div className="header-actions">
          <ShareButton />
          <button
            type="button"
            aria-label="Keyboard shortcuts"
            title="Keyboard shortcuts (?)"
            data-testid="help-button"
            onClick={() => setHelpOpen(true)}
          >
            ?
          </button>
          <ThemeToggle />
        </div>
      </header>
      <LinkNotice />
      <main>
        <GpuPanel />
        <ModelPicker />
        <RunPanel />
        <SweepPanel />
        <PatternsPanel />
        <AttentionMapPanel />
        <SelfCheckPanel />
      </main>
      <Shortcuts />
    </div>
  );
}
