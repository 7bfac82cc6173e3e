import { useEffect, useState, type DragEvent, type FormEvent } from 'react';
import { DEFAULT_HUB_ENDPOINT } from '../model/loading/sources';
import { formatBytes, formatCount } from './format';
import {
  describeProgress,
  embeddedModelAtStart,
  SUGGESTED_HUB_MODELS,
  useModelStore,
  type FileProgress,
  type ModelSummary,
} from './modelStore';
import { usePlayground } from './playgroundStore';
import { useAppStore } from './store';

/** The files of a dropped folder (its top level, where a model's files are) or dropped files. */
async function droppedFiles(transfer: DataTransfer): Promise<File[]> {
  const entries = [...transfer.items]
    .map((item) => item.webkitGetAsEntry?.())
    .filter((entry): entry is FileSystemEntry => Boolean(entry));
  if (entries.length === 0) return [...transfer.files];
  const fileOf = (entry: FileSystemFileEntry) =>
    new Promise<File>((resolve, reject) => entry.file(resolve, reject));
  const files: File[] = [];
  for (const entry of entries) {
    if (entry.isFile) files.push(await fileOf(entry as FileSystemFileEntry));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      // readEntries hands out a directory in batches until it returns an empty one.
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
          reader.readEntries(resolve, reject),
        );
        if (batch.length === 0) break;
        for (const child of batch) {
          if (child.isFile) files.push(await fileOf(child as FileSystemFileEntry));
        }
      }
    }
  }
  return files;
}

/** 94.5 K, 4.75 M, 1.24 B: three significant digits. */
function formatParameters(count: number): string {
  const [scale, unit] = count >= 1e9 ? [1e9, 'B'] : count >= 1e6 ? [1e6, 'M'] : [1e3, 'K'];
  return `${(count / scale).toPrecision(3)} ${unit}`;
}

function ProgressRow({ progress }: { progress: FileProgress }) {
  const done = progress.total !== null && progress.loaded >= progress.total;
  return (
    <li className="model-progress-row" data-testid="model-progress" data-file={progress.file}>
      <span className="model-progress-file">{progress.file}</span>
      <progress
        value={progress.loaded}
        max={progress.total ?? undefined}
        aria-label={`${progress.file} downloaded`}
      />
      <span className="model-progress-bytes">
        {describeProgress(progress)}
        {done ? ' ✓' : ''}
      </span>
    </li>
  );
}

function Summary({ summary }: { summary: ModelSummary }) {
  const rows: [string, string][] = [
    ['Architecture', summary.architecture],
    ['Layers', formatCount(summary.layers)],
    ['Parameters', formatParameters(summary.parameters)],
    ['Hidden size', formatCount(summary.hiddenSize)],
    ['Heads (KV heads)', `${summary.heads} (${summary.kvHeads})`],
    ['Vocabulary', formatCount(summary.vocabSize)],
    ['Context', `${formatCount(summary.maxPositions)} tokens`],
    ['GPU weights', formatBytes(summary.weightBytes)],
    ['Prompts', summary.chat ? 'through its chat template' : 'as plain text'],
    ['Runs on', summary.adapter],
    [
      'Downloaded',
      summary.networkBytes === 0 ? 'none (cache or local)' : formatBytes(summary.networkBytes),
    ],
  ];
  return (
    <div data-testid="model-summary" data-fits={String(summary.fits)}>
      <p className="adapter-line">
        <strong data-testid="model-name">{summary.name}</strong>
        {summary.fits ? (
          <span className="badge badge-pass">fits this GPU</span>
        ) : (
          <span className="badge badge-fail">does not fit this GPU</span>
        )}
      </p>
      <dl className="limits">
        {rows.map(([label, value]) => (
          <div key={label}>
            <dt>{label}</dt>
            <dd>{value}</dd>
          </div>
        ))}
      </dl>
      {summary.fitProblems.length > 0 && (
        <div className="alert" role="alert" data-testid="model-fit-problems">
          <p className="alert-title">What does not fit this GPU</p>
          <ul>
            {summary.fitProblems.map((problem) => (
              <li key={problem}>{problem}</li>
            ))}
          </ul>
        </div>
      )}
      <ul className="small-text muted">
        {summary.fitNotes.map((note) => (
          <li key={note}>{note}</li>
        ))}
      </ul>
    </div>
  );
}

