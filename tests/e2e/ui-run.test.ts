/**
 * The run panel before a model is loaded: it says so and points at the model picker, its Run
 * button waits; its controls come from the registries (each method's params, the sparsity slider
 * moving the sparsity knob); the user's own text is checked before anything runs.
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

describe('the run panel', () => {
  it('says that no model is loaded, and its controls follow the registry', async () => {
    // ?model=none: the page starts without its bundled model.
    const { page, errors } = await openPage(browser, `${url}?model=none`);
    const panel = page.getByTestId('run-panel');
    const needs = panel.getByTestId('run-needs-model');
    await expect
      .poll(() => needs.innerText(), { timeout: 60_000 })
      .toMatch(/No model is loaded: pick one in the model picker/);
    expect(await panel.getByTestId('run-button').isDisabled()).toBe(true);

    // Block-Sparse's params appear; its knob (key blocks per query block) falls as sparsity grows.
    await panel.getByTestId('prefill-method').selectOption('block_sparse');
    const picker = panel.getByTestId('prefill-picker');
    const knob = picker.getByRole('spinbutton', { name: /Key blocks per query block/ });
    await panel.getByTestId('run-sparsity').fill('0.3');
    const low = Number(await knob.inputValue());
    await panel.getByTestId('run-sparsity').fill('0.9');
    const high = Number(await knob.inputValue());
    expect(high).toBeLessThan(low);
    // Decode offers only decode methods.
    const decodeOptions = await panel
      .getByTestId('decode-method')
      .locator('option')
      .allInnerTexts();
    expect(decodeOptions).toContain('Quest');
    expect(decodeOptions).not.toContain('Block-Sparse');

    await panel.getByRole('button', { name: 'Your own text' }).click();
    expect(await panel.getByTestId('run-custom-text').isVisible()).toBe(true);
    await panel.screenshot({ path: join(shotDir, 'ui-run-no-model.png') });

    // The shortcut says what is missing instead of running.
    await page.locator('body').click({ position: { x: 5, y: 5 } });
    await page.keyboard.press('r');
    expect(await page.getByTestId('toast').innerText()).toMatch(/Load a model first/);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('without WebGPU, says the model run needs it while the rest of the page works', async () => {
    const { page, errors } = await openPage(browser, url, { gpu: false });
    const needs = page.getByTestId('run-needs-model');
    await expect
      .poll(() => needs.innerText(), { timeout: 30_000 })
      .toMatch(/needs a working WebGPU/);
    await page.getByTestId('pattern-method').selectOption('sliding_window');
    await expect
      .poll(() => page.getByTestId('measured-sparsity').innerText(), { timeout: 30_000 })
      .toMatch(/^\d+\.\d%$/);
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
