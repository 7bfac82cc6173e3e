/**
 * The sweep panel's plots, table and exports, fed a results file (the panel's own JSON format)
 * whose means, standard errors, relative costs, speed-ups and recalls are known: the plots and the
 * table show exactly those, each recall with how it was measured, and CSV, JSON and PNG exports
 * produce real files. A file that is not a results file is refused with a message. (A sweep on a
 * model runs in ui-model-sweep.test.ts.)
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleResult, SweepPhase } from '../../src/engine/sweepTypes';
import { closeAll, openPage, shotDir, startAll, type Browser, type Server } from './ui-harness';

let browser: Browser;
let server: Server;
let url: string;

beforeAll(async () => {
  ({ browser, server, url } = await startAll());
});

afterAll(async () => {
  await closeAll(browser, server);
});

interface PointSpec {
  phase: SweepPhase;
  method: string;
  sparsity: number;
  scores: number[];
  prefillMs: number;
  decodeMsPerToken: number;
  prefillFlops: number;
  decodeBytes: number;
  /** Per-sample recall and how it was measured (queries per sample); absent: not measured. */
  recall?: { values: number[]; kind: 'exact' | 'sampled'; queries: number };
}

const DECODE_TOKENS = 10;

const POINTS: PointSpec[] = [
  {
    phase: 'baseline',
    method: 'dense',
    sparsity: 0,
    scores: [1, 1, 0.75, 1],
    prefillMs: 10,
    decodeMsPerToken: 2,
    prefillFlops: 1000,
    decodeBytes: 500,
  },
  {
    phase: 'prefill',
    method: 'block_sparse',
    sparsity: 0.5,
    scores: [1, 0.75, 0.75, 1],
    prefillMs: 5,
    decodeMsPerToken: 2,
    prefillFlops: 600,
    decodeBytes: 500,
    recall: { values: [0.9, 0.8, 0.95, 0.85], kind: 'exact', queries: 1000 },
  },
  {
    phase: 'prefill',
    method: 'block_sparse',
    sparsity: 0.9,
    scores: [0.5, 0.25, 0.5, 0.75],
    prefillMs: 2.5,
    decodeMsPerToken: 2,
    prefillFlops: 300,
    decodeBytes: 500,
    recall: { values: [0.5, 0.6, 0.7, 0.6], kind: 'sampled', queries: 256 },
  },
  {
    phase: 'decode',
    method: 'quest',
    sparsity: 0.9,
    scores: [1, 1, 1, 0.75],
    prefillMs: 10,
    decodeMsPerToken: 1,
    prefillFlops: 1000,
    decodeBytes: 100,
  },
];

function measurement(sparsity: number) {
  return { sparsity, touched: 0, total: 0, layers: [], plannerMs: 0 };
}

function resultsOf(points: PointSpec[], length = 1024): SampleResult[] {
  return points.flatMap((p) =>
    p.scores.map((score, seed): SampleResult => {
      const pointId = p.phase === 'baseline' ? 'dense' : `${p.phase}:${p.method}@${p.sparsity}`;
      const sampleId = `ruler_niah/${length}/${seed}`;
      return {
        key: `${pointId}|${sampleId}`,
        pointId,
        phase: p.phase,
        method: p.method,
        sparsity: p.sparsity,
        sampleId,
        task: 'ruler_niah',
        length,
        seed,
        status: 'ok',
        attention: {
          prefill: { name: p.phase === 'prefill' ? p.method : 'dense', params: {} },
          decode: { name: p.phase === 'decode' ? p.method : 'dense', params: {} },
        },
        promptTokens: 1000,
        generatedTokens: DECODE_TOKENS,
        output: `answer, "quoted"\nline ${seed}`,
        score,
        vsDense: null,
        measured: {
          prefill: measurement(p.phase === 'prefill' ? p.sparsity - 0.01 : 0),
          decode: measurement(p.phase === 'decode' ? p.sparsity - 0.02 : 0),
        },
        recall: p.recall ? p.recall.values[seed] : null,
        recallKind: p.recall ? p.recall.kind : null,
        recallQueries: p.recall ? p.recall.queries : 0,
        recallUnavailable: null,
        cost: {
          prefillFlops: p.prefillFlops,
          decodeBytesPerToken: p.decodeBytes,
          prefillSparsity: 0,
          decodeSparsity: 0,
        },
        timings: {
          source: 'timestamp-query',
          prefillMs: p.prefillMs,
          prefillTokens: 1000,
          decodeMs: p.decodeMsPerToken * DECODE_TOKENS,
          decodeTokens: DECODE_TOKENS,
        },
        wallMs: 100,
      };
    }),
  );
}

