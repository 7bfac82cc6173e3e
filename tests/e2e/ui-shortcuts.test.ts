/**
 * Keyboard shortcuts: `?` opens the help overlay listing them and Escape closes it, `t` cycles the
 * theme, `e` puts the cursor in the pattern editor, and keys typed into a field stay there.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

describe('keyboard shortcuts', () => {
  it('opens help with ?, closes it with Escape, switches theme, focuses the editor', async () => {
    const { page, errors } = await openPage(browser, url, { gpu: false });
    await page.getByTestId('run-task').waitFor({ timeout: 30_000 });
    await page.keyboard.press('?');
    const help = page.getByTestId('help-overlay');
    await help.waitFor();
    const text = await help.innerText();
    for (const line of ['Run dense and sparse', 'Start the sweep', 'Cancel', 'colour theme']) {
      expect(text).toContain(line);
    }
    await page.screenshot({ path: join(shotDir, 'ui-shortcuts-help.png') });
    await page.keyboard.press('Escape');
    await help.waitFor({ state: 'detached' });

    const theme = () => page.evaluate(() => document.documentElement.dataset.theme ?? 'system');
    const first = await theme();
    await page.keyboard.press('t');
    const second = await theme();
    await page.keyboard.press('t');
    const third = await theme();
    expect(new Set([first, second, third]).size).toBe(3);
    await page.screenshot({ path: join(shotDir, `ui-shortcuts-theme-${third}.png`) });

    // Typing into a field is typing, not a shortcut.
    await page.getByRole('button', { name: 'Your own text' }).click();
    await page.getByTestId('run-custom-question').fill('');
    await page.getByTestId('run-custom-question').pressSequentially('tr?');
    expect(await page.getByTestId('run-custom-question').inputValue()).toBe('tr?');
    expect(await help.count()).toBe(0);
    expect(await theme()).toBe(third);

    await page.getByTestId('pattern-method').selectOption('user_pattern');
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('e');
    expect(
      await page.evaluate(() => document.activeElement?.getAttribute('data-testid') ?? null),
    ).toBe('pattern-source');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
