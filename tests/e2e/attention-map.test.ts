/**
 * The attention-map view in headless Chromium on SwiftShader: a harness page (built here with Vite
 * from the app's own modules) computes a map with the real WebGPU kernel in the page, for random
 * queries and keys with a sink key, with a sliding-window mask as the method's choice, and mounts
 * AttentionMapView on it. Checks hover (tokens and weight), per-head budgets and recall, wheel and
 * keyboard zoom, drag, head selection and PNG export; an 8K x 8K map at block level (?long) that
 * pans without stalling; that the app itself asks for a run before it shows a map; and, with a
 * tiny fixture model served in the Hub's layout, that the app's panel maps a prompt through the
 * engine worker. Screenshots go to test-output/e2e/.
 */
import react from '@vitejs/plugin-react';
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blockSizeFor, recallPerHead } from '../../src/kernels/attentionMap';
import { fitViewport } from '../../src/ui/attentionMapRender';
import { launchChromium, serveDist, shotDir } from './support/browser';
import { startHubServer, type HubServer } from './support/hubServer';
import { modelWithTokenizer } from './support/modelFolders';

const rootDir = fileURLToPath(new URL('../../', import.meta.url));
const harnessDir = join(rootDir, 'test-output/e2e/attention-map-harness/');

/** The harness's shape: token level, so each cell is one (query, key) pair. */
const harness = {
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  qStart: 32,
  numQueries: 64,
  window: 16,
  sinks: 2,
};
const numKeys = harness.qStart + harness.numQueries;
const canvasSize = 520;

/**
 * The long harness (?long): 8K queries against 8K keys of one head, pooled into the 16-token
 * blocks the app picks for 8K tokens of a 32-head model (blockSizeFor).
 */
const longHarness = { numHeads: 1, numKvHeads: 1, headDim: 8, qStart: 0, numQueries: 8192 };
const longBlock = blockSizeFor(longHarness.numQueries, 32);

const harnessSource = `
import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import '/src/ui/styles.css';
import { acquireGpuContext } from '/src/gpu/context';
import { randomFloats } from '/src/engine/random';
import { attentionMapOnHost, keptSharePerHead } from '/src/kernels/attentionMap';
import { defaultScale } from '/src/kernels/layout';
import { measuredSparsity } from '/src/methods/reference/masks';
import { slidingWindow } from '/src/methods/reference/slidingWindow';
import { AttentionMapView } from '/src/ui/AttentionMap';

const long = new URLSearchParams(location.search).has('long');
const shape = long ? ${JSON.stringify(longHarness)} : ${JSON.stringify(harness)};
const numKeys = shape.qStart + shape.numQueries;
const ctx = await acquireGpuContext(navigator.gpu);
const q = randomFloats(shape.numQueries * shape.numHeads * shape.headDim, 1, 2);
const k = randomFloats(numKeys * shape.numKvHeads * shape.headDim, 2, 2);
// Key 0 points along every query of head 0's KV head: an attention sink.
for (let d = 0; d < shape.headDim; d++) k[d] = 0;
for (let i = 0; i < shape.numQueries; i++) {
  for (let d = 0; d < shape.headDim; d++) k[d] += q[i * shape.numHeads * shape.headDim + d] / 4;
}
// The long map is dense only, at the block size the app picks for its length.
const mask = long
  ? undefined
  : slidingWindow(shape, { window: shape.window, sinks: shape.sinks, blockQ: 16, blockK: 16 });
const blockSize = long ? ${longBlock} : 1;
const grid = await attentionMapOnHost(
  ctx,
  { ...shape, q, k, scale: defaultScale(shape.headDim), blockSize,
    kv: { pageSize: 16, numKvHeads: shape.numKvHeads, headDim: shape.headDim, dtype: 'f32' } },
  mask,
);
const tokens = Array.from({ length: numKeys }, (_, i) => 'w' + i + ' ');
window.attentionMapGrid = long ? null : { mass: Array.from(grid.mass), kept: Array.from(grid.kept) };
const headBudgets = mask ? keptSharePerHead(mask) : null;
window.attentionMapBudgets = headBudgets ? Array.from(headBudgets) : null;
const data = {
  title: 'harness: random q and k with a sink key',
  layer: 0,
  grid,
  tokens,
  method: mask ? 'sliding_window' : null,
  headBudgets,
  layers: mask ? [{ layer: 0, sparsity: measuredSparsity(mask), recall: null }] : [],
};
createRoot(document.getElementById('root')).render(createElement(AttentionMapView, { data }));
`;

