/** Shared steps of the ui-* end-to-end tests (on top of support/browser.ts). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Locator, Page } from 'playwright-core';
import { launchChromium, openPage, serveDist, shotDir } from './support/browser';
import { startHubServer, type HubServer } from './support/hubServer';
import { modelWithTokenizer } from './support/modelFolders';

export type { Browser, HubServer, Page, Server };
export { openPage, shotDir };

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

/** Types a repo id into the model picker and asks for it. */
export async function requestRepo(page: Page, repo: string): Promise<void> {
  const input = page.getByTestId('model-repo');
  await input.fill(repo);
  await input.press('Enter');
}

/** Opens the page with the Hub pointed at `endpoint`, once the GPU is ready. */
export async function openWithHub(
  browser: Browser,
  url: string,
  endpoint: string,
): Promise<{ page: Page; errors: string[] }> {
  // model=none: these tests load their models themselves, so the page starts without its own.
  const opened = await openPage(browser, `${url}?hub=${encodeURIComponent(endpoint)}&model=none`);
  await opened.page.getByTestId('adapter').waitFor({ timeout: 60_000 });
  return opened;
}

/** Opens the page with the Hub pointed at `hub` and loads the tiny model through the picker. */
export async function openWithTinyModel(
  browser: Browser,
  url: string,
  hub: HubServer,
): Promise<{ page: Page; errors: string[] }> {
  const opened = await openWithHub(browser, url, hub.endpoint);
  await requestRepo(opened.page, TINY_REPO);
  await opened.page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  return opened;
}

export interface BreakingProxy {
  endpoint: string;
  /** Whole-file downloads of `file` it cut off half way. */
  broken: number;
  close(): Promise<void>;
}

/**
 * A proxy in front of a Hub stand-in that cuts the first whole-file download of `file` off half
 * way (headers promise the full length, then the connection drops), as a failing network does;
 * everything else, later downloads included, passes through.
 */
export async function startBreakingProxy(target: string, file: string): Promise<BreakingProxy> {
  const proxy: BreakingProxy = { endpoint: '', broken: 0, close: async () => {} };
  const server = createServer((request, response) => {
    const range = request.headers.range;
    fetch(`${target}${request.url ?? '/'}`, {
      method: request.method,
      headers: range ? { range } : {},
    })
      .then(async (upstream) => {
        const body = Buffer.from(await upstream.arrayBuffer());
        const headers = Object.fromEntries(upstream.headers);
        delete headers['transfer-encoding'];
        headers['content-length'] = String(body.byteLength);
        response.writeHead(upstream.status, headers);
        const whole = request.method === 'GET' && !range && upstream.status === 200;
        if (whole && request.url?.endsWith(`/${file}`) && proxy.broken === 0) {
          proxy.broken++;
          response.write(body.subarray(0, body.byteLength >> 1), () => response.destroy());
        } else response.end(body);
      })
      .catch((error: Error) => response.writeHead(502).end(error.message));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  proxy.endpoint = `http://127.0.0.1:${port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  return proxy;
}
