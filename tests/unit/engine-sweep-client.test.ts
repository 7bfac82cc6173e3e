import { describe, expect, it } from 'vitest';
import { EngineClient, pageRelativeSource, type WorkerPort } from '../../src/engine/client';
import type { WorkerReply, WorkerRequest } from '../../src/engine/protocol';
import type { SweepConfig, SweepEvent } from '../../src/engine/sweepTypes';

/** A worker stand-in: records requests; the test answers them through `reply`. */
class FakePort implements WorkerPort {
  readonly sent: WorkerRequest[] = [];
  private listener: ((event: MessageEvent<WorkerReply>) => void) | null = null;

  postMessage(message: WorkerRequest): void {
    this.sent.push(message);
  }

  addEventListener(type: 'message' | 'error', listener: never): void {
    if (type === 'message') this.listener = listener;
  }

  reply(message: WorkerReply): void {
    this.listener?.({ data: message } as MessageEvent<WorkerReply>);
  }
}

const CONFIG: SweepConfig = {
  tasks: ['ruler_niah'],
  lengths: [300],
  samples: 1,
  prefillMethods: [],
  decodeMethods: [],
  sparsities: [],
  maxNewTokens: 4,
};

describe('EngineClient', () => {
  it('streams a sweep to its callback and settles on done', async () => {
    const port = new FakePort();
    const client = new EngineClient(port);
    const seen: [string, string][] = [];
    const finished = client.runSweep(CONFIG, {
      onEvent: (event, sweepId) => seen.push([event.type, sweepId]),
    });
    const request = port.sent[0];
    expect(request).toEqual({ type: 'startSweep', id: 1, config: CONFIG });
    const progress = { done: 0, total: 1, resumed: 0, errors: 0 };
    const plan: SweepEvent = { type: 'plan', points: [], samples: [], progress };
    port.reply({ type: 'sweepEvent', id: 1, sweepId: 's', event: plan });
    port.reply({ type: 'sweepEvent', id: 2, sweepId: 'other', event: plan });
    port.reply({
      type: 'sweepEvent',
      id: 1,
      sweepId: 's',
      event: { type: 'done', cancelled: false, progress },
    });
    port.reply({ type: 'done', id: 1 });
    await finished;
    expect(seen).toEqual([
      ['plan', 's'],
      ['done', 's'],
    ]);
  });

  it('sends cancel for the aborted request and rejects a cancelled load with an AbortError', async () => {
    const port = new FakePort();
    const client = new EngineClient(port);
    const controller = new AbortController();
    const loading = client.loadModel(
      { kind: 'hub', repo: 'org/model' },
      { signal: controller.signal },
    );
    controller.abort();
    expect(port.sent[1]).toEqual({ type: 'cancel', id: 1 });
    port.reply({ type: 'error', id: 1, message: 'aborted', cancelled: true });
    await expect(loading).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects with the worker message on failure', async () => {
    const port = new FakePort();
    const client = new EngineClient(port);
    const generating = client.generate({
      prompt: { ids: [1, 2] },
      attention: { prefill: { name: 'dense', params: {} }, decode: { name: 'dense', params: {} } },
      maxNewTokens: 2,
    });
    port.reply({
      type: 'error',
      id: 1,
      message: 'no model is loaded: load one first',
      cancelled: false,
    });
    await expect(generating).rejects.toThrow('no model is loaded: load one first');
  });

  it('resolves a generation with its reply after streaming tokens', async () => {
    const port = new FakePort();
    const client = new EngineClient(port);
    const tokens: string[] = [];
    const generating = client.generate(
      {
        prompt: { text: 'hi' },
        attention: {
          prefill: { name: 'dense', params: {} },
          decode: { name: 'dense', params: {} },
        },
        maxNewTokens: 2,
      },
      { onToken: (_token, _index, text) => tokens.push(text) },
    );
    port.reply({ type: 'token', id: 1, token: 5, index: 0, text: 'a' });
    port.reply({ type: 'token', id: 1, token: 6, index: 1, text: 'ab' });
    const timing = { ms: 1, tokens: 1, submits: 1 };
    const reply = {
      promptIds: [1],
      ids: [5, 6],
      text: 'ab',
      stopReason: 'length' as const,
      timings: { source: 'wall-clock' as const, prefill: timing, decode: timing },
      stats: { prefill: [], decode: [] },
    };
    port.reply({ type: 'generated', id: 1, reply });
    port.reply({ type: 'done', id: 1 });
    await expect(generating).resolves.toEqual(reply);
    expect(tokens).toEqual(['a', 'ab']);
  });
});

describe('pageRelativeSource', () => {
  it("resolves a 'url' source against the page, not the worker script", () => {
    expect(
      pageRelativeSource({ kind: 'url', baseUrl: './models/tiny/' }, 'https://host/app/index.html'),
    ).toEqual({ kind: 'url', baseUrl: 'https://host/app/models/tiny/' });
    const hub = { kind: 'hub' as const, repo: 'org/model' };
    expect(pageRelativeSource(hub, 'https://host/app/')).toBe(hub);
  });
});
