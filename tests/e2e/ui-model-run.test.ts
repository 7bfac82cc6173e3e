/**
 * The run panel with a real model: the tiny fixture model (ui-harness.ts) served in the Hub's
 * layout and loaded through the model picker, after two loads that fail with their message while
 * the rest of the page works: a model too large for this GPU (refused from its headers) and a
 * download that breaks off (then loaded again). Dense and sparse generations stream side by side
 * with the kernel-measured sparsity per layer and GPU times, also with the pattern editor's
 * mask_mod as the prefill method, and with the bundled model the first divergent token is marked;
 * Escape cancels a run; an empty text, a prompt longer than the model's positions and a sweep that
 * cannot fit are refused with a message.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BrowserContext, Locator } from 'playwright-core';
import {
  closeAll,
  openWithHub,
  requestRepo,
  setPatternSource,
  shotDir,
  startAll,
  startBreakingProxy,
  startTinyModelHub,
  TINY_LAYERS,
  TINY_REPO,
  type Browser,
  type BreakingProxy,
  type Server,
} from './ui-harness';

let browser: Browser;
let server: Server;
let url: string;
let proxy: BreakingProxy | undefined;
let cleanup: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ browser, server, url } = await startAll());
  const tiny = await startTinyModelHub();
  cleanup = tiny.cleanup;
  proxy = await startBreakingProxy(tiny.hub.endpoint, 'model.safetensors');
});

afterAll(async () => {
  await proxy?.close();
  await cleanup?.();
  await closeAll(browser, server);
});

const TOO_LARGE_REPO = 'test-org/too-large';
/** An MLP so wide that one row of down_proj (f32) is over a 1 GiB binding: 2^28 + 64 features. */
const TOO_WIDE = 2 ** 28 + 64;

/**
 * Answers for TOO_LARGE_REPO as the Hub would for a real checkpoint of that shape: its config.json,
 * and byte ranges of a model.safetensors whose header lists 400 GB of weights. Only the header is
 * ever served; a request for the whole file is counted (planning must not download weights).
 */
