/**
 * Loads a Hugging Face model folder in Node: config.json, model.safetensors or the shards that
 * model.safetensors.index.json names, and tokenizer.json / tokenizer_config.json /
 * generation_config.json when present. Tensors are decoded to f32 CPU arrays (GPT-2's Conv1D
 * weights transposed to [out][in]) by src/model/runtime/cpuModel.ts; device limits are checked
 * when the model is uploaded (src/model/runtime/fit.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseModelConfig, type ModelConfig } from './loading/config';
import {
  combineShards,
  getTensor,
  parseSafetensors,
  parseShardIndex,
  singleFileDirectory,
  tensorToFloat32,
  type SafetensorsFile,
  type TensorLocation,
} from './loading/safetensors';
import { resolveWeights } from './loading/weights';
import { buildCpuModel, type CpuModel } from './runtime/cpuModel';

export interface ModelFolder {
  folder: string;
  config: ModelConfig;
  model: CpuModel;
  /** Parsed tokenizer.json / tokenizer_config.json / generation_config.json, when present. */
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
  generationConfig: unknown | null;
}

async function readJson(path: string, required: boolean): Promise<unknown | null> {
  if (!existsSync(path)) {
    if (required) throw new Error(`${path}: not found`);
    return null;
  }
  const text = await readFile(path, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid JSON: ${(error as Error).message}`, { cause: error });
  }
}

async function readSafetensors(path: string, name: string): Promise<SafetensorsFile> {
  const bytes = await readFile(path);
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  return parseSafetensors(buffer as ArrayBuffer, name);
}

export async function loadModelFolder(folder: string): Promise<ModelFolder> {
  if (!existsSync(folder)) throw new Error(`model folder ${folder} does not exist`);
  const config = parseModelConfig(await readJson(join(folder, 'config.json'), true));
  const files = new Map<string, SafetensorsFile>();
  let directory: Map<string, TensorLocation>;
  const indexPath = join(folder, 'model.safetensors.index.json');
  if (existsSync(join(folder, 'model.safetensors'))) {
    const file = await readSafetensors(join(folder, 'model.safetensors'), 'model.safetensors');
    files.set(file.fileName, file);
    directory = singleFileDirectory(file);
  } else if (existsSync(indexPath)) {
    const index = parseShardIndex(await readFile(indexPath, 'utf8'));
    const missing = index.files.filter((name) => !existsSync(join(folder, name)));
    if (missing.length > 0) {
      throw new Error(`${folder}: missing shard files: ${missing.join(', ')}`);
    }
    for (const name of index.files)
      files.set(name, await readSafetensors(join(folder, name), name));
    directory = combineShards(index, files);
  } else {
    throw new Error(
      `${folder}: no model.safetensors or model.safetensors.index.json (only safetensors checkpoints are supported)`,
    );
  }
  const weights = resolveWeights(config, directory);
  const model = buildCpuModel(config, weights, (spec) => {
    const location = directory.get(spec.name);
    if (!location) throw new Error(`tensor ${spec.name} is missing`);
    return tensorToFloat32(getTensor(files.get(location.file)!, spec.name));
  });
  return {
    folder,
    config,
    model,
    tokenizerJson: await readJson(join(folder, 'tokenizer.json'), false),
    tokenizerConfig: await readJson(join(folder, 'tokenizer_config.json'), false),
    generationConfig: await readJson(join(folder, 'generation_config.json'), false),
  };
}
