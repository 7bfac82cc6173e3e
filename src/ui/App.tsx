import { useEffect } from 'react';
import { GpuPanel } from './GpuPanel';
import { PatternsPanel } from './PatternsPanel';
import { SelfCheckPanel } from './SelfCheckPanel';
import { ThemeToggle } from './ThemeToggle';
import { useAppStore } from './store';

export function App() {
  const theme = useAppStore((s) => s.theme);
  useEffect(() => {
    const root = document.documentElement;
    if (theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = theme;
  }, [theme]);

  return (
    <div className="app">
      <header className="app-header">
        <div>
          <h1>Sparse Attention Playground</h1>
          <p className="tagline">Attention kernels on your own GPU, in the browser, via WebGPU</p>
        </div>
        <ThemeToggle />
      </header>
      <main>
        <GpuPanel />
        <SelfCheckPanel />
        <PatternsPanel />
        <section className="panel panel-note" aria-labelledby="next-title">
          <h2 id="next-title">In progress</h2>
          <p>
            Running small language models here and comparing the sparse attention methods of{' '}
            <cite>The Sparse Frontier</cite> (Nawrot et al., 2025), BLASST and your own attention
            patterns against dense attention. For now the page checks that the dense attention
            kernels compute the right thing on your GPU.
          </p>
        </section>
      </main>
    </div>
  );
}
