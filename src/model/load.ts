/**
 * Loads a Hugging Face model folder in Node: config.json, model.safetensors or the shards that
 * model.safetensors.index.json names, and tokenizer.json / tokenizer_config.json /
 * generation_config.json when present, through the source-agnostic loadModelFiles
 * (src/model/loading/files.ts). Tensors are decoded to f32 CPU arrays (GPT-2's Conv1D weights
 * transposed to [out][in]) by src/model/runtime/cpuModel.ts; device limits are checked when the
 * model is uploaded (src/model/runtime/fit.ts).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadModelFiles, type ModelFileReader, type ModelFiles } from './loading/files';

export interface ModelFolder extends ModelFiles {
  folder: string;
}

/** Reads a file of the folder; null when it does not exist. */
export function folderReader(folder: string): ModelFileReader {
  return async (name) => {
    const path = join(folder, name);
    if (!existsSync(path)) return null;
    const bytes = await readFile(path);
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  };
}

export async function loadModelFolder(folder: string): Promise<ModelFolder> {
  if (!existsSync(folder)) throw new Error(`model folder ${folder} does not exist`);
  return { folder, ...(await loadModelFiles(folderReader(folder), folder)) };
}
