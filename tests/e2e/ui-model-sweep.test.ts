/**
 * A sweep on a real model (the tiny fixture of ui-harness.ts, loaded through the model picker):
 * the engine worker streams its results into the panel; cancelled after its first run it keeps
 * that run (IndexedDB) and starting it again resumes with only the missing one; the plots show
 * dense and the method, the table the recall the engine measured and that it is exact. NIAH needs
 * 2048 characters for its four needles.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  openWithTinyModel,
  shotDir,
  startAll,
  startTinyModelHub,
  type Browser,
  type HubServer,
  type Server,
} from './ui-harness';

let browser: Browser;
let server: Server;
let url: string;
let hub: HubServer;
let cleanup: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ browser, server, url } = await startAll());
  ({ hub, cleanup } = await startTinyModelHub());
});

afterAll(async () => {
  await cleanup?.();
  await closeAll(browser, server);
});

describe('a sweep on a model', () => {
  it('cancels after a run, resumes the rest, plots it and shows its exact recall', async () => {
    const { page, errors } = await openWithTinyModel(browser, url, hub);
    const panel = page.getByTestId('sweep-panel');
    await panel.getByTestId('sweep-lengths').getByLabel('1024').uncheck();
    await panel.getByTestId('sweep-lengths').getByLabel('2048').check();
    for (const name of ['Vertical-Slash', 'Block-Sparse']) {
      await panel.getByTestId('sweep-prefill-methods').getByLabel(name).uncheck();
    }
    await panel.getByTestId('sweep-prefill-methods').getByLabel('Sliding window + sinks').check();
    await panel.getByTestId('sweep-decode-methods').getByLabel('Quest').uncheck();
    await panel.getByTestId('sweep-sparsities').fill('0.5');
    await panel.getByLabel('Samples per task and length').fill('1');
    await panel.getByLabel('New tokens per sample').fill('4');
    await panel.getByTestId('sweep-recall').check();
    expect(await panel.getByTestId('sweep-recall-layer').inputValue()).toBe('0');
    // Cancelled the moment its first run is in: a MutationObserver in the page clicks at once.
    const cancelledAfterFirst = page.evaluate(
      () =>
        new Promise<void>((resolve) => {
          const observer = new MutationObserver(() => {
            const progress = document.querySelector('[data-testid="sweep-progress"]');
            if (progress?.textContent?.startsWith('1 of 2 runs')) {
              observer.disconnect();
              (document.querySelector('[data-testid="sweep-cancel"]') as HTMLElement).click();
              resolve();
            }
          });
          observer.observe(document.body, { subtree: true, childList: true, characterData: true });
        }),
    );
    await panel.getByTestId('sweep-start').click();
    await cancelledAfterFirst;
    const progress = panel.getByTestId('sweep-progress');
    const status = panel.getByTestId('sweep-status');
    await expect
      .poll(() => status.innerText(), { timeout: 60_000 })
      .toBe('Cancelled: finished results are kept.');
    expect(await progress.innerText()).toMatch(/^1 of 2 runs/);
    expect(await panel.getByTestId('sweep-start').isEnabled()).toBe(true);
    // The plots were drawn from the results so far: dense alone.
    await panel.getByTestId('plot-accuracy').locator('.main-svg').first().waitFor();
    expect(
      await panel
        .getByTestId('plot-accuracy')
        .evaluate((el) => (el as unknown as { data: { name?: string }[] }).data.map((t) => t.name)),
    ).toContain('dense (n=1)');

    // Kept in IndexedDB: listed as saved, and starting it again resumes it: only the missing run
    // runs, the stored one comes back into the plots and the table.
    expect(await panel.getByTestId('saved-sweeps').innerText()).toContain('tiny-llama');
    await panel.getByTestId('sweep-start').click();
    await expect
      .poll(() => progress.innerText(), { timeout: 150_000 })
      .toMatch(/^2 of 2 runs \(100%\), 1 from an earlier session/);
    await panel.getByTestId('plot-accuracy').locator('.main-svg').first().waitFor();
    await expect
      .poll(() =>
        panel
          .getByTestId('plot-accuracy')
          .evaluate((el) =>
            (el as unknown as { data: { name?: string }[] }).data.map((t) => t.name),
          ),
      )
      .toEqual(expect.arrayContaining(['dense (n=1)', 'Sliding window + sinks (prefill)']));
    // Recall at layer 0, measured by the engine over every query of the prompt (under 2048 tokens).
    const row = panel
      .getByTestId('sweep-table')
      .locator('tr[data-point="prefill:sliding_window@0.5"]');
    const cells = await row.locator('td').allInnerTexts();
    expect(cells[3]).toMatch(/^\d+\.\d%$/);
    const recall = Number(cells[3].slice(0, -1));
    expect(recall).toBeGreaterThan(0);
    expect(recall).toBeLessThanOrEqual(100);
    expect(cells[4]).toMatch(/^exact, all [\d,]+ queries$/);
    await panel.screenshot({ path: join(shotDir, 'ui-sweep-model.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
