/**
 * A model from its files, wherever they come from: config.json, model.safetensors or the shards
 * that model.safetensors.index.json names, and tokenizer.json / tokenizer_config.json /
 * generation_config.json when present. The caller supplies a reader (a Node folder, HTTP, Cache
 * Storage, File objects); this module never touches a file system or the network, so it runs in
 * Node, on the page and in a Web Worker alike.
 */
import { parseModelConfig, type ModelConfig } from './config';
import {
  combineShards,
  getTensor,
  parseSafetensors,
  parseShardIndex,
  singleFileDirectory,
  tensorToFloat32,
  type SafetensorsFile,
  type TensorLocation,
} from './safetensors';
import { resolveWeights } from './weights';
import { buildCpuModel, type CpuModel } from '../runtime/cpuModel';

/** A file's whole bytes by name (as the Hub names it), or null when the model has no such file. */
export type ModelFileReader = (name: string) => Promise<ArrayBuffer | null>;

export const CONFIG_FILE = 'config.json';
export const SINGLE_WEIGHTS_FILE = 'model.safetensors';
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';
export const OPTIONAL_JSON_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'generation_config.json',
] as const;

export interface ModelFiles {
  config: ModelConfig;
  model: CpuModel;
  /** Parsed tokenizer.json / tokenizer_config.json / generation_config.json, when present. */
  tokenizerJson: unknown | null;
  tokenizerConfig: unknown | null;
  generationConfig: unknown | null;
}

/** Parses a JSON file's bytes; `where` names the model in the error. */
export function parseJsonFile(bytes: ArrayBuffer, name: string, where: string): unknown {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    throw new Error(`${where}: ${name} is not valid UTF-8`, { cause: error });
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`${where}: ${name} is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

async function readJson(
  read: ModelFileReader,
  name: string,
  where: string,
  required: boolean,
): Promise<unknown | null> {
  const bytes = await read(name);
  if (bytes === null) {
    if (required) throw new Error(`${where}: ${name} not found`);
    return null;
  }
  return parseJsonFile(bytes, name, where);
}

/**
 * Reads and checks a model through `read`; `where` (a folder, a repo id) prefixes every error.
 * Files are requested in this order: config.json, model.safetensors, then (only when that is
 * missing) the shard index and its shards, then the optional JSON files.
 */
export async function loadModelFiles(read: ModelFileReader, where: string): Promise<ModelFiles> {
  const config = parseModelConfig(await readJson(read, CONFIG_FILE, where, true));
  const files = new Map<string, SafetensorsFile>();
  let directory: Map<string, TensorLocation>;
  const single = await read(SINGLE_WEIGHTS_FILE);
  if (single !== null) {
    const file = parseSafetensors(single, SINGLE_WEIGHTS_FILE);
    files.set(file.fileName, file);
    directory = singleFileDirectory(file);
  } else {
    const indexJson = await readJson(read, SHARD_INDEX_FILE, where, false);
    if (indexJson === null) {
      throw new Error(
        `${where}: no ${SINGLE_WEIGHTS_FILE} or ${SHARD_INDEX_FILE} (only safetensors checkpoints are supported)`,
      );
    }
    const index = parseShardIndex(indexJson);
    const missing: string[] = [];
    for (const name of index.files) {
      const bytes = await read(name);
      if (bytes === null) missing.push(name);
      else files.set(name, parseSafetensors(bytes, name));
    }
    if (missing.length > 0) throw new Error(`${where}: missing shard files: ${missing.join(', ')}`);
    directory = combineShards(index, files);
  }
  const weights = resolveWeights(config, directory);
  const model = buildCpuModel(config, weights, (spec) => {
    const location = directory.get(spec.name);
    if (!location) throw new Error(`tensor ${spec.name} is missing`);
    return tensorToFloat32(getTensor(files.get(location.file)!, spec.name));
  });
  const [tokenizerJson, tokenizerConfig, generationConfig] = await Promise.all(
    OPTIONAL_JSON_FILES.map((name) => readJson(read, name, where, false)),
  );
  return { config, model, tokenizerJson, tokenizerConfig, generationConfig };
}
