/**
 * Sweeps kept in this browser (the engine stores every result in IndexedDB as it is produced): a
 * reloaded tab loses nothing. Showing one puts its results in the plots and its configuration in
 * the form, so starting it again resumes it.
 */
import { useEffect, useId, useState } from 'react';
import {
  deleteSweep,
  listSweeps,
  loadSweepResults,
  type StoredSweep,
} from '../engine/store/indexedDb';
import { usePlayground } from './playgroundStore';

function describe(sweep: StoredSweep): string {
  const { config } = sweep;
  const methods = [...config.prefillMethods, ...config.decodeMethods].join(', ');
  const when = new Date(sweep.updatedAt).toLocaleString();
  return `${when} · ${sweep.model.name} · ${config.tasks.join(', ')} · ${config.lengths.join('/')} tokens · ${methods}`;
}

export function SavedSweeps() {
  const status = usePlayground((s) => s.sweepState.status);
  const showResults = usePlayground((s) => s.showResults);
  const setSweep = usePlayground((s) => s.setSweep);
  const [sweeps, setSweeps] = useState<StoredSweep[] | null>(null);
  const [chosen, setChosen] = useState('');
  const [message, setMessage] = useState<string | null>(null);
  const id = useId();

  useEffect(() => {
    if (status === 'running') return;
    let live = true;
    listSweeps().then(
      (list) => {
        if (!live) return;
        setSweeps(list);
        setChosen((current) =>
          list.some((s) => s.sweepId === current) ? current : (list[0]?.sweepId ?? ''),
        );
      },
      (error: unknown) => live && setMessage(`Saved sweeps cannot be read: ${String(error)}`),
    );
    return () => {
      live = false;
    };
  }, [status]);

  if (message) return <p className="muted">{message}</p>;
  if (!sweeps || sweeps.length === 0) return null;
  const selected = sweeps.find((s) => s.sweepId === chosen);
  return (
    <div className="saved-sweeps" data-testid="saved-sweeps">
      <label htmlFor={id}>Saved in this browser</label>
      <select id={id} value={chosen} onChange={(e) => setChosen(e.target.value)}>
        {sweeps.map((s) => (
          <option key={s.sweepId} value={s.sweepId}>
            {describe(s)}
          </option>
        ))}
      </select>
      <button
        type="button"
        disabled={!selected || status === 'running'}
        onClick={() => {
          if (!selected) return;
          loadSweepResults(selected.sweepId).then(
            (results) => {
              setSweep(selected.config);
              showResults(results);
            },
            (error: unknown) => setMessage(`The sweep cannot be read: ${String(error)}`),
          );
        }}
      >
        Show
      </button>
      <button
        type="button"
        disabled={!selected || status === 'running'}
        onClick={() => {
          if (!selected) return;
          void deleteSweep(selected.sweepId).then(() =>
            setSweeps((list) => list?.filter((s) => s.sweepId !== selected.sweepId) ?? null),
          );
        }}
      >
        Forget
      </button>
    </div>
  );
}