/** Builds the harness bundle (harness.js and its CSS) into test-output/. */
async function buildHarness(): Promise<void> {
  const entry = 'virtual:attention-map-harness';
  // Vitest sets NODE_ENV=test, which makes Vite and the React plugin emit development JSX.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = 'production';
  try {
    await buildBundle(entry);
  } finally {
    process.env.NODE_ENV = nodeEnv;
  }
}

async function buildBundle(entry: string): Promise<void> {
  await build({
    mode: 'production',
    publicDir: false,
    configFile: false,
    root: rootDir,
    logLevel: 'warn',
    plugins: [
      react(),
      {
        name: 'attention-map-harness',
        // Lib mode hands the entry over as a path under the root.
        resolveId: (id) => (id.endsWith(entry) ? `\0${entry}` : null),
        load: (id) => (id === `\0${entry}` ? harnessSource : null),
      },
    ],
    define: { 'process.env.NODE_ENV': JSON.stringify('production') },
    build: {
      outDir: harnessDir,
      emptyOutDir: true,
      target: 'es2022',
      lib: { entry, formats: ['es'], fileName: () => 'harness.js', cssFileName: 'harness' },
    },
  });
}

const harnessHtml = `<!doctype html><html><head><meta charset="utf-8"><title>Attention map</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/harness/harness.css"></head>
<body><div id="root" class="app"></div><script type="module" src="/harness/harness.js"></script></body></html>`;

