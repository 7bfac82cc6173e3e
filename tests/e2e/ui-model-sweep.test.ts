/**
 * A sweep on a real model (the tiny fixture of ui-harness.ts, loaded through the model picker):
 * the engine worker streams its results into the panel, the progress counts them, and the plots
 * show dense and the method from those results. NIAH needs 2048 characters for its four needles.
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
  it('streams its results into the progress and the plots', async () => {
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
    await panel.getByTestId('sweep-start').click();
    const progress = panel.getByTestId('sweep-progress');
    await expect.poll(() => progress.innerText(), { timeout: 150_000 }).toMatch(/^2 of 2 runs/);
    await panel.getByTestId('plot-accuracy').locator('.main-svg').first().waitFor();
    const names = await panel
      .getByTestId('plot-accuracy')
      .evaluate((el) => (el as unknown as { data: { name?: string }[] }).data.map((t) => t.name));
    expect(names).toEqual(
      expect.arrayContaining(['dense (n=1)', 'Sliding window + sinks (prefill)']),
    );
    await panel.screenshot({ path: join(shotDir, 'ui-sweep-model.png') });

    // Kept in IndexedDB: listed as saved, and starting it again resumes it with nothing to run,
    // its stored results back in the plots.
    expect(await panel.getByTestId('saved-sweeps').innerText()).toContain('tiny-llama');
    await panel.getByTestId('sweep-start').click();
    await expect
      .poll(() => progress.innerText(), { timeout: 60_000 })
      .toMatch(/^2 of 2 runs \(100%\), 2 from an earlier session/);
    await expect
      .poll(() =>
        panel
          .getByTestId('plot-accuracy')
          .evaluate((el) => (el as unknown as { data: unknown[] }).data.length),
      )
      .toBeGreaterThanOrEqual(2);
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
