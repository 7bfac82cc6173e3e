/**
 * The browser's ResultStore: every result goes to IndexedDB the moment it exists, so a reload, a
 * crash or a closed tab loses nothing, and starting the same sweep again resumes it. Works on the
 * page and in the worker (both have IndexedDB); the page reads stored sweeps with `listSweeps` and
 * `loadSweepResults` without the worker.
 *
 * Layout (database DB_NAME): 'sweeps' holds one record per sweep id (sweep.ts sweepFingerprint:
 * the model and the generation length), with the last config and the model; 'results' holds
 * { sweepId, key, result } under the key [sweepId, key], indexed by sweepId. Results of one sweep
 * id can be shared by configs that overlap (a grid grown by a sparsity reuses what was run).
 */
import type { ResultStore, SampleResult, SweepConfig, SweepModelInfo } from '../sweepTypes';

export const DB_NAME = 'sparse-attention-playground.sweeps';
const DB_VERSION = 1;
const SWEEPS = 'sweeps';
const RESULTS = 'results';
const BY_SWEEP = 'bySweep';

/** What the 'sweeps' store keeps about a sweep. */
export interface StoredSweep {
  sweepId: string;
  model: SweepModelInfo;
  /** The config it was last started with. */
  config: SweepConfig;
  /** Date.now() of the last result (or of the start). */
  updatedAt: number;
}

interface ResultRecord {
  sweepId: string;
  key: string;
  result: SampleResult;
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error('IndexedDB request failed'));
  });
}

function transactionDone(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error ?? new Error('IndexedDB transaction failed'));
    tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** Opens (and on first use creates) the database. */
export function openSweepDatabase(factory: IDBFactory = indexedDB): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const open = factory.open(DB_NAME, DB_VERSION);
    open.onupgradeneeded = () => {
      const db = open.result;
      if (!db.objectStoreNames.contains(SWEEPS))
        db.createObjectStore(SWEEPS, { keyPath: 'sweepId' });
      if (!db.objectStoreNames.contains(RESULTS)) {
        const results = db.createObjectStore(RESULTS, { keyPath: ['sweepId', 'key'] });
        results.createIndex(BY_SWEEP, 'sweepId');
      }
    };
    open.onsuccess = () => resolve(open.result);
    open.onerror = () =>
      reject(
        new Error(
          `cannot open the results database (${open.error?.message ?? 'unknown error'}); ` +
            'results cannot be kept: allow site storage for this page, or leave private browsing',
        ),
      );
    open.onblocked = () =>
      reject(new Error('the results database is held by an older tab of this page; close it'));
  });
}

export class IndexedDbResultStore implements ResultStore {
  private constructor(
    private readonly db: IDBDatabase,
    readonly sweepId: string,
  ) {}

  /** Opens the store of a sweep and records its config and model. */
  static async open(
    sweep: Omit<StoredSweep, 'updatedAt'>,
    factory: IDBFactory = indexedDB,
  ): Promise<IndexedDbResultStore> {
    const db = await openSweepDatabase(factory);
    const tx = db.transaction(SWEEPS, 'readwrite');
    tx.objectStore(SWEEPS).put({ ...sweep, updatedAt: Date.now() } satisfies StoredSweep);
    await transactionDone(tx);
    return new IndexedDbResultStore(db, sweep.sweepId);
  }

  async load(): Promise<SampleResult[]> {
    return readResults(this.db, this.sweepId);
  }

  async put(result: SampleResult): Promise<void> {
    const tx = this.db.transaction([RESULTS, SWEEPS], 'readwrite');
    const record: ResultRecord = { sweepId: this.sweepId, key: result.key, result };
    tx.objectStore(RESULTS).put(record);
    const sweeps = tx.objectStore(SWEEPS);
    // A callback, not an await: the transaction must still be active when the put is queued.
    const get = sweeps.get(this.sweepId) as IDBRequest<StoredSweep | undefined>;
    get.onsuccess = () => {
      if (get.result) sweeps.put({ ...get.result, updatedAt: Date.now() });
    };
    await transactionDone(tx);
  }

  close(): void {
    this.db.close();
  }
}

async function readResults(db: IDBDatabase, sweepId: string): Promise<SampleResult[]> {
  const tx = db.transaction(RESULTS, 'readonly');
  const index = tx.objectStore(RESULTS).index(BY_SWEEP);
  const records = await request(
    index.getAll(IDBKeyRange.only(sweepId)) as IDBRequest<ResultRecord[]>,
  );
  return records.map((r) => r.result);
}

/** Every stored sweep, most recently updated first. */
export async function listSweeps(factory: IDBFactory = indexedDB): Promise<StoredSweep[]> {
  const db = await openSweepDatabase(factory);
  try {
    const tx = db.transaction(SWEEPS, 'readonly');
    const all = await request(tx.objectStore(SWEEPS).getAll() as IDBRequest<StoredSweep[]>);
    return all.sort((a, b) => b.updatedAt - a.updatedAt);
  } finally {
    db.close();
  }
}

/** The stored results of a sweep (empty when there are none). */
export async function loadSweepResults(
  sweepId: string,
  factory: IDBFactory = indexedDB,
): Promise<SampleResult[]> {
  const db = await openSweepDatabase(factory);
  try {
    return await readResults(db, sweepId);
  } finally {
    db.close();
  }
}

/** Forgets a sweep and its results. */
export async function deleteSweep(sweepId: string, factory: IDBFactory = indexedDB): Promise<void> {
  const db = await openSweepDatabase(factory);
  try {
    const tx = db.transaction([RESULTS, SWEEPS], 'readwrite');
    tx.objectStore(SWEEPS).delete(sweepId);
    // Keys are [sweepId, key] with string keys; arrays sort after strings, so this spans them all.
    tx.objectStore(RESULTS).delete(IDBKeyRange.bound([sweepId, ''], [sweepId, []]));
    await transactionDone(tx);
  } finally {
    db.close();
  }
}
