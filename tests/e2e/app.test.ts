/**
 * The built page (dist/, from `vite build`) in headless Chromium on SwiftShader, as a person sees
 * it: adapter shown, dense self-check passing, the no-WebGPU message, recovery from a lost device.
 * Screenshots go to test-output/e2e/.
 */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, openPage as openBrowserPage, serveDist, shotDir } from './support/browser';

let browser: Browser;
let server: Server;
let url: string;

beforeAll(async () => {
  await mkdir(shotDir, { recursive: true });
  ({ server, url } = await serveDist());
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
});

const openPage = (initScript?: () => void) => openBrowserPage(browser, url, { initScript });

/** Waits for the self-check to finish and returns its verdict and each case's row text. */
async function selfCheckOutcome(page: Page): Promise<{ state: string | null; rows: string[] }> {
  const summary = page.getByTestId('selfcheck-summary');
  await page.waitForSelector(
    '[data-testid="selfcheck-summary"][data-state="passed"], [data-testid="selfcheck-summary"][data-state="failed"]',
    { timeout: 150_000 },
  );
  const rows = await page.getByTestId('selfcheck-case').allInnerTexts();
  return { state: await summary.getAttribute('data-state'), rows };
}

describe('the playground page', () => {
  it('shows the adapter and passes the dense self-check on SwiftShader', async () => {
    const { page, errors } = await openPage();
    await expect.poll(() => page.title()).toBe('Sparse Attention Playground');
    const adapter = page.getByTestId('adapter');
    await adapter.waitFor({ timeout: 60_000 });
    expect(await adapter.innerText()).toMatch(/swiftshader/i);

    const { state, rows } = await selfCheckOutcome(page);
    await page.screenshot({ path: join(shotDir, 'app-light.png'), fullPage: true });
    expect(state, rows.join('\n')).toBe('passed');
    expect(rows.length).toBeGreaterThanOrEqual(4);
    for (const row of rows) expect(row).toMatch(/\bpass\b/);
    expect(await page.getByTestId('selfcheck-summary').innerText()).toMatch(/All \d+ cases passed/);

    await page.getByRole('button', { name: 'Dark' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await page.screenshot({ path: join(shotDir, 'app-dark.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('says plainly when the browser has no WebGPU, naming browsers that have it', async () => {
    const { page, errors } = await openPage(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
    const message = page.getByTestId('gpu-unavailable');
    await message.waitFor({ timeout: 30_000 });
    const text = await message.innerText();
    expect(text).toMatch(/WebGPU is not available/);
    for (const name of ['Chrome', 'Edge', 'Firefox', 'Safari']) expect(text).toContain(name);
    await page.screenshot({ path: join(shotDir, 'no-webgpu.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('offers to reconnect after the device is lost, and recovers', async () => {
    // Keeps each device the page requests, so the test can destroy it as a driver reset would.
    const { page, errors } = await openPage(() => {
      const requestDevice = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (this: GPUAdapter, descriptor) {
        const device = await requestDevice.call(this, descriptor);
        (window as unknown as { testDevice: GPUDevice }).testDevice = device;
        return device;
      };
    });
    // Whether the kernels pass is the first test's business; here only recovery counts.
    await selfCheckOutcome(page);

    await page.evaluate(() =>
      (window as unknown as { testDevice: GPUDevice }).testDevice.destroy(),
    );
    const lost = page.getByTestId('gpu-lost');
    await lost.waitFor({ timeout: 30_000 });
    expect(await lost.innerText()).toMatch(/GPU device was lost/);
    await page.screenshot({ path: join(shotDir, 'device-lost.png'), fullPage: true });

    await page.getByRole('button', { name: 'Reconnect GPU' }).click();
    await lost.waitFor({ state: 'detached', timeout: 30_000 });
    expect(await page.getByTestId('adapter').innerText()).toMatch(/swiftshader/i);
    const { rows } = await selfCheckOutcome(page);
    for (const row of rows) expect(row).toMatch(/\b(pass|fail)\b/);
    expect(errors).toEqual([]);
    await page.context().close();
  });
  it('previews sparsity patterns: measured sparsity follows the slider, pattern errors name the line', async () => {
    const { page, errors } = await openPage();
    const measured = page.getByTestId('measured-sparsity');
    await page.getByTestId('pattern-method').selectOption('sliding_window');
    await expect.poll(() => measured.innerText(), { timeout: 30_000 }).toMatch(/%/);
    const before = await measured.innerText();
    await page.getByTestId('sparsity-slider').fill('0.9');
    await expect.poll(() => measured.innerText(), { timeout: 30_000 }).not.toBe(before);
    expect(await measured.innerText()).toMatch(/^(8|9)\d\.\d%$/);
    expect(await page.getByTestId('mask-canvas').count()).toBe(1);

    await page.getByTestId('pattern-method').selectOption('user_pattern');
    await page
      .getByTestId('pattern-source')
      .fill('function mask_mod(b, h, q_idx, kv_idx) {\n  return q_idx >= kv_idx &&;\n}');
    const error = page.getByTestId('pattern-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.innerText()).toMatch(/line 2/);
    await page.getByTestId('mask-canvas').scrollIntoViewIfNeeded();
    await page
      .getByRole('heading', { name: 'Sparsity patterns' })
      .locator('xpath=ancestor::section')
      .screenshot({ path: join(shotDir, 'patterns.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