async function serveTooLargeModel(context: BrowserContext, endpoint: string) {
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: 64,
    intermediate_size: TOO_WIDE,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    num_hidden_layers: 2,
    vocab_size: 320,
    max_position_embeddings: 256,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
    hidden_act: 'silu',
  };
  const shapes: [string, number[]][] = [['model.embed_tokens.weight', [320, 64]]];
  for (let layer = 0; layer < config.num_hidden_layers; layer++) {
    const at = `model.layers.${layer}`;
    shapes.push(
      [`${at}.input_layernorm.weight`, [64]],
      [`${at}.post_attention_layernorm.weight`, [64]],
      [`${at}.self_attn.q_proj.weight`, [64, 64]],
      [`${at}.self_attn.k_proj.weight`, [32, 64]],
      [`${at}.self_attn.v_proj.weight`, [32, 64]],
      [`${at}.self_attn.o_proj.weight`, [64, 64]],
      [`${at}.mlp.gate_proj.weight`, [TOO_WIDE, 64]],
      [`${at}.mlp.up_proj.weight`, [TOO_WIDE, 64]],
      [`${at}.mlp.down_proj.weight`, [64, TOO_WIDE]],
    );
  }
  shapes.push(['model.norm.weight', [64]]);
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const [name, shape] of shapes) {
    const bytes = shape.reduce((a, b) => a * b, 4);
    header[name] = { dtype: 'F32', shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const prefix = Buffer.alloc(8 + json.length);
  prefix.writeBigUInt64LE(BigInt(json.length));
  prefix.write(json, 8, 'latin1');
  const fileSize = prefix.length + offset;
  const cors = {
    'access-control-allow-origin': '*',
    'access-control-expose-headers': 'content-range, content-length, x-error-code',
  };
  const downloads = { whole: 0 };
  await context.route(`${endpoint}/${TOO_LARGE_REPO}/resolve/main/*`, (route) => {
    const file = route.request().url().split('/').pop();
    const range = /^bytes=(\d+)-(\d+)$/.exec(route.request().headers()['range'] ?? '');
    if (file === 'config.json') {
      return route.fulfill({ status: 200, headers: cors, body: JSON.stringify(config) });
    }
    if (file !== 'model.safetensors') {
      return route.fulfill({ status: 404, headers: { ...cors, 'x-error-code': 'EntryNotFound' } });
    }
    if (!range) {
      downloads.whole++;
      return route.abort('failed');
    }
    const start = Number(range[1]);
    const end = Math.min(Number(range[2]), prefix.length - 1);
    return route.fulfill({
      status: 206,
      headers: { ...cors, 'content-range': `bytes ${start}-${end}/${fileSize}` },
      body: prefix.subarray(start, end + 1),
    });
  });
  return downloads;
}

const TEXT = Array.from(
  { length: 4 },
  (_, i) => `Room ${i + 1} holds the ${['red', 'blue', 'green'][i % 3]} box number ${i * 7}.`,
).join(' ');

/**
 * Checks the comparison's divergence mark against the tokens: with "They part at token n" the
 * n-th sparse token is the one marked and the tokens before it agree; identical runs mark none.
 * Returns whether they parted.
 */
async function expectDivergenceMarked(panel: Locator): Promise<boolean> {
  const text = await panel.getByTestId('compare-summary').innerText();
  const denseTokens = panel.getByTestId('dense-tokens').locator('.token');
  const sparseTokens = panel.getByTestId('sparse-tokens').locator('.token');
  const divergent = panel.getByTestId('sparse-tokens-divergent');
  const parted = /They part at token (\d+)/.exec(text);
  if (!parted) {
    expect(text).toMatch(/identical/);
    expect(await divergent.count()).toBe(0);
    return false;
  }
  const index = Number(parted[1]) - 1;
  expect(await divergent.count()).toBe(1);
  expect(await sparseTokens.nth(index).getAttribute('data-testid')).toBe('sparse-tokens-divergent');
  for (let i = 0; i < index; i++) {
    expect(await sparseTokens.nth(i).innerText()).toBe(await denseTokens.nth(i).innerText());
  }
  return true;
}

describe('the run panel with a model', () => {
  it('refuses what cannot load, then streams dense and sparse side by side, cancels on Escape', async () => {
    const { page, errors } = await openWithHub(browser, url, proxy!.endpoint);
    const panel = page.getByTestId('run-panel');
    const modelError = page.getByTestId('model-error');

    // A model too large for this GPU is refused from its headers, before any weight is fetched.
    const tooLarge = await serveTooLargeModel(page.context(), proxy!.endpoint);
    await requestRepo(page, TOO_LARGE_REPO);
    await expect
      .poll(() => modelError.innerText(), { timeout: 60_000 })
      .toMatch(
        /too large for this GPU: layer 0 down: one row of 1073742080 B exceeds the \d+ B binding limit.*pick a smaller model/s,
      );
    expect(tooLarge.whole).toBe(0);
    // The rest of the page works: the run panel says what it needs, the pattern preview plans.
    expect(await panel.getByTestId('run-needs-model').innerText()).toMatch(/No model is loaded/);
    await page.getByTestId('pattern-method').selectOption('block_sparse');
    await expect
      .poll(() => page.getByTestId('measured-sparsity').innerText(), { timeout: 30_000 })
      .toMatch(/^\d+\.\d%$/);
    await page
      .getByTestId('model-picker')
      .screenshot({ path: join(shotDir, 'ui-model-too-large.png') });

    // A download that breaks off says so; loading again fetches it whole.
    await requestRepo(page, TINY_REPO);
    await expect
      .poll(() => modelError.innerText(), { timeout: 60_000 })
      .toMatch(
        /download of model\.safetensors from test-org\/tiny-llama broke off: check the connection and load again/,
      );
    expect(proxy!.broken).toBe(1);
    await page
      .getByTestId('model-picker')
      .screenshot({ path: join(shotDir, 'ui-model-download-failed.png') });
    await page.getByTestId('model-repo').press('Enter');
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
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
    await expectDivergenceMarked(panel);
    expect(await panel.getByTestId('speedup-prefill').innerText()).toMatch(/^\d+\.\d\d×$/);
    // Decode is dense on both sides: no speed-up is claimed for it.
    expect(await panel.getByTestId('speedup-decode').innerText()).toBe('dense in both');
    // Sliding window builds its mask on the CPU; dense plans nothing.
    expect(await panel.getByTestId('sparse-planning').innerText()).toMatch(
      /^prefill \d+(\.\d+)? ms on the CPU$/,
    );
    expect(await panel.getByTestId('dense-planning').count()).toBe(0);
    // Kernel-counted sparsity: one bar per layer, and sliding window skipped blocks.
    const bars = panel.getByTestId('sparse').getByTestId('layer-bars-prefill');
    expect(await bars.locator('.bar').count()).toBe(TINY_LAYERS);
    const measured = Number(/([\d.]+)% measured/i.exec(await bars.innerText())![1]);
    expect(measured).toBeGreaterThan(30);
    await panel.screenshot({ path: join(shotDir, 'ui-run-compare.png') });

    // The pattern editor's mask_mod runs on the model: its blocks are skipped by the kernel.
    await page.getByTestId('pattern-method').selectOption('user_pattern');
    await page.getByTestId('use-pattern').click();
    expect(await panel.getByTestId('prefill-method').inputValue()).toBe('user_pattern');
    await panel
      .getByTestId('prefill-picker')
      .getByRole('combobox', { name: 'Block size' })
      .selectOption('16');
    await panel.getByLabel('New tokens').fill('4');
    await panel.getByTestId('run-button').click();
    await expect
      .poll(() => panel.getByTestId('sparse').locator('h3').innerText())
      .toMatch(/^Your pattern/i);
    await summary.waitFor({ timeout: 120_000 });
    expect(await sparseTokens.count()).toBe(4);
    const patternBars = panel.getByTestId('sparse').getByTestId('layer-bars-prefill');
    expect(Number(/([\d.]+)% measured/i.exec(await patternBars.innerText())![1])).toBeGreaterThan(
      30,
    );

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

    // The bundled (trained) model under a narrow pattern parts from dense: the token is marked.
    await page.getByTestId('embedded-model').first().click();
    await expect
      .poll(() => page.getByTestId('model-summary').innerText(), { timeout: 60_000 })
      .toMatch(/^Tiny tasks model/);
    await panel.getByRole('button', { name: 'Your own text' }).click();
    await panel.getByLabel('New tokens').fill('8');
    // An 8-token window without sinks, in prefill (with a 16-token one these weights answer as
    // dense does).
    await setPatternSource(
      page,
      'function mask_mod(b, h, q_idx, kv_idx) {\n  return q_idx - kv_idx < 8;\n}',
    );
    await expect
      .poll(() => page.getByTestId('measured-sparsity').innerText(), { timeout: 30_000 })
      .toMatch(/^\d+\.\d%$/);
    await panel.getByTestId('run-button').click();
    await expect.poll(() => summary.count(), { timeout: 10_000 }).toBe(0);
    await summary.waitFor({ timeout: 120_000 });
    expect(await expectDivergenceMarked(panel)).toBe(true);
    await panel.screenshot({ path: join(shotDir, 'ui-run-divergent.png') });
    expect(errors).toEqual([]);
    await page.context().close();
  });
});
