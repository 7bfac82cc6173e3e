/**
 * npm run cli -- generate|logits --model <folder> (--prompt "..." | --ids 1,2,3)
 *   [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]
 *   [--prefill-method dense] [--decode-method dense] [--prefill-params k=v,k=v]
 *   [--decode-params k=v,k=v] [--sparsity s] [--dense-layers 0,1] [--weights f32|f16]
 *   [--kv f32|f16] [--max-seq-len N] [--chat] [--json]
 *
 * Node + Dawn, the same forward pass as the browser (src/model/runtime/model.ts). Methods are the
 * registry's (src/methods/registry.ts); --sparsity s takes each method's paramsForSparsity(s) on
 * the prompt's length (decode too: the cache the prompt leaves), and --*-params override those.
 * --dense-layers keeps the listed layers dense in both phases (Quest's first two layers, say).
 */
import { parseArgs } from 'node:util';
import { acquireNodeGpuContext } from '../gpu/node';
import { getMethod, methodsFor } from '../methods/registry';
import type { MethodParams, ParamValue, Phase } from '../methods/types';
import { loadModelFolder } from '../model/load';
import {
  resolveAttention,
  type AttentionMethod,
  type AttentionOptions,
  type LayerAttentionOverride,
} from '../model/runtime/attention';
import { uploadModel, type AttentionStats, type ModelOptions } from '../model/runtime/model';
import { TextTokenizer } from '../model/tokenizer';

const methodNames = (phase: Phase) =>
  methodsFor(phase)
    .map((m) => m.name)
    .join('|');
const usage = `usage: npm run cli -- generate|logits --model <folder> (--prompt "..." | --ids 1,2,3)
  [--max-new-tokens 64] [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0]
  [--prefill-method ${methodNames('prefill')}]
  [--decode-method ${methodNames('decode')}]
  [--prefill-params k=v,k=v] [--decode-params k=v,k=v] [--sparsity 0..0.95]
  [--dense-layers 0,1] [--weights f32|f16] [--kv f32|f16] [--max-seq-len N] [--chat] [--json]`;

class UsageError extends Error {}

function number(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return parsed;
}

function dtype(value: string | undefined, name: string): 'f32' | 'f16' {
  if (value === undefined || value === 'f32' || value === 'f16') return value ?? 'f32';
  throw new UsageError(`--${name} must be f32 or f16, got '${value}'`);
}

/** A param value as typed: a number, true/false, or else the text itself (a mask_mod source). */
function paramValue(text: string): ParamValue {
  if (text === 'true' || text === 'false') return text === 'true';
  const parsed = Number(text);
  return text.trim() !== '' && Number.isFinite(parsed) ? parsed : text;
}

/**
 * k=v,k=v: pairs split at the commas that start a new `name=`, so that a value (a mask_mod source)
 * may hold commas of its own.
 */
function parseParams(text: string | undefined, flag: string): Partial<MethodParams> {
  const params: Partial<MethodParams> = {};
  if (text === undefined) return params;
  for (const pair of text.split(/,(?=\s*[A-Za-z_]\w*=)/)) {
    const match = /^\s*([A-Za-z_]\w*)=([\s\S]*)$/.exec(pair);
    if (!match) throw new UsageError(`--${flag}: '${pair}' is not name=value (e.g. window=256)`);
    params[match[1]] = paramValue(match[2]);
  }
  return params;
}

/** The phase's method: --<phase>-method, its params from --sparsity, then --<phase>-params. */
function methodOption(
  phase: Phase,
  name: string | undefined,
  paramsText: string | undefined,
  sparsity: number | undefined,
  shape: { numHeads: number; numKvHeads: number; headDim: number; promptLength: number },
): AttentionMethod {
  const methodName = name ?? 'dense';
  let method;
  try {
    method = getMethod(methodName);
  } catch {
    throw new UsageError(
      `--${phase}-method: unknown method '${methodName}' (${phase} methods: ${methodNames(phase)})`,
    );
  }
  const given = parseParams(paramsText, `${phase}-params`);
  if (sparsity === undefined || !method.phases.includes(phase)) {
    return { name: methodName, params: given };
  }
  const numQueries = phase === 'prefill' ? shape.promptLength : 1;
  const qStart = phase === 'prefill' ? 0 : shape.promptLength - 1;
  const fromSparsity = method.paramsForSparsity(sparsity, { ...shape, numQueries, qStart });
  return { name: methodName, params: { ...fromSparsity, ...given } };
}

/** --dense-layers 0,1: per-layer overrides that keep those layers dense. */
function denseLayers(text: string | undefined, numLayers: number): AttentionOptions['layers'] {
  if (text === undefined) return undefined;
  const layers: (LayerAttentionOverride | undefined)[] = [];
  for (const part of text.split(',')) {
    const layer = Number(part.trim());
    if (!Number.isInteger(layer) || layer < 0 || layer >= numLayers) {
      throw new UsageError(
        `--dense-layers: '${part}' is not a layer index (the model has layers 0..${numLayers - 1})`,
      );
    }
    layers[layer] = { prefill: 'dense', decode: 'dense' };
  }
  return layers;
}

