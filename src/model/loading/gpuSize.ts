/**
 * What a checkpoint will need on the GPU, from tensor shapes alone (safetensors headers), so a page
 * can say "too large for this GPU" before downloading gigabytes. Counts weight bytes as
 * checkDeviceFit (src/model/runtime/fit.ts) does once the model is loaded: matrices in the chosen
 * weight dtype, biases in f32, norms left out. WebGPU does not tell how much memory a device has,
 * so only hard limits refuse a model: a matrix row or a buffer bound whole that exceeds the
 * storage-binding or buffer-size limit. Larger matrices are split in row chunks by the runtime.
 */
import { rowWords, type WeightDtype } from '../../kernels/model/common';
import type { ModelConfig } from './config';
import { elementCount } from './safetensors';
import { requiredTensors, type LinearWeights, type ModelWeights } from './weights';

/** The two WebGPU limits that decide whether a tensor can live on the device. */
export interface GpuBufferLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
}

export interface GpuSizeReport {
  /** Elements of every tensor the forward pass reads (a tied head once). */
  parameters: number;
  /** Weight buffers on the GPU, as checkDeviceFit counts them. */
  weightBytes: number;
  /** Hard limits the model exceeds; empty when it can be uploaded. */
  problems: string[];
  /** Facts worth showing: the total, which matrices are split. */
  notes: string[];
}

export const formatMiB = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Every linear of every layer, named as checkDeviceFit's messages name them. */
function linearsOf(weights: ModelWeights): [string, LinearWeights][] {
  if (weights.family === 'gpt2') {
    return weights.layers.flatMap((l, i): [string, LinearWeights][] =>
      Object.entries({ qkv: l.qkv, o: l.attnOut, fc: l.fc, proj: l.proj }).map(([name, linear]) => [
        `layer ${i} ${name}`,
        linear,
      ]),
    );
  }
  return weights.layers.flatMap((l, i): [string, LinearWeights][] =>
    Object.entries({ q: l.q, k: l.k, v: l.v, o: l.o, gate: l.gate, up: l.up, down: l.down }).map(
      ([name, linear]) => [`layer ${i} ${name}`, linear],
    ),
  );
}

export function estimateGpuSize(
  config: ModelConfig,
  weights: ModelWeights,
  limits: GpuBufferLimits | null,
  weightDtype: WeightDtype = 'f32',
): GpuSizeReport {
  const bindingLimit = limits
    ? Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize)
    : Infinity;
  const problems: string[] = [];
  const notes: string[] = [];
  let weightBytes = 0;
  const matrix = (name: string, rows: number, features: number) => {
    const rowBytes = rowWords(features, weightDtype) * 4;
    weightBytes += rows * rowBytes;
    if (rowBytes > bindingLimit) {
      problems.push(
        `${name}: one row of ${rowBytes} B exceeds the ${bindingLimit} B binding limit`,
      );
    } else if (rows * rowBytes > bindingLimit) {
      const chunks = Math.ceil(rows / Math.floor(bindingLimit / rowBytes));
      notes.push(`${name} (${formatMiB(rows * rowBytes)}) will be split into ${chunks} chunks`);
    }
  };
  matrix('embedding', config.vocabSize, config.hiddenSize);
  if (!weights.tiedLmHead) matrix('lm_head', config.vocabSize, config.hiddenSize);
  if (weights.family === 'gpt2') {
    const bytes = rowWords(config.hiddenSize, weightDtype) * 4 * weights.positionEmbedding.shape[0];
    weightBytes += bytes;
    if (bytes > bindingLimit) {
      problems.push(
        `the position embedding needs ${formatMiB(bytes)} in one binding (limit ${formatMiB(bindingLimit)})`,
      );
    }
  }
  for (const [name, linear] of linearsOf(weights)) {
    matrix(name, linear.outFeatures, linear.inFeatures);
    weightBytes += (linear.bias ? linear.outFeatures : 0) * 4;
  }
  const parameters = requiredTensors(weights).reduce((n, t) => n + elementCount(t.shape), 0);
  notes.unshift(`needs ${formatMiB(weightBytes)} of GPU buffers for the weights (${weightDtype})`);
  return { parameters, weightBytes, problems, notes };
}
