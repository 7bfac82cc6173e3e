/** Shared steps of the ui-* end-to-end tests (on top of support/browser.ts). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium, serveDist, shotDir } from './support/browser';
import { startHubServer, type HubServer } from './support/hubServer';
import { modelWithTokenizer } from './support/modelFolders';

export type { Browser, HubServer, Page, Server };
export { shotDir };

/**
 * A fresh page at projector size that records uncaught errors. With `gpu: false` the page sees no
 * WebGPU: flows that need no GPU then run without the self-check's SwiftShader work beside them.
 */
export async function openPage(
  browser: Browser,
  url: string,
  { gpu = true }: { gpu?: boolean } = {},
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  if (!gpu) {
    await context.addInitScript(() => {
      delete (Navigator.prototype as { gpu?: unknown }).gpu;
    });
  }
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  await page.goto(url);
  return { page, errors };
}

export async function startAll(): Promise<{ browser: Browser; server: Server; url: string }> {
  await mkdir(shotDir, { recursive: true });
  const { server, url } = await serveDist();
  const browser = await launchChromium();
  return { browser, server, url };
}

export async function closeAll(browser: Browser | undefined, server: Server | undefined) {
  await browser?.close();
  await new Promise((resolve) => server?.close(resolve));
}

/** The "Sparsity patterns" panel. */
export function patternsSection(page: Page): Locator {
  return page
    .getByRole('heading', { name: 'Sparsity patterns' })
    .locator('xpath=ancestor::section');
}

/** Replaces the mask_mod editor's text as typing would. */
export async function setPatternSource(page: Page, source: string): Promise<void> {
  const editor = page.getByTestId('pattern-source');
  await editor.click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.insertText(source);
}

/** The tiny model the model-backed tests load (2 layers, random weights, character tokenizer). */
export const TINY_REPO = 'test-org/tiny-llama';
export const TINY_LAYERS = 2;

/**
 * A Hub stand-in serving the llama_gqa_tied fixture with the character tokenizer and positions
 * raised to 4096 (its RoPE does not depend on them), so task prompts of 2048 characters fit.
 */
export async function startTinyModelHub(): Promise<{
  hub: HubServer;
  cleanup: () => Promise<void>;
}> {
  const tmp = mkdtempSync(join(tmpdir(), 'ui-model-'));
  const folder = modelWithTokenizer(
    join(import.meta.dirname, '../fixtures/models/llama_gqa_tied'),
    join(tmp, 'tiny'),
  );
  const configPath = join(folder, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8'));
  writeFileSync(configPath, JSON.stringify({ ...config, max_position_embeddings: 4096 }));
  const hub = await startHubServer({ repos: { [TINY_REPO]: folder } });
  return {
    hub,
    cleanup: async () => {
      await hub.close();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** Opens the page with the Hub pointed at `hub` and loads the tiny model through the picker. */
export async function openWithTinyModel(
  browser: Browser,
  url: string,
  hub: HubServer,
): Promise<{ page: Page; errors: string[] }> {
  const opened = await openPage(browser, `${url}?hub=${encodeURIComponent(hub.endpoint)}`);
  const { page } = opened;
  await page.getByTestId('adapter').waitFor({ timeout: 60_000 });
  const input = page.getByTestId('model-repo');
  await input.fill(TINY_REPO);
  await input.press('Enter');
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  return opened;
}
