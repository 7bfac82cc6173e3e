/**
 * The model picker in the built page, against a local server in the Hub's URL layout: a repo id
 * typed in loads with visible progress and a summary of what was loaded; a missing or gated repo
 * gives its message; after a reload the same model comes from Cache Storage without a single
 * request; a picked folder and dropped files load as well. Screenshots go to test-output/e2e/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distDir, launchChromium, openPage, serveDist, shotDir } from './support/browser';
import { startHubServer, type HubServer } from './support/hubServer';
import { modelWithTokenizer } from './support/modelFolders';

const fixtures = join(import.meta.dirname, '../fixtures/models');
const repo = 'test-org/llama-gqa-tied';

let browser: Browser;
let server: Server;
let url: string;
let hub: HubServer;
let tmp: string;
/** Fixture name -> a copy with a tokenizer, as the engine needs. */
const models: Record<string, string> = {};

beforeAll(async () => {
  await mkdir(shotDir, { recursive: true });
  tmp = mkdtempSync(join(tmpdir(), 'model-loading-e2e-'));
  for (const name of ['llama_gqa_tied', 'qwen2_bias', 'gpt2']) {
    models[name] = modelWithTokenizer(join(fixtures, name), join(tmp, name));
  }
  ({ server, url } = await serveDist());
  hub = await startHubServer({
    repos: { [repo]: models.llama_gqa_tied },
    restricted: { 'meta-llama/Llama-3.2-1B-Instruct': { status: 401, code: 'GatedRepo' } },
    // Half the weights, then a pause until the test has seen the progress bar.
    pauseWeightsAt: 0.5,
  });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await hub?.close();
  await new Promise((resolve) => server?.close(resolve));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** The page with the Hub pointed at the local server, once the GPU (and its limits) is ready. */
async function openWithHub(): Promise<{ page: Page; errors: string[] }> {
  // model=none: each test loads its model itself, so the page starts without its own.
  const opened = await openPage(
    browser,
    `${url}?hub=${encodeURIComponent(hub.endpoint)}&model=none`,
  );
  await opened.page.getByTestId('adapter').waitFor({ timeout: 60_000 });
  return opened;
}

async function loadRepo(page: Page, id: string): Promise<void> {
  const input = page.getByTestId('model-repo');
  await input.fill(id);
  await input.press('Enter');
}

/**
 * A picture of the picker. Clipped from the page rather than taken of the element, whose
 * stability wait can starve while the page's self-check keeps the software GPU busy.
 */
async function shootPicker(page: Page, name: string): Promise<void> {
  const box = await page.getByTestId('model-picker').boundingBox();
  if (!box) throw new Error('the model picker is not on the page');
  await page.screenshot({ path: join(shotDir, name), clip: box, fullPage: true });
}

describe('the model picker', () => {
  it('loads a Hub repo with progress, then from the cache after a reload', async () => {
    const { page, errors } = await openWithHub();
    expect(await page.getByTestId('hub-endpoint').innerText()).toContain(hub.endpoint);
    expect(await page.getByTestId('hub-suggestion').allInnerTexts()).toEqual(
      expect.arrayContaining([expect.stringMatching(/^SmolLM2-135M/)]),
    );

    await loadRepo(page, repo);
    const weightsRow = page.locator(
      '[data-testid="model-progress"][data-file="model.safetensors"]',
    );
    const size = (await readFile(join(fixtures, 'llama_gqa_tied/model.safetensors'))).byteLength;
    const bar = weightsRow.locator('progress');
    await expect
      .poll(async () => Number(await bar.getAttribute('value')), { timeout: 30_000 })
      .toBeGreaterThan(size * 0.45);
    expect(Number(await bar.getAttribute('value'))).toBeLessThan(size);
    expect(Number(await bar.getAttribute('max'))).toBe(size);
    expect(await weightsRow.innerText()).toMatch(/\d+\.\d KiB of 371\.3 KiB/);
    expect(await page.getByTestId('model-loading').innerText()).toMatch(
      new RegExp(`Loading ${repo} — needs 0\\.\\d MiB of GPU buffers`),
    );
    await shootPicker(page, 'model-progress.png');

    await page.getByTestId('model-cancel').click();
    await page.getByTestId('model-cancelled').waitFor({ timeout: 30_000 });
    hub.resume();
    await loadRepo(page, repo);

    const summary = page.getByTestId('model-summary');
    await summary.waitFor({ timeout: 60_000 });
    const text = await summary.innerText();
    expect(await page.getByTestId('model-name').innerText()).toBe(repo);
    expect(text).toMatch(/Architecture\s+LlamaForCausalLM/);
    expect(text).toMatch(/Layers\s+2\b/);
    // 94,528: a tied 320 x 64 embedding, 2 layers of 36,992, the final norm's 64.
    expect(text).toMatch(/Parameters\s+94\.5 K/);
    expect(text).toContain('fits this GPU');
    expect(await summary.getAttribute('data-fits')).toBe('true');
    await shootPicker(page, 'model-loaded.png');
    const firstLoad = hub.requests.length;
    expect(hub.requests.some((r) => r.range === 'bytes=0-7')).toBe(true);

    await page.reload();
    await page.getByTestId('adapter').waitFor({ timeout: 60_000 });
    await loadRepo(page, repo);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
    expect(await page.getByTestId('model-summary').innerText()).toMatch(
      /Downloaded\s+none \(cache or local\)/,
    );
    expect(hub.requests.length).toBe(firstLoad);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('loads the model the app bundles, and says so when it bundles none', async () => {
    const bundled = JSON.parse(await readFile(join(distDir, 'models/index.json'), 'utf8')) as {
      label: string;
      path: string;
      card?: string;
    }[];
    const { page, errors } = await openWithHub();
    const buttons = page.getByTestId('embedded-model');
    await expect.poll(() => buttons.count(), { timeout: 30_000 }).toBe(bundled.length);
    if (bundled.length > 0) {
      const config = JSON.parse(
        await readFile(join(distDir, bundled[0].path, 'config.json'), 'utf8'),
      ) as { architectures: string[]; num_hidden_layers: number };
      // Its card is linked beside it and served with the app.
      const cards = page.getByTestId('embedded-model-card');
      expect(await cards.count()).toBe(bundled.filter((m) => m.card).length);
      if (bundled[0].card) {
        const href = await cards.first().getAttribute('href');
        expect(href).toBe(`${bundled[0].path}${bundled[0].card}`);
        const card = await page.request.get(new URL(href!, page.url()).href);
        expect(card.status()).toBe(200);
        expect(await card.text()).toBe(
          await readFile(join(distDir, bundled[0].path, bundled[0].card), 'utf8'),
        );
      }
      await buttons.first().click();
      await expect
        .poll(() => page.getByTestId('model-name').textContent(), { timeout: 120_000 })
        .toBe(bundled[0].label);
      const text = await page.getByTestId('model-summary').innerText();
      expect(text).toMatch(new RegExp(`Architecture\\s+${config.architectures[0]}`));
      expect(text).toMatch(new RegExp(`Layers\\s+${config.num_hidden_layers}\\b`));
      expect(text).toContain('fits this GPU');
      await shootPicker(page, 'model-bundled.png');

      // Without ?model=none the page loads it by itself once the GPU is ready: no click.
      const first = await openPage(browser, url);
      await expect
        .poll(() => first.page.getByTestId('model-name').textContent(), { timeout: 120_000 })
        .toBe(bundled[0].label);
      expect(first.errors).toEqual([]);
      await first.page.context().close();
    }
    expect(errors).toEqual([]);
    await page.context().close();

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.route('**/models/index.json', (route) => route.fulfill({ json: [] }));
    const empty = await context.newPage();
    await empty.goto(url);
    expect(await empty.getByTestId('embedded-empty').innerText()).toMatch(/No model is bundled/);
    await context.close();
  });

  it('says a repo is not found, or gated and what to do', async () => {
    const { page, errors } = await openWithHub();
    await loadRepo(page, 'test-org/no-such-model');
    const error = page.getByTestId('model-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.innerText()).toContain('model not found on the Hub: test-org/no-such-model');
    await shootPicker(page, 'model-not-found.png');

    await page.getByTestId('hub-suggestion').filter({ hasText: 'Llama-3.2-1B' }).click();
    await expect
      .poll(() => error.innerText(), { timeout: 30_000 })
      .toMatch(/is gated: sign in on .* accept its licence/);
    await shootPicker(page, 'model-gated.png');

    await loadRepo(page, 'not a repo');
    await expect
      .poll(() => error.innerText(), { timeout: 30_000 })
      .toMatch(/is not a Hub repo id: write owner\/name/);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('loads a picked folder and dropped files', async () => {
    const { page, errors } = await openWithHub();
    await page.getByTestId('model-folder').setInputFiles(models.qwen2_bias);
    const summary = page.getByTestId('model-summary');
    await expect
      .poll(() => page.getByTestId('model-name').textContent(), { timeout: 60_000 })
      .toBe('qwen2_bias');
    expect(await summary.innerText()).toMatch(/Architecture\s+Qwen2ForCausalLM/);

    const files = await Promise.all(
      ['config.json', 'model.safetensors', 'tokenizer.json'].map(async (name) => ({
        name,
        base64: (await readFile(join(models.gpt2, name))).toString('base64'),
      })),
    );
    await page.getByTestId('model-picker').evaluate((element, dropped) => {
      const transfer = new DataTransfer();
      for (const { name, base64 } of dropped) {
        const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
        transfer.items.add(new File([bytes], name));
      }
      element.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true }));
      element.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true }));
    }, files);
    await expect
      .poll(() => summary.innerText(), { timeout: 60_000 })
      .toMatch(/Architecture\s+GPT2LMHeadModel/);
    await shootPicker(page, 'model-dropped.png');
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