/** The kernel-counted sparsity per phase and layer, one line. */
function describeSparsity(stats: AttentionStats): string {
  const phase = (name: Phase) =>
    `${name} ${stats[name][0]?.method ?? '-'}: ` +
    stats[name].map((layer) => `${(layer.sparsity * 100).toFixed(1)}%`).join(' ');
  return `measured sparsity per layer (counted by the kernels): ${phase('prefill')}; ${phase('decode')}`;
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      prompt: { type: 'string' },
      ids: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      seed: { type: 'string' },
      'prefill-method': { type: 'string' },
      'decode-method': { type: 'string' },
      'prefill-params': { type: 'string' },
      'decode-params': { type: 'string' },
      sparsity: { type: 'string' },
      'dense-layers': { type: 'string' },
      weights: { type: 'string' },
      kv: { type: 'string' },
      'max-seq-len': { type: 'string' },
      chat: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(usage);
    return;
  }
  const command = positionals[0];
  if (command !== 'generate' && command !== 'logits') {
    throw new UsageError(`unknown command '${command ?? ''}' (generate or logits)`);
  }
  if (!values.model) throw new UsageError('--model <folder> is required');
  if (!values.prompt && !values.ids) throw new UsageError('give --prompt "..." or --ids 1,2,3');

  const folder = await loadModelFolder(values.model);
  const tokenizer = folder.tokenizerJson
    ? new TextTokenizer(folder.tokenizerJson, folder.tokenizerConfig ?? {})
    : null;
  let ids: number[];
  if (values.ids) {
    ids = values.ids.split(',').map((part) => {
      const id = Number(part.trim());
      if (!Number.isInteger(id) || id < 0)
        throw new UsageError(`--ids: '${part}' is not a token id`);
      return id;
    });
  } else {
    if (!tokenizer) {
      throw new UsageError(`${values.model} has no tokenizer.json: pass --ids instead of --prompt`);
    }
    const prompt = values.prompt as string;
    ids = values.chat
      ? tokenizer.encodeChat([{ role: 'user', content: prompt }])
      : tokenizer.encode(prompt);
  }

  const sparsity =
    values.sparsity === undefined ? undefined : number(values.sparsity, 'sparsity', 0);
  if (sparsity !== undefined && !(sparsity >= 0 && sparsity <= 0.95)) {
    throw new UsageError(`--sparsity must be in [0, 0.95], got ${sparsity}`);
  }
  const shape = { ...folder.config, promptLength: ids.length };
  const attentionFor = (phase: Phase, name?: string, params?: string) =>
    methodOption(phase, name, params, sparsity, shape);
  const options: ModelOptions = {
    weightDtype: dtype(values.weights, 'weights'),
    kvDtype: dtype(values.kv, 'kv'),
    attention: {
      prefill: attentionFor('prefill', values['prefill-method'], values['prefill-params']),
      decode: attentionFor('decode', values['decode-method'], values['decode-params']),
      layers: denseLayers(values['dense-layers'], folder.config.numLayers),
    },
  };
  // Bad methods and params are reported before the GPU is acquired.
  resolveAttention(options.attention, folder.config.numLayers);
  const ctx = await acquireNodeGpuContext();
  const maxNewTokens = number(values['max-new-tokens'], 'max-new-tokens', 64);
  if (values['max-seq-len']) options.maxSeqLen = number(values['max-seq-len'], 'max-seq-len', 0);
  else options.maxSeqLen = Math.min(folder.config.maxPositionEmbeddings, ids.length + maxNewTokens);
  const model = await uploadModel(ctx, folder.model, options);
  const describe = `${folder.config.architecture}, ${folder.config.numLayers} layers on ${ctx.adapter.description || ctx.adapter.vendor}; ${model.fit.notes.join('; ')}`;
  if (!values.json) console.error(describe);

  if (command === 'logits') {
    const logits = await model.prefill(ids);
    const top = [...logits.keys()].sort((a, b) => logits[b] - logits[a]).slice(0, 10);
    const rows = top.map((id) => ({ id, logit: logits[id], text: tokenizer?.decode([id]) }));
    if (values.json) {
      console.log(
        JSON.stringify({ ids, top: rows, timings: model.timings, attention: model.stats }),
      );
    } else {
      for (const row of rows) {
        console.log(
          `${String(row.id).padStart(8)} ${row.logit.toFixed(4).padStart(10)}  ${JSON.stringify(row.text ?? '')}`,
        );
      }
      console.error(describeSparsity(model.stats));
    }
    model.dispose();
    return;
  }

  let printed = '';
  const generated: number[] = [];
  const result = await model.generate(ids, {
    maxNewTokens,
    temperature: number(values.temperature, 'temperature', 0),
    topK: number(values['top-k'], 'top-k', 0),
    topP: number(values['top-p'], 'top-p', 1),
    seed: number(values.seed, 'seed', 0),
    onToken: (id) => {
      generated.push(id);
      if (values.json) return;
      if (!tokenizer) {
        process.stdout.write(`${id} `);
        return;
      }
      const text = tokenizer.decode(generated, { skipSpecialTokens: true });
      process.stdout.write(text.slice(printed.length));
      printed = text;
    },
  });
  const { prefill, decode } = result.timings;
  if (values.json) {
    console.log(
      JSON.stringify({
        prompt_ids: ids,
        ids: result.ids,
        text: tokenizer?.decode(result.ids, { skipSpecialTokens: true }),
        stop_reason: result.stopReason,
        timings: result.timings,
        attention: model.stats,
      }),
    );
  } else {
    process.stdout.write('\n');
    console.error(
      `[${result.stopReason}] prefill ${prefill.tokens} tokens in ${prefill.ms.toFixed(2)} ms, ` +
        `decode ${decode.tokens} tokens in ${decode.ms.toFixed(2)} ms ` +
        `(${(decode.tokens / (decode.ms / 1000) || 0).toFixed(1)} tok/s GPU, ${result.timings.source})`,
    );
    console.error(describeSparsity(model.stats));
  }
  model.dispose();
}

main().catch((error: unknown) => {
  if (error instanceof UsageError) console.error(`error: ${error.message}\n${usage}`);
  else console.error(`error: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
