import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './ui/App';
import { restoreFromHash, startUrlSync } from './ui/shareSync';
import { useAppStore } from './ui/store';
import './ui/styles.css';

const root = document.getElementById('root');
if (!root) throw new Error('index.html has no #root element');
// A shared link sets the controls before the first paint; it runs nothing by itself.
restoreFromHash(location.hash);
startUrlSync();
createRoot(root).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
void useAppStore.getState().connect();
