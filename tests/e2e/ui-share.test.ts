/**
 * Sharing: the configuration travels in the URL hash and comes back in a new page; a shared
 * mask_mod is shown but not run until the user clicks; a damaged link says so and the page keeps
 * its defaults.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  openPage,
  patternsSection,
  setPatternSource,
  shotDir,
  startAll,
  type Browser,
  type Server,
} from './ui-harness';

let browser: Browser;
let server: Server;
let url: string;

beforeAll(async () => {
  ({ browser, server, url } = await startAll());
});

afterAll(async () => {
  await closeAll(browser, server);
});

const SHARED_PATTERN = `function mask_mod(b, h, q_idx, kv_idx) {
  return kv_idx % 3 === 0 || q_idx - kv_idx < 32;
}`;

describe('sharing a configuration by link', () => {
  it('restores every control from the URL and runs no code before a click', async () => {
    const { page, errors } = await openPage(browser, url, { gpu: false });
    const run = page.getByTestId('run-panel');
    await run.getByTestId('run-task').selectOption('ruler_vt');
    await run.getByTestId('run-length').selectOption('2048');
    await run.getByTestId('prefill-method').selectOption('block_sparse');
    await run.getByTestId('decode-method').selectOption('quest');
    await run.getByTestId('run-sparsity').fill('0.8');
    const sweep = page.getByTestId('sweep-panel');
    await sweep.getByTestId('sweep-tasks').getByLabel('Story Filtering').check();
    await sweep.getByTestId('sweep-sparsities').fill('0, 0.7, 0.95');
    await sweep.getByTestId('sweep-recall').check();
    await sweep.getByTestId('sweep-recall-layer').fill('3');
    await page.getByTestId('pattern-method').selectOption('user_pattern');
    await setPatternSource(page, SHARED_PATTERN);
    const measured = page.getByTestId('measured-sparsity');
    await expect.poll(() => measured.innerText(), { timeout: 30_000 }).toMatch(/%/);
    // The hash follows the controls (written a moment after the last change).
    await expect
      .poll(() => page.evaluate(() => location.hash), { timeout: 5_000 })
      .toMatch(/^#config=/);
    await page.waitForTimeout(400);
    const shared = await page.evaluate(() => location.href);
    const prefillParams = await run
      .getByTestId('prefill-picker')
      .locator('input[type="number"]')
      .evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value));
    await page.context().close();

    const second = await openPage(browser, shared, { gpu: false });
    const p2 = second.page;
    const notice = p2.getByTestId('link-notice');
    await notice.waitFor({ timeout: 30_000 });
    expect(await notice.innerText()).toMatch(/restored from the link/i);
    const run2 = p2.getByTestId('run-panel');
    expect(await run2.getByTestId('run-task').inputValue()).toBe('ruler_vt');
    expect(await run2.getByTestId('run-length').inputValue()).toBe('2048');
    expect(await run2.getByTestId('prefill-method').inputValue()).toBe('block_sparse');
    expect(await run2.getByTestId('decode-method').inputValue()).toBe('quest');
    expect(await run2.getByTestId('run-sparsity').inputValue()).toBe('0.8');
    expect(
      await run2
        .getByTestId('prefill-picker')
        .locator('input[type="number"]')
        .evaluateAll((inputs) => inputs.map((i) => (i as HTMLInputElement).value)),
    ).toEqual(prefillParams);
    const sweep2 = p2.getByTestId('sweep-panel');
    expect(await sweep2.getByTestId('sweep-tasks').getByLabel('Story Filtering').isChecked()).toBe(
      true,
    );
    expect(await sweep2.getByTestId('sweep-sparsities').inputValue()).toBe('0, 0.7, 0.95');
    expect(await sweep2.getByTestId('sweep-recall').isChecked()).toBe(true);
    expect(await sweep2.getByTestId('sweep-recall-layer').inputValue()).toBe('3');
    expect(await p2.getByTestId('pattern-method').inputValue()).toBe('user_pattern');
    expect(await p2.getByTestId('pattern-source').innerText()).toBe(SHARED_PATTERN);

    // The shared mask_mod waits: no plan, no measured sparsity, until the click.
    const held = p2.getByTestId('pattern-held');
    await held.waitFor();
    await p2.waitForTimeout(1_000);
    expect(await p2.getByTestId('measured-sparsity').innerText()).toBe('—');
    expect(await p2.getByTestId('mask-canvas').count()).toBe(0);
    await p2.screenshot({ path: join(shotDir, 'ui-share-restored.png') });
    await held.getByRole('button', { name: 'Run this pattern' }).click();
    await expect
      .poll(() => p2.getByTestId('measured-sparsity').innerText(), { timeout: 30_000 })
      .toMatch(/^\d+\.\d%$/);
    await patternsSection(p2).screenshot({ path: join(shotDir, 'ui-share-pattern-run.png') });
    expect(errors).toEqual([]);
    expect(second.errors).toEqual([]);
    await p2.context().close();
  });

  it('says a damaged link cannot be used and keeps the defaults', async () => {
    const { page, errors } = await openPage(browser, `${url}#config=bm90IGpzb24`, { gpu: false });
    const notice = page.getByTestId('link-notice');
    await notice.waitFor({ timeout: 30_000 });
    expect(await notice.innerText()).toMatch(/could not be used.*damaged/);
    expect(await page.getByTestId('run-task').inputValue()).toBe('ruler_niah');
    await page.screenshot({ path: join(shotDir, 'ui-share-damaged.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