/** Picks and loads a model: the app's own, a Hub repo, or local files; shows progress and fit. */
export function ModelPicker() {
  const { hubEndpoint, embedded, load, fetchEmbeddedList, loadModel, cancel, clearCache } =
    useModelStore();
  const [repo, setRepo] = useState('');
  const [dragging, setDragging] = useState(false);
  const [cacheCleared, setCacheCleared] = useState(false);
  const busy = load.status === 'loading';

  const gpuReady = useAppStore((s) => s.gpu.status === 'ready');
  const sharedModel = usePlayground((s) => s.sharedModel);

  useEffect(() => {
    void fetchEmbeddedList();
  }, [fetchEmbeddedList]);

  useEffect(() => {
    const search = typeof location === 'undefined' ? '' : location.search;
    // The store's own load state, not this render's: an effect run twice must not load twice.
    const { load: now } = useModelStore.getState();
    const model = embeddedModelAtStart({ search, gpuReady, embedded, load: now, sharedModel });
    if (model) void loadModel({ kind: 'url', baseUrl: model.path, name: model.label });
  }, [gpuReady, embedded, sharedModel, loadModel]);

  const loadRepo = (id: string) => {
    setRepo(id);
    void loadModel({ kind: 'hub', repo: id, endpoint: hubEndpoint });
  };
  const submitRepo = (event: FormEvent) => {
    event.preventDefault();
    loadRepo(repo);
  };
  const loadFiles = (files: File[]) => void loadModel({ kind: 'files', files });
  const onDrop = (event: DragEvent) => {
    event.preventDefault();
    setDragging(false);
    void droppedFiles(event.dataTransfer).then(loadFiles);
  };

  return (
    <section
      className={dragging ? 'panel model-picker dragging' : 'panel model-picker'}
      aria-labelledby="model-title"
      data-testid="model-picker"
      onDragOver={(event) => {
        event.preventDefault();
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <h2 id="model-title">Model</h2>

      <h3>Comes with the app</h3>
      {embedded.status === 'loading' && <p className="muted">Looking for bundled models…</p>}
      {embedded.status === 'failed' && (
        <p className="muted" data-testid="embedded-failed">
          The list of bundled models could not be read ({embedded.message}); load one from the Hub
          or from your files.
        </p>
      )}
      {embedded.status === 'ready' && embedded.models.length === 0 && (
        <p className="muted" data-testid="embedded-empty">
          No model is bundled with this build yet: load one from the Hub or from your files.
        </p>
      )}
      {embedded.status === 'ready' && embedded.models.length > 0 && (
        <ul className="chips">
          {embedded.models.map((model) => (
            <li key={model.name}>
              <button
                type="button"
                disabled={busy}
                data-testid="embedded-model"
                onClick={() =>
                  void loadModel({ kind: 'url', baseUrl: model.path, name: model.label })
                }
              >
                {model.label} <span className="muted">(works offline)</span>
              </button>
              {model.card && (
                <a
                  className="model-card-link"
                  href={`${model.path}${model.card}`}
                  target="_blank"
                  rel="noreferrer"
                  title="What this model can and cannot do, how it was trained, its scores"
                  data-testid="embedded-model-card"
                >
                  model card
                </a>
              )}
            </li>
          ))}
        </ul>
      )}

      <h3>From the Hugging Face Hub</h3>
      <form className="model-hub-form" onSubmit={submitRepo}>
        <label htmlFor="model-repo">Repo id</label>
        <input
          id="model-repo"
          data-testid="model-repo"
          type="text"
          placeholder="owner/name"
          spellCheck={false}
          autoComplete="off"
          value={repo}
          onChange={(event) => setRepo(event.target.value)}
        />
        <button type="submit" className="primary" disabled={busy || repo.trim() === ''}>
          Load
        </button>
      </form>
      <ul className="chips" aria-label="Suggested small models">
        {SUGGESTED_HUB_MODELS.map(({ repo: id, note }) => (
          <li key={id}>
            <button
              type="button"
              disabled={busy}
              data-testid="hub-suggestion"
              onClick={() => loadRepo(id)}
            >
              {id.split('/')[1]} <span className="muted">{note}</span>
            </button>
          </li>
        ))}
      </ul>
      {hubEndpoint !== DEFAULT_HUB_ENDPOINT && (
        <p className="small-text muted" data-testid="hub-endpoint">
          Hub endpoint: {hubEndpoint} (from the page’s <code>hub</code> parameter)
        </p>
      )}

      <h3>From your files</h3>
      <p className="small-text muted">
        Pick the model’s folder (config.json, model.safetensors or its shards, tokenizer.json), or
        drop the folder or its files on this panel.
      </p>
      <input
        type="file"
        multiple
        aria-label="Model folder"
        data-testid="model-folder"
        disabled={busy}
        ref={(input) => input?.setAttribute('webkitdirectory', '')}
        onChange={(event) => {
          const files = [...(event.target.files ?? [])];
          event.target.value = '';
          if (files.length > 0) loadFiles(files);
        }}
      />

      <div className="model-status" aria-live="polite">
        {load.status === 'loading' && (
          <div data-testid="model-loading">
            <p>
              Loading <strong>{load.name}</strong>
              {load.plan ? ` — ${load.plan.size.notes[0]}` : ' — checking its size…'}
            </p>
            <ul className="model-progress">
              {load.files.map((progress) => (
                <ProgressRow key={progress.file} progress={progress} />
              ))}
            </ul>
            <button type="button" onClick={cancel} data-testid="model-cancel">
              Cancel
            </button>
          </div>
        )}
        {load.status === 'failed' && (
          <div className="alert" role="alert" data-testid="model-error">
            <p className="alert-title">Could not load {load.name}</p>
            <p>{load.message}</p>
          </div>
        )}
        {load.status === 'cancelled' && (
          <p className="muted" data-testid="model-cancelled">
            Loading {load.name} was cancelled.
          </p>
        )}
        {load.status === 'loaded' && <Summary summary={load.summary} />}
      </div>

      <p className="small-text">
        <button
          type="button"
          disabled={busy}
          onClick={() => void clearCache().then(() => setCacheCleared(true))}
        >
          Forget downloaded models
        </button>{' '}
        {cacheCleared && <span className="muted">Cleared: the next load downloads again.</span>}
      </p>
    </section>
  );
}