/** Mean and standard error (sample std / sqrt(n)), written out as the reference. */
function meanSe(values: number[]): [number, number] {
  const n = values.length;
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
  return [mean, Math.sqrt(variance) / Math.sqrt(n)];
}

interface Trace {
  name?: string;
  x: number[];
  y: number[];
  error_y?: { array: number[] };
}

describe('the sweep panel', () => {
  it('plots results with error bars, the dense reference, costs and speed-ups, and exports them', async () => {
    const results = resultsOf(POINTS);
    const file = join(shotDir, 'ui-sweep-input.json');
    await writeFile(file, JSON.stringify({ model: 'test', config: {}, results }));
    const { page, errors } = await openPage(browser, url, { gpu: false });
    const panel = page.getByTestId('sweep-panel');
    expect(await panel.getByTestId('export-csv').isDisabled()).toBe(true);
    await panel.getByTestId('import-results').setInputFiles(file);
    const accuracy = panel.getByTestId('plot-accuracy');
    await accuracy.locator('.main-svg').first().waitFor({ timeout: 60_000 });
    const tracesOf = (id: string) =>
      panel.getByTestId(`plot-${id}`).evaluate((el) => {
        const data = (el as unknown as { data: Trace[] }).data;
        return data.map((t) => ({ name: t.name, x: t.x, y: t.y, error_y: t.error_y }));
      });

    const [denseMean] = meanSe(POINTS[0].scores);
    const [bs50, bs50se] = meanSe(POINTS[1].scores);
    const [bs90, bs90se] = meanSe(POINTS[2].scores);
    const acc = await tracesOf('accuracy');
    const dense = acc.find((t) => t.name?.startsWith('dense'))!;
    expect(dense.y).toEqual([denseMean, denseMean]);
    const blockSparse = acc.find((t) => t.name === 'Block-Sparse (prefill)')!;
    // x: the sparsity the kernels counted (the file's prefill counts are the targets - 0.01).
    expect(blockSparse.x.map((x) => x.toFixed(6))).toEqual(['0.490000', '0.890000']);
    expect(blockSparse.y[0]).toBeCloseTo(bs50, 12);
    expect(blockSparse.y[1]).toBeCloseTo(bs90, 12);
    expect(blockSparse.error_y!.array[0]).toBeCloseTo(bs50se, 12);
    expect(blockSparse.error_y!.array[1]).toBeCloseTo(bs90se, 12);
    const quest = acc.find((t) => t.name === 'Quest (decode)')!;
    expect(quest.x.map((x) => x.toFixed(6))).toEqual(['0.880000']);
    // The target on request.
    await panel.getByTestId('plot-sparsity-axis').selectOption('target');
    await expect
      .poll(async () => (await tracesOf('accuracy')).find((t) => t.name === 'Quest (decode)')!.x)
      .toEqual([0.9]);
    const targeted = await tracesOf('accuracy');
    expect(targeted.find((t) => t.name === 'Block-Sparse (prefill)')!.x).toEqual([0.5, 0.9]);

    // isoCost: cost relative to dense on the same samples, in the method's phase.
    const cost = await tracesOf('cost');
    expect(cost.find((t) => t.name === 'Block-Sparse (prefill)')!.x).toEqual([0.6, 0.3]);
    expect(cost.find((t) => t.name === 'Quest (decode)')!.x).toEqual([0.2]);
    // Speed-up: dense time / method time in the method's phase (decode per token).
    const speed = await tracesOf('speedup');
    expect(speed.find((t) => t.name === 'Block-Sparse (prefill)')!.y).toEqual([2, 4]);
    expect(speed.find((t) => t.name === 'Quest (decode)')!.y).toEqual([2]);
    await panel.screenshot({ path: join(shotDir, 'ui-sweep-plots.png') });

    // The table: kernel-measured sparsity, and each recall with how it was measured.
    const row = (point: string) =>
      panel
        .getByTestId('sweep-table')
        .locator(`tr[data-point="${point}"]`)
        .locator('th, td')
        .allInnerTexts();
    const percentSe = (values: number[]) => {
      const [m, se] = meanSe(values);
      return `${(m * 100).toFixed(1)}% ± ${(se * 100).toFixed(1)}%`;
    };
    expect(await row('prefill:block_sparse@0.5')).toEqual([
      'Block-Sparse (prefill)',
      '50.0%',
      '49.0%',
      `${bs50.toFixed(3)} ± ${bs50se.toFixed(3)} (4)`,
      percentSe(POINTS[1].recall!.values),
      'exact, all 4,000 queries',
    ]);
    expect((await row('prefill:block_sparse@0.9')).slice(4)).toEqual([
      percentSe(POINTS[2].recall!.values),
      'sampled, 1,024 queries',
    ]);
    expect((await row('decode:quest@0.9')).slice(2)).toEqual([
      '88.0%',
      expect.stringMatching(/^0\.938 ± 0\.063 \(4\)$/),
      '—',
      expect.stringMatching(/^not measured/),
    ]);
    await panel
      .getByTestId('sweep-table')
      .screenshot({ path: join(shotDir, 'ui-sweep-table.png') });
    // One length: nothing to compare across lengths.
    expect(await panel.getByTestId('sweep-length-comparison').count()).toBe(0);

    const download = async (testId: string) => {
      const [file] = await Promise.all([
        page.waitForEvent('download'),
        panel.getByTestId(testId).click(),
      ]);
      const path = join(shotDir, `ui-export-${file.suggestedFilename()}`);
      await file.saveAs(path);
      return { name: file.suggestedFilename(), bytes: await readFile(path) };
    };
    const csv = await download('export-csv');
    expect(csv.name).toBe('sweep-results.csv');
    const text = csv.bytes.toString('utf8');
    expect(text.split('\r\n')[0]).toMatch(/^point,phase,method,target_sparsity,task,/);
    // 16 results; each output holds a quoted newline, so rows are counted by their first cells.
    expect(text.match(/^(dense|prefill:\S+|decode:\S+),(baseline|prefill|decode),/gm)).toHaveLength(
      16,
    );
    expect(text).toContain('"answer, ""quoted""\nline 0"');
    const json = await download('export-json');
    expect(JSON.parse(json.bytes.toString('utf8')).results).toEqual(results);
    const png = await download('export-png-accuracy');
    expect(png.name).toBe('sweep-accuracy.png');
    expect([...png.bytes.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    expect(png.bytes.length).toBeGreaterThan(5_000);

    // Not a results file: refused, the plots stay.
    const bad = join(shotDir, 'ui-sweep-bad.json');
    await writeFile(bad, JSON.stringify({ hello: 1 }));
    await panel.getByTestId('import-results').setInputFiles(bad);
    expect(await panel.getByTestId('import-error').innerText()).toMatch(/no "results" list/);
    expect(await accuracy.count()).toBe(1);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('compares lengths when the results hold two: the longer one losing less to Block-Sparse at 0.9', async () => {
    // At 2048 Block-Sparse at 0.9 keeps dense's scores; at 1024 it loses 0.4375 (POINTS).
    const longer = POINTS.map((p) =>
      p.method === 'block_sparse' && p.sparsity === 0.9 ? { ...p, scores: POINTS[0].scores } : p,
    );
    const file = join(shotDir, 'ui-sweep-lengths.json');
    await writeFile(
      file,
      JSON.stringify({
        model: 'test',
        config: {},
        results: [...resultsOf(POINTS), ...resultsOf(longer, 2048)],
      }),
    );
    const { page, errors } = await openPage(browser, url, { gpu: false });
    const panel = page.getByTestId('sweep-panel');
    await panel.getByTestId('import-results').setInputFiles(file);
    const table = panel.getByTestId('sweep-length-comparison');
    await table.waitFor({ timeout: 60_000 });
    const verdicts = await table
      .locator('tbody tr')
      .evaluateAll((rows) =>
        rows.map((r) => [r.querySelector('th')!.textContent, (r as HTMLElement).dataset.verdict]),
      );
    expect(verdicts).toEqual([
      ['Quest (decode), 90.0%', 'tie'],
      ['Block-Sparse (prefill), 50.0%', 'tie'],
      ['Block-Sparse (prefill), 90.0%', 'longer'],
    ]);
    const cells = await table.locator('tr[data-verdict="longer"] td').allInnerTexts();
    const [, se1024] = meanSe(POINTS[2].scores.map((s, i) => s - POINTS[0].scores[i]));
    expect(cells).toEqual([
      'ruler_niah',
      '1024 / 2048',
      '0.938 / 0.938',
      '-0.438 / 0.000',
      `+0.438 ± ${se1024.toFixed(3)}`,
      'longer',
    ]);
    expect(await table.locator('caption').innerText()).toMatch(
      /1 for the longer length, 0 for the shorter, 2 within one SE/,
    );
    await table.screenshot({ path: join(shotDir, 'ui-sweep-lengths.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
