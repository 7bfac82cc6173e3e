/**
 * uploadModel: a model the GPU cannot hold is refused with what it needed and what to do, instead
 * of failing later in a dispatch. A real GPU's out-of-memory cannot be provoked safely in CI, so
 * the device's error scope is made to report one (a WebGPU device reports out-of-memory only
 * there: allocations do not throw).
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { GpuContext } from '../../src/gpu/context';
import { loadModelFolder, type ModelFolder } from '../../src/model/load';
import { uploadModel } from '../../src/model/runtime/model';
import { sharedGpuContext } from '../support/gpu';

let ctx: GpuContext;
let folder: ModelFolder;
beforeAll(async () => {
  ctx = await sharedGpuContext();
  folder = await loadModelFolder(join(import.meta.dirname, '../fixtures/models/llama_gqa_tied'));
});

/** ctx with a device whose error scopes report `error` after the real scope closes. */
function reporting(error: { message: string }): GpuContext {
  const device = new Proxy(ctx.device, {
    get(target, key) {
      if (key === 'popErrorScope') return async () => (await target.popErrorScope(), error);
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
  return { ...ctx, device };
}

describe('uploadModel', () => {
  it('uploads a model that fits, as createModel does', async () => {
    const model = await uploadModel(ctx, folder.model, { maxSeqLen: 64 });
    const logits = await model.prefill([1, 5, 9]);
    expect(logits.every(Number.isFinite)).toBe(true);
    model.dispose();
  });

  it('refuses a model the GPU ran out of memory for, saying its sizes and what to do', async () => {
    const upload = uploadModel(reporting({ message: 'Out of memory (test)' }), folder.model, {
      maxSeqLen: 64,
    });
    await expect(upload).rejects.toThrow(
      /MiB of weights and [\d.]+ MiB of KV cache for 64 tokens do not fit in this GPU's free memory \(Out of memory \(test\)\): choose a smaller model/,
    );
  });

  it('passes on the error of a model that does not fit the limits', async () => {
    const upload = uploadModel(ctx, folder.model, { maxSeqLen: 64, maxBindingBytes: 8 });
    await expect(upload).rejects.toThrow(/the model does not fit this GPU/);
  });
});
