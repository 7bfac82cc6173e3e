import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { JsonFileResultStore, type SweepResultsFile } from '../../src/engine/store/jsonFile';
import { csvCell, resultsToCsv } from '../../src/engine/sweepCsv';
import type { SampleResult, SweepConfig, SweepModelInfo } from '../../src/engine/sweepTypes';

const MODEL: SweepModelInfo = {
  name: 'tiny',
  layers: 1,
  heads: 2,
  kvHeads: 1,
  headDim: 8,
  width: 16,
  vocabSize: 32,
  maxPositions: 512,
  kvBytes: 4,
};

const CONFIG: SweepConfig = {
  tasks: ['ruler_niah'],
  lengths: [300],
  samples: 2,
  prefillMethods: ['block_sparse'],
  decodeMethods: [],
  sparsities: [0.5],
  maxNewTokens: 8,
};

function result(pointId: string, seed: number, score: number): SampleResult {
  const measurement = { sparsity: 0.25, touched: 3, total: 4, layers: [], plannerMs: 0 };
  return {
    key: `${pointId}|ruler_niah/300/${seed}`,
    pointId,
    phase: pointId === 'dense' ? 'baseline' : 'prefill',
    method: pointId === 'dense' ? 'dense' : 'block_sparse',
    sparsity: pointId === 'dense' ? 0 : 0.5,
    sampleId: `ruler_niah/300/${seed}`,
    task: 'ruler_niah',
    length: 300,
    seed,
    status: 'ok',
    attention: { prefill: { name: 'dense', params: {} }, decode: { name: 'dense', params: {} } },
    promptTokens: 290,
    generatedTokens: 8,
    output: 'say "hi", then\nstop',
    score,
    vsDense:
      pointId === 'dense'
        ? null
        : {
            absoluteError: 0.5,
            relativeError: null,
            kl: 0.1,
            top1Agree: true,
            position: 'after-prompt',
          },
    measured: { prefill: measurement, decode: measurement },
    recall: null,
    cost: { prefillFlops: 1e6, decodeBytesPerToken: 1e3, prefillSparsity: 0.25, decodeSparsity: 0 },
    timings: {
      source: 'wall-clock',
      prefillMs: 5,
      prefillTokens: 290,
      decodeMs: 7,
      decodeTokens: 7,
    },
    wallMs: 20,
  };
}

describe('JsonFileResultStore', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sweep-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('journals every put, and a new store resumes from the journal', async () => {
    const out = join(dir, 'results.json');
    const store = new JsonFileResultStore(out, 'tiny|8');
    expect(await store.load()).toEqual([]);
    await store.put(result('dense', 0, 1));
    await store.put(result('dense', 1, 0.5));
    expect(existsSync(out)).toBe(false);
    const again = new JsonFileResultStore(out, 'tiny|8');
    expect((await again.load()).map((r) => r.key)).toEqual([
      'dense|ruler_niah/300/0',
      'dense|ruler_niah/300/1',
    ]);
  });

  it('writes the results file, drops the journal, and resumes from the file', async () => {
    const out = join(dir, 'results.json');
    const store = new JsonFileResultStore(out, 'tiny|8');
    await store.load();
    await store.put(result('dense', 0, 1));
    await store.write({ model: MODEL, config: CONFIG, complete: false, aggregates: [] });
    expect(existsSync(store.journalPath)).toBe(false);
    const file = JSON.parse(await readFile(out, 'utf8')) as SweepResultsFile;
    expect(file).toMatchObject({ format: 'sparse-attention-sweep', fingerprint: 'tiny|8' });
    expect(file.results).toEqual([result('dense', 0, 1)]);

    const resumed = new JsonFileResultStore(out, 'tiny|8');
    await resumed.load();
    await resumed.put(result('prefill:block_sparse@0.5', 0, 0.5));
    const third = new JsonFileResultStore(out, 'tiny|8');
    expect((await third.load()).map((r) => r.key)).toEqual([
      'dense|ruler_niah/300/0',
      'prefill:block_sparse@0.5|ruler_niah/300/0',
    ]);
  });

  it('ignores a last journal line cut off by a crash', async () => {
    const out = join(dir, 'results.json');
    const store = new JsonFileResultStore(out, 'tiny|8');
    await store.put(result('dense', 0, 1));
    await appendFile(store.journalPath, '{"fingerprint":"tiny|8","result":{"key":"den');
    expect((await new JsonFileResultStore(out, 'tiny|8').load()).map((r) => r.key)).toEqual([
      'dense|ruler_niah/300/0',
    ]);
  });

  it("refuses to resume another sweep's file, saying what to do", async () => {
    const out = join(dir, 'results.json');
    const store = new JsonFileResultStore(out, 'tiny|8');
    await store.put(result('dense', 0, 1));
    await store.write({ model: MODEL, config: CONFIG, complete: false, aggregates: [] });
    await expect(new JsonFileResultStore(out, 'other|8').load()).rejects.toThrow(
      /holds results of another sweep.*choose another --out file or delete it/,
    );
    await writeFile(out, '{"hello": 1}');
    await expect(new JsonFileResultStore(out, 'tiny|8').load()).rejects.toThrow(
      /not a sweep results file/,
    );
  });
});

describe('resultsToCsv', () => {
  it('quotes what needs quoting and leaves values that do not exist empty', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell(null)).toBe('');
    expect(csvCell(NaN)).toBe('');
    const csv = resultsToCsv([result('dense', 0, 1), result('prefill:block_sparse@0.5', 0, 0.5)]);
    const lines = csv.split('\r\n');
    expect(lines).toHaveLength(4);
    const header = lines[0].split(',');
    expect(header.slice(0, 4)).toEqual(['point', 'phase', 'method', 'target_sparsity']);
    const column = (line: string, name: string) => line.split(',')[header.indexOf(name)];
    expect(column(lines[1], 'kl_vs_dense')).toBe('');
    expect(column(lines[2], 'kl_vs_dense')).toBe('0.1');
    expect(column(lines[2], 'rel_error_vs_dense')).toBe('');
    expect(column(lines[2], 'score')).toBe('0.5');
    expect(lines[1].endsWith('"say ""hi"", then\nstop"')).toBe(true);
  });
});
