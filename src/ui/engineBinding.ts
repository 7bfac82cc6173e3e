/**
 * The engine as the run and sweep panels see it (engineTypes.ts), over the engine worker's client:
 * available once a model is loaded, otherwise a sentence saying what to do. Task prompts are
 * generated here with the model's tokenizer (the tasks fill their prompts by its token count) and
 * sent as ids encoded as the sweep encodes them, so a comparison run sees the sweep's prompt.
 */
import {
  measurementsOf,
  sampleTimingsOf,
  tokenizerCodec,
  type PromptCodec,
} from '../engine/modelBackend';
import { loadSweepResults } from '../engine/store/indexedDb';
import { TextTokenizer } from '../model/tokenizer';
import { getTask } from '../tasks/registry';
import type { TaskSample } from '../tasks/types';
import { engineClient } from './engineClient';
import type { GenerationOutcome, PlaygroundEngine, PromptSpec } from './engineTypes';
import { getLoadedModel, useModelStore, type PageModel } from './modelStore';
import { usePlayground } from './playgroundStore';
import { useAppStore } from './store';

export interface EngineAvailability {
  engine: PlaygroundEngine | null;
  /** Why nothing can run now, in words; null when the engine is ready. */
  unavailable: string | null;
  /** The loaded model's name. */
  modelName: string | null;
}

const codecs = new WeakMap<PageModel, PromptCodec>();

/** The loaded model's tokenizer as the sweep uses it (chat template when the model has one). */
function codecOf(loaded: PageModel): PromptCodec {
  let codec = codecs.get(loaded);
  if (!codec) {
    if (!loaded.tokenizerJson) {
      throw new Error(
        `${loaded.plan.name} has no tokenizer.json; the playground needs its tokenizer`,
      );
    }
    const tokenizer = new TextTokenizer(loaded.tokenizerJson, loaded.tokenizerConfig ?? {});
    codec = tokenizerCodec(tokenizer, { chat: loaded.info.chat });
    codecs.set(loaded, codec);
  }
  return codec;
}

function abortError(): Error {
  const error = new Error('cancelled');
  error.name = 'AbortError';
  return error;
}

/**
 * The user's own text with the question before and after it (the study's layout, without the
 * tasks' answer-format instructions: there is no gold answer to score against).
 */
function customPrompt(text: string, question: string) {
  const prompt = `Question: ${question}\n\n${text}\n\nQuestion: ${question}\nAnswer:`;
  return { prompt, chatMessages: [{ role: 'user' as const, content: prompt }] };
}

const engine: PlaygroundEngine = {
  async generate(request, onToken, signal) {
    const loaded = getLoadedModel();
    if (!loaded) throw new Error('No model is loaded: pick one in the model picker.');
    const codec = codecOf(loaded);
    let sample: TaskSample | null = null;
    let ids: number[];
    const prompt: PromptSpec = request.prompt;
    if (prompt.kind === 'task') {
      sample = getTask(prompt.task).generate({
        seed: prompt.seed,
        targetTokens: prompt.length,
        tokenizer: { count: (text) => codec.count(text) },
      });
      ids = codec.encodePrompt(sample.prompt, sample.chatMessages);
    } else {
      const rendered = customPrompt(prompt.text, prompt.question);
      ids = codec.encodePrompt(rendered.prompt, rendered.chatMessages);
    }
    let shown = '';
    const reply = await engineClient().generate(
      { prompt: { ids }, attention: request.attention, maxNewTokens: request.maxNewTokens },
      {
        signal,
        // The worker sends the text decoded so far; each token shows what it added.
        onToken: (id, _index, text) => {
          const piece = text.startsWith(shown) ? text.slice(shown.length) : text;
          shown = text;
          onToken({ id, text: piece });
        },
      },
    );
    if (signal.aborted) throw abortError();
    const task = sample ? getTask(sample.task) : null;
    const outcome: GenerationOutcome = {
      ids: reply.ids,
      text: reply.text,
      promptTokens: reply.promptIds.length,
      score: task && sample ? task.score(sample, reply.text) : null,
      answer: task && sample ? task.goldAnswer(sample) : null,
      measured: measurementsOf(reply.stats),
      timings: sampleTimingsOf(reply.timings),
    };
    return outcome;
  },

  async sweep(config, onEvent, signal) {
    await engineClient().runSweep(config, { onEvent, signal });
  },

  storedResults: (sweepId) => loadSweepResults(sweepId),
};

// The loaded model's attention dims set what paramsForSparsity plans for.
useModelStore.subscribe((state, previous) => {
  if (state.load === previous.load || state.load.status !== 'loaded') return;
  const model = getLoadedModel()?.info.model;
  if (model) {
    usePlayground
      .getState()
      .setDims({ numHeads: model.heads, numKvHeads: model.kvHeads, headDim: model.headDim });
  }
});

export function useEngine(): EngineAvailability {
  const gpu = useAppStore((s) => s.gpu.status);
  const load = useModelStore((s) => s.load);
  const modelName = load.status === 'loaded' ? load.summary.name : null;
  if (gpu !== 'ready') {
    return {
      engine: null,
      unavailable: 'Running a model needs a working WebGPU device (see the GPU panel above).',
      modelName,
    };
  }
  if (load.status !== 'loaded') {
    return {
      engine: null,
      unavailable: 'No model is loaded: pick one in the model picker above, then run.',
      modelName,
    };
  }
  return { engine, unavailable: null, modelName };
}
