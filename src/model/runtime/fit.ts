/**
 * Does a model fit the device? Weights above the storage-binding limit are split in row chunks
 * (planWeightChunks), so only what cannot be split is a problem: a single row, a buffer that is
 * bound whole (position table, KV pool of one layer, activations).
 */
import type { GpuCapabilities } from '../../gpu/context';
import { wordsPerPage, type KvDtype } from '../../kernels/layout';
import { rowWords, type WeightDtype } from '../../kernels/model/common';
import { formatMiB } from '../loading/gpuSize';
import type { CpuModel } from './cpuModel';

export const PAGE_SIZE = 16;

export interface FitOptions {
  weightDtype: WeightDtype;
  kvDtype: KvDtype;
  maxSeqLen: number;
  prefillChunk: number;
  /** Lower binding limit (tests); defaults to the device's. */
  maxBindingBytes?: number;
}

export interface FitReport {
  /** What does not fit; empty when the model can run. */
  problems: string[];
  /** Facts worth printing: sizes, split tensors. */
  notes: string[];
  weightBytes: number;
  kvBytes: number;
}

export function checkDeviceFit(
  model: CpuModel,
  caps: GpuCapabilities,
  options: FitOptions,
): FitReport {
  const { config } = model;
  const deviceLimit = Math.min(caps.maxStorageBufferBindingSize, caps.maxBufferSize);
  const limit = options.maxBindingBytes ?? deviceLimit;
  const problems: string[] = [];
  const notes: string[] = [];
  let weightBytes = 0;
  const matrix = (name: string, rows: number, features: number) => {
    const rowBytes = rowWords(features, options.weightDtype) * 4;
    weightBytes += rows * rowBytes;
    if (rowBytes > limit) {
      problems.push(`${name}: one row of ${rowBytes} B exceeds the ${limit} B binding limit`);
    } else if (rows * rowBytes > limit) {
      const chunks = Math.ceil(rows / Math.floor(limit / rowBytes));
      notes.push(`${name} (${formatMiB(rows * rowBytes)}) is split into ${chunks} chunks`);
    }
  };
  const whole = (name: string, bytes: number) => {
    if (bytes > deviceLimit) {
      problems.push(
        `${name} needs ${formatMiB(bytes)} in one binding (limit ${formatMiB(deviceLimit)})`,
      );
    }
  };
  matrix('embedding', config.vocabSize, config.hiddenSize);
  if (model.lmHead) matrix('lm_head', config.vocabSize, config.hiddenSize);
  if (model.positionEmbedding) {
    const bytes =
      rowWords(config.hiddenSize, options.weightDtype) * 4 * config.maxPositionEmbeddings;
    weightBytes += bytes;
    whole('position embedding', bytes);
  }
  model.layers.forEach((layer, i) => {
    // q and kv are uploaded stacked (model.ts): one matrix of both.
    const qkv = {
      inFeatures: layer.q.inFeatures,
      outFeatures: layer.q.outFeatures + layer.kv.outFeatures,
    };
    const qkvBias = layer.q.bias || layer.kv.bias ? qkv.outFeatures : 0;
    matrix(`layer ${i} qkv`, qkv.outFeatures, qkv.inFeatures);
    weightBytes += qkvBias * 4;
    for (const [name, l] of Object.entries({
      o: layer.o,
      mlpIn: layer.mlpIn,
      mlpOut: layer.mlpOut,
    })) {
      matrix(`layer ${i} ${name}`, l.outFeatures, l.inFeatures);
      weightBytes += (l.bias?.length ?? 0) * 4;
    }
  });
  const layout = {
    pageSize: PAGE_SIZE,
    numKvHeads: config.numKvHeads,
    headDim: config.headDim,
    dtype: options.kvDtype,
  };
  const poolBytes = Math.ceil(options.maxSeqLen / PAGE_SIZE) * wordsPerPage(layout) * 4;
  whole(`the KV pool of one layer at ${options.maxSeqLen} tokens`, poolBytes);
  const widest = Math.max(
    config.hiddenSize,
    config.numHeads * config.headDim,
    ...model.layers.map((l) => Math.max(l.kv.outFeatures, l.mlpIn.outFeatures)),
  );
  whole(
    `activations of a ${options.prefillChunk}-token prefill chunk`,
    options.prefillChunk * widest * 4,
  );
  if (options.maxSeqLen > config.maxPositionEmbeddings) {
    problems.push(
      `maxSeqLen ${options.maxSeqLen} exceeds max_position_embeddings ${config.maxPositionEmbeddings}`,
    );
  }
  const kvBytes = 2 * config.numLayers * poolBytes;
  notes.unshift(
    `weights ${formatMiB(weightBytes)} (${options.weightDtype}), KV cache ${formatMiB(kvBytes)}`,
  );
  return { problems, notes, weightBytes, kvBytes };
}
