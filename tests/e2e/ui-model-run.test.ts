/**
 * The run panel with a real model: the tiny fixture model (ui-harness.ts) served in the Hub's
 * layout and loaded through the model picker. Dense and sparse generations stream side by side
 * with the kernel-measured sparsity per layer and GPU times; Escape cancels a run; an empty text,
 * a prompt longer than the model's positions and a sweep that cannot fit are refused with a
 * message.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  openWithTinyModel,
  shotDir,
  startAll,
  startTinyModelHub,
  TINY_LAYERS,
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

const TEXT = Array.from(
  { length: 4 },
  (_, i) => `Room ${i + 1} holds the ${['red', 'blue', 'green'][i % 3]} box number ${i * 7}.`,
).join(' ');

describe('the run panel with a model', () => {
  it('streams dense and sparse side by side, cancels on Escape, refuses an empty text', async () => {
    const { page, errors } = await openWithTinyModel(browser, url, hub);
    const panel = page.getByTestId('run-panel');
    await expect.poll(() => panel.getByTestId('run-needs-model').count()).toBe(0);

    await panel.getByRole('button', { name: 'Your own text' }).click();
    await panel.getByTestId('run-button').click();
    expect(await panel.getByTestId('run-error').innerText()).toMatch(/Paste the text/);

    await panel.getByTestId('run-custom-text').fill(TEXT);
    await panel.getByTestId('run-custom-question').fill('Which box is in room 5?');
    await panel.getByLabel('New tokens').fill('8');
    await panel.getByTestId('prefill-method').selectOption('sliding_window');
    await panel.getByTestId('run-sparsity').fill('0.9');
    await panel
      .getByTestId('prefill-picker')
      .getByRole('combobox', { name: 'Block size' })
      .selectOption('16');
    await panel.getByTestId('run-button').click();
    const summary = panel.getByTestId('compare-summary');
    await summary.waitFor({ timeout: 120_000 });

    const denseTokens = panel.getByTestId('dense-tokens').locator('.token');
    const sparseTokens = panel.getByTestId('sparse-tokens').locator('.token');
    expect(await denseTokens.count()).toBe(8);
    expect(await sparseTokens.count()).toBe(8);
    const text = await summary.innerText();
    const parted = /They part at token (\d+)/.exec(text);
    const divergent = panel.getByTestId('sparse-tokens-divergent');
    if (parted) {
      // The marked token is the one named, and the tokens before it agree.
      const index = Number(parted[1]) - 1;
      expect(await divergent.count()).toBe(1);
      expect(await sparseTokens.nth(index).getAttribute('data-testid')).toBe(
        'sparse-tokens-divergent',
      );
      for (let i = 0; i < index; i++) {
        expect(await sparseTokens.nth(i).innerText()).toBe(await denseTokens.nth(i).innerText());
      }
    } else {
      expect(text).toMatch(/identical/);
      expect(await divergent.count()).toBe(0);
    }
    expect(await panel.getByTestId('speedup-prefill').innerText()).toMatch(/^\d+\.\d\d×$/);
    // Decode is dense on both sides: no speed-up is claimed for it.
    expect(await panel.getByTestId('speedup-decode').innerText()).toBe('dense in both');
    // Kernel-counted sparsity: one bar per layer, and sliding window skipped blocks.
    const bars = panel.getByTestId('sparse').getByTestId('layer-bars-prefill');
    expect(await bars.locator('.bar').count()).toBe(TINY_LAYERS);
    const measured = Number(/([\d.]+)% measured/i.exec(await bars.innerText())![1]);
    expect(measured).toBeGreaterThan(30);
    await panel.screenshot({ path: join(shotDir, 'ui-run-compare.png') });

    await panel.getByLabel('New tokens').fill('400');
    await panel.getByTestId('run-button').click();
    await panel.getByTestId('run-cancel').waitFor();
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('Escape');
    await expect
      .poll(() => panel.getByTestId('run-status').innerText(), { timeout: 60_000 })
      .toBe('Cancelled.');
    expect(await panel.getByTestId('run-button').isEnabled()).toBe(true);

    // Work that cannot run says why: a prompt longer than the model's positions, a sweep too.
    await panel.getByRole('button', { name: 'A task' }).click();
    await panel.getByTestId('run-length').selectOption('4096');
    // The prompt fills 90-100% of 4096 tokens: with 512 new ones it cannot fit.
    await panel.getByLabel('New tokens').fill('512');
    await panel.getByTestId('run-button').click();
    await expect
      .poll(() => panel.getByTestId('run-error').innerText(), { timeout: 60_000 })
      .toMatch(/exceed the 4096 positions/);
    const sweep = page.getByTestId('sweep-panel');
    await sweep.getByTestId('sweep-lengths').getByLabel('4096').check();
    await sweep.getByTestId('sweep-start').click();
    await expect
      .poll(() => sweep.getByTestId('sweep-error').innerText(), { timeout: 60_000 })
      .toMatch(/4096 prompt tokens \+ 32 new tokens exceed the 4096 positions/);
    await page.screenshot({ path: join(shotDir, 'ui-run-errors.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