/** The harness page at /harness.html and its bundle under /harness/. */
async function serveHarness(): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    if (path === '/harness.html') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(harnessHtml);
      return;
    }
    const file = normalize(join(harnessDir, path.replace(/^\/harness\//, '')));
    if (!path.startsWith('/harness/') || !file.startsWith(harnessDir)) {
      response.writeHead(404).end();
      return;
    }
    const type = file.endsWith('.css') ? 'text/css' : 'text/javascript';
    readFile(file).then(
      (body) => response.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(body),
      () => response.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/` };
}

let browser: Browser;
let app: { server: Server; url: string } | undefined;
let harnessServer: { server: Server; url: string } | undefined;

beforeAll(async () => {
  await mkdir(shotDir, { recursive: true });
  app = await serveDist();
  await buildHarness();
  harnessServer = await serveHarness();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  for (const running of [app, harnessServer]) {
    if (running) await new Promise((resolve) => running.server.close(resolve));
  }
});

async function openHarness(query = ''): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto(`${harnessServer!.url}harness.html${query}`);
  // The kernel runs on SwiftShader before the view mounts; fail at once on a page error.
  const canvas = page.locator('canvas.attention-map-canvas');
  const deadline = Date.now() + 120_000;
  while ((await canvas.count()) === 0) {
    if (errors.length > 0) throw new Error(`the harness failed: ${errors.join('; ')}`);
    if (Date.now() > deadline) throw new Error('the harness rendered no map within 120 s');
    await page.waitForTimeout(250);
  }
  return { page, errors };
}

/** Page coordinates of the centre of cell (query row, key) of the fitted view. */
async function cellPoint(page: Page, row: number, key: number): Promise<{ x: number; y: number }> {
  const box = (await page.locator('canvas.attention-map-canvas').boundingBox())!;
  const view = fitViewport(numKeys, harness.numQueries, canvasSize, canvasSize);
  return {
    x: box.x + view.x + (key + 0.5) * view.scale,
    y: box.y + view.y + (row + 0.5) * view.scale,
  };
}

/** The pooled mass and kept mass of head 0 at (query row, key), as the page's kernel computed it. */
async function cellValues(page: Page, row: number, key: number) {
  const cell = row * numKeys + key;
  return page.evaluate((index) => {
    const grid = (window as unknown as { attentionMapGrid: { mass: number[]; kept: number[] } })
      .attentionMapGrid;
    return { mass: grid.mass[index], kept: grid.kept[index] };
  }, cell);
}

describe('attention map view', () => {
  it('renders a kernel-computed map; hover names the tokens and the weight', async () => {
    const { page, errors } = await openHarness();
    const canvas = page.locator('canvas.attention-map-canvas');
    expect(await canvas.getAttribute('data-zoom')).toBe('1.000');

    // The canvas paints causal cells and leaves the non-causal corner transparent.
    const painted = await canvas.evaluate((element: HTMLCanvasElement) => {
      const context = element.getContext('2d')!;
      const alpha = (x: number, y: number) => context.getImageData(x, y, 1, 1).data[3];
      return { causal: alpha(5, element.height / 2), nonCausal: alpha(element.width - 3, 140) };
    });
    expect(painted.causal).toBe(255);
    expect(painted.nonCausal).toBe(0);

    // Query row 40 (position 72) against the sink key 0: a kept cell with a large weight.
    const row = 40;
    const sink = await cellPoint(page, row, 0);
    await page.mouse.move(sink.x, sink.y);
    const tooltip = page.getByRole('tooltip');
    await tooltip.waitFor();
    const text = await tooltip.innerText();
    const position = harness.qStart + row;
    expect(text).toContain(`Query ${position} \u201cw${position} \u201d`);
    expect(text).toContain('Key 0 \u201cw0 \u201d');
    const sinkCell = await cellValues(page, row, 0);
    expect(sinkCell.kept).toBe(sinkCell.mass);
    expect(text).toContain(`Weight ${sinkCell.mass.toFixed(4)}`);

    // Key 10 of the same row lies outside the window and the sinks: dropped, all its mass lost.
    const dropped = await cellPoint(page, row, 10);
    await page.mouse.move(dropped.x, dropped.y);
    await expect.poll(() => tooltip.innerText()).toContain('Key 10 \u201cw10 \u201d');
    const droppedCell = await cellValues(page, row, 10);
    expect(droppedCell.kept).toBe(0);
    const lostText = await tooltip.innerText();
    expect(lostText).toMatch(/Kept 0 · lost \S+/);

    // Per-head budgets (the mask's kept share) and recall (from the kernel's grid) as bars.
    const { budgets, grid } = await page.evaluate(() => {
      const w = window as unknown as {
        attentionMapBudgets: number[];
        attentionMapGrid: { mass: number[]; kept: number[] };
      };
      return { budgets: w.attentionMapBudgets, grid: w.attentionMapGrid };
    });
    const recall = recallPerHead({
      numHeads: harness.numHeads,
      numQueries: harness.numQueries,
      qStart: harness.qStart,
      blockSize: 1,
      numQueryBlocks: harness.numQueries,
      numKeyBlocks: numKeys,
      mass: Float32Array.from(grid.mass),
      kept: Float32Array.from(grid.kept),
    });
    const headBars = page
      .locator('figure.attention-map-bars', { hasText: 'Heads of layer 0' })
      .locator('tbody tr');
    expect(await headBars.count()).toBe(harness.numHeads);
    for (let h = 0; h < harness.numHeads; h++) {
      expect((await headBars.nth(h).innerText()).split(/\s+/)).toEqual([
        `h${h}`,
        `${(budgets[h] * 100).toFixed(1)}%`,
        `${(recall[h] * 100).toFixed(1)}%`,
      ]);
    }
    expect(budgets.some((b) => b < 0.9)).toBe(true);
    expect(await page.getByTestId('attention-map-recall-basis').innerText()).toMatch(
      /^Recall is exact: .* all 64 mapped queries \(32\u201395\)/,
    );

    await page.screenshot({ path: join(shotDir, 'attention-map.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('renders an 8K x 8K map at block level and pans it without stalling', async () => {
    const { page, errors } = await openHarness('?long');
    const canvas = page.locator('canvas.attention-map-canvas');
    const cells = longHarness.numQueries / longBlock;
    expect(await canvas.getAttribute('aria-label')).toContain(
      `${cells} query x ${cells} key cells, one per ${longBlock}-token block`,
    );
    expect(await page.locator('.attention-map-head canvas').count()).toBe(longHarness.numHeads);
    // Zoomed in, then dragged across: every move repaints the view; time the frames.
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    await page.mouse.wheel(0, -1500);
    await expect
      .poll(async () => Number(await canvas.getAttribute('data-zoom')))
      .toBeGreaterThan(4);
    // Frame intervals while the mouse drags the view across: a stall shows as a long interval.
    await page.evaluate(() => {
      const w = window as unknown as { frameTimes: number[]; recording: boolean };
      w.frameTimes = [];
      w.recording = true;
      const tick = (time: number) => {
        w.frameTimes.push(time);
        if (w.recording) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    const before = await canvas.screenshot();
    await page.mouse.down();
    for (let step = 1; step <= 30; step++) {
      await page.mouse.move(box.x + box.width / 2 - step * 6, box.y + box.height / 2 - step * 3);
    }
    await page.mouse.up();
    const frames = await page.evaluate(() => {
      const w = window as unknown as { frameTimes: number[]; recording: boolean };
      w.recording = false;
      return w.frameTimes.slice(1).map((t, i) => t - w.frameTimes[i]);
    });
    expect(await canvas.screenshot()).not.toEqual(before);
    const sorted = [...frames].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    expect(frames.length).toBeGreaterThan(10);
    expect(median).toBeLessThan(50);
    await page.screenshot({ path: join(shotDir, 'attention-map-8k.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('zooms with the wheel and the keyboard, pans by dragging, selects heads', async () => {
    const { page, errors } = await openHarness();
    const canvas = page.locator('canvas.attention-map-canvas');
    const zoom = async () => Number(await canvas.getAttribute('data-zoom'));

    const centre = await cellPoint(page, 32, 48);
    await page.mouse.move(centre.x, centre.y);
    await page.mouse.wheel(0, -400);
    await expect.poll(zoom).toBeGreaterThan(1.5);
    expect(await page.getByText(/^Zoom ×/).innerText()).not.toContain('×1.0 ');
    // Zooming at the cursor keeps the cell under it.
    await page.mouse.move(centre.x + 1, centre.y);
    await expect.poll(() => page.getByRole('tooltip').innerText()).toContain('Key 48 ');

    // Dragging by 3 cells' worth moves the grid under the cursor by about that much.
    const zoomed = await zoom();
    const cellPixels = fitViewport(numKeys, harness.numQueries, canvasSize, canvasSize).scale;
    const shift = 3 * cellPixels * zoomed;
    await page.mouse.down();
    await page.mouse.move(centre.x + shift, centre.y, { steps: 5 });
    await page.mouse.up();
    await page.mouse.move(centre.x + shift + 1, centre.y);
    await expect.poll(() => page.getByRole('tooltip').innerText()).toContain('Key 48 ');
    await page.mouse.move(centre.x + 1, centre.y);
    await expect.poll(() => page.getByRole('tooltip').innerText()).toContain('Key 45 ');

    await canvas.focus();
    await page.keyboard.press('0');
    await expect.poll(zoom).toBe(1);
    await page.keyboard.press('+');
    await expect.poll(zoom).toBeCloseTo(1.25, 3);
    await page.keyboard.press('-');
    await expect.poll(zoom).toBeCloseTo(1, 3);

    const head2 = page.getByRole('button', { name: /^Head 2\b/ });
    await head2.click();
    expect(await head2.getAttribute('aria-pressed')).toBe('true');
    expect(await canvas.getAttribute('aria-label')).toMatch(/^Attention map of head 2:/);
    await page.getByRole('button', { name: 'Dense mass' }).click();
    await page.screenshot({ path: join(shotDir, 'attention-map-head2-dense.png'), fullPage: true });

    // The view as shown, saved as a PNG of the canvas's own pixels.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('attention-map-png').click(),
    ]);
    expect(download.suggestedFilename()).toBe('attention-map-head2.png');
    const path = join(shotDir, 'attention-map-export.png');
    await download.saveAs(path);
    const png = await readFile(path);
    expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
    expect(png.readUInt32BE(16)).toBe(canvasSize);
    expect(errors).toEqual([]);
    await page.context().close();
  });

  it('the app asks for a model run before it shows a map', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.goto(app!.url);
    const panel = page.getByRole('heading', { name: 'Attention map' }).locator('xpath=..');
    await panel.waitFor();
    const section = page.locator('section[aria-labelledby="attention-map-title"]');
    expect(await section.innerText()).toContain(
      'Load a model and run a prompt to see its attention.',
    );
    expect(await section.locator('canvas').count()).toBe(0);
    await context.close();
  });
});

const REPO = 'test-org/tiny-llama';
const PROMPT = 'The red box sits in room five. The blue box sits in room two.';

describe('attention map of a loaded model', () => {
  let hub: HubServer | undefined;
  let tmp: string | undefined;
  beforeAll(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'attention-map-'));
    const folder = modelWithTokenizer(
      join(import.meta.dirname, '../fixtures/models/llama_gqa_tied'),
      join(tmp, 'tiny'),
    );
    hub = await startHubServer({ repos: { [REPO]: folder } });
  });
  afterAll(async () => {
    await hub?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('maps a prompt of the tiny model in the app: its characters and weights on hover', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    await page.goto(`${app!.url}?hub=${encodeURIComponent(hub!.endpoint)}&model=none`);
    await page.getByTestId('adapter').waitFor({ timeout: 60_000 });
    const repo = page.getByTestId('model-repo');
    await repo.fill(REPO);
    await repo.press('Enter');
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });

    const section = page.locator('section[aria-labelledby="attention-map-title"]');
    await section.getByTestId('attention-map-layer').fill('5');
    await section.getByTestId('attention-map-prompt').fill(PROMPT);
    await section.getByTestId('attention-map-run').click();
    expect(await section.getByTestId('attention-map-error').innerText()).toBe(
      'Choose a layer from 0 to 1.',
    );

    await section.getByTestId('attention-map-layer').fill('1');
    await section.getByTestId('attention-map-run').click();
    const canvas = section.locator('canvas.attention-map-canvas');
    await canvas.waitFor({ timeout: 120_000 });
    // The character tokenizer: <s>, then one token per character of the prompt.
    const numTokens = PROMPT.length + 1;
    expect(await section.innerText()).toContain(`${numTokens} tokens · layer 1`);

    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    const view = fitViewport(numTokens, numTokens, canvasSize, canvasSize);
    const position = 9; // the 'o' of "box"
    await page.mouse.move(
      box.x + view.x + 0.5 * view.scale,
      box.y + view.y + (position + 0.5) * view.scale,
    );
    const tooltip = section.getByRole('tooltip');
    await tooltip.waitFor();
    const text = await tooltip.innerText();
    expect(text).toContain(`Query ${position} \u201c${PROMPT[position - 1]}\u201d`);
    expect(text).toContain('Key 0 \u201c<s>\u201d');
    expect(text).toMatch(/Weight (0\.\d{4}|\d\.\d{2}e-\d+)/);
    await section.screenshot({ path: join(shotDir, 'attention-map-model.png') });
    expect(errors).toEqual([]);
    await context.close();
  });
});
