/**
 * The pattern editor (CodeMirror) in the built page: an error is marked on its line in the editor
 * and named in the message; a pattern that never returns is stopped by the worker's timeout while
 * the page stays responsive; an example then plans again.
 */
import { join } from 'node:path';
import type { Browser, Server } from './ui-harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  closeAll,
  openPage,
  patternsSection,
  setPatternSource,
  shotDir,
  startAll,
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

describe('the pattern editor', () => {
  it('marks an error on its line and stops a runaway pattern', async () => {
    const { page, errors } = await openPage(browser, url, { gpu: false });
    await page.getByTestId('pattern-method').selectOption('user_pattern');
    const measured = page.getByTestId('measured-sparsity');
    await expect.poll(() => measured.innerText(), { timeout: 30_000 }).toMatch(/%/);

    await setPatternSource(
      page,
      'function mask_mod(b, h, q_idx, kv_idx) {\n  const d = q_idx - kv_idx;\n  return d < 64 &&;\n}',
    );
    const error = page.getByTestId('pattern-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.innerText()).toMatch(/line 3/);
    expect(await error.innerText()).toMatch(/SyntaxError/);
    // The editor marks the same line: the lint underline sits on line 3's text.
    const marked = page.locator('.cm-line .cm-lintRange-error');
    await marked.first().waitFor({ timeout: 10_000 });
    const line = await marked.first().evaluate((el) => {
      const lineEl = el.closest('.cm-line');
      return [...(lineEl?.parentElement?.children ?? [])].indexOf(lineEl as Element) + 1;
    });
    expect(line).toBe(3);
    expect(await page.locator('.cm-lint-marker-error').count()).toBe(1);
    await patternsSection(page).screenshot({ path: join(shotDir, 'ui-pattern-error.png') });

    const started = Date.now();
    await setPatternSource(
      page,
      'function mask_mod(b, h, q_idx, kv_idx) {\n  while (true) {}\n  return true;\n}',
    );
    await expect
      .poll(() => error.innerText(), { timeout: 30_000 })
      .toMatch(/ran for more than \d+ s and was stopped/);
    expect(Date.now() - started).toBeLessThan(20_000);
    // The page answered while the pattern looped: the theme button works.
    await page.getByRole('button', { name: 'Dark' }).click();
    expect(await page.evaluate(() => document.documentElement.dataset.theme)).toBe('dark');
    await patternsSection(page).screenshot({ path: join(shotDir, 'ui-pattern-runaway.png') });

    await page.getByRole('button', { name: 'Dilated' }).click();
    await error.waitFor({ state: 'detached', timeout: 30_000 });
    await expect.poll(() => measured.innerText(), { timeout: 30_000 }).toMatch(/^\d+\.\d%$/);

    // Token level: the dilated pattern keeps every 8th key far from the diagonal and drops the
    // rest; each pixel is 2x2 tokens at 1024 tokens, shaded by the share kept.
    await page.getByRole('button', { name: 'Tokens' }).click();
    const canvas = page.getByTestId('token-canvas');
    await canvas.waitFor({ timeout: 30_000 });
    const pixels = await canvas.evaluate((el) => {
      const c = el as HTMLCanvasElement;
      const at = (x: number, y: number) => [...c.getContext('2d')!.getImageData(x, y, 1, 1).data];
      const legend = (name: string) =>
        getComputedStyle(document.querySelector(`.swatch.${name}`)!).backgroundColor;
      return {
        size: c.width,
        nearDiagonal: at(100, 110),
        aboveDiagonal: at(300, 100),
        farBelow: at(0, 500),
        full: legend('cell-full'),
        skipped: legend('cell-skipped'),
        outside: legend('cell-noncausal'),
      };
    });
    const rgb = (css: string) => css.match(/\d+/g)!.slice(0, 3).map(Number);
    expect(pixels.size).toBe(512);
    expect(pixels.nearDiagonal.slice(0, 3)).toEqual(rgb(pixels.full));
    expect(pixels.aboveDiagonal.slice(0, 3)).toEqual(rgb(pixels.outside));
    // Keys 0-1 of queries 1000-1001: key 0 is kept (distance divisible by 8 for one query).
    const far = pixels.farBelow.slice(0, 3);
    expect(far).not.toEqual(rgb(pixels.full));
    expect(far).not.toEqual(rgb(pixels.skipped));
    await patternsSection(page).screenshot({ path: join(shotDir, 'ui-pattern-tokens.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
