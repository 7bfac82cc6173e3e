/**
 * Our own safetensors reader and writer (https://huggingface.co/docs/safetensors): 8 bytes of
 * little-endian u64 header length N, N bytes of UTF-8 JSON
 * `{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__"?: {string: string}}`, then the
 * data section, which the tensors must cover exactly (no overlaps, no holes), offsets relative to it.
 *
 * Every check runs before any tensor is trusted; errors name the file and the tensor. Typed-array
 * views assume a little-endian host, as every WebGPU browser is.
 */
import { float16BitsToFloat32, float32ToFloat16Bits } from '../../gpu/f16';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Readonly<Record<SafetensorsDtype, number>> = { F32: 4, F16: 2, BF16: 2 };

/** dtypes the format defines that we recognise but do not load. */
const KNOWN_UNSUPPORTED_DTYPES = new Set([
  'F64',
  'I64',
  'U64',
  'I32',
  'U32',
  'I16',
  'U16',
  'I8',
  'U8',
  'BOOL',
  'F8_E4M3',
  'F8_E5M2',
  'F8_E8M0',
  'F6_E2M3',
  'F6_E3M2',
  'F4',
  'C64',
]);

/** Same cap as the reference implementation: a header above this is corrupt or hostile. */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes before the JSON header: the u64 header length. */
export const HEADER_LENGTH_BYTES = 8;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** [begin, end) relative to the data section, as in the file. */
  readonly dataOffsets: readonly [number, number];
  /** Absolute offset of the first byte in the file (for range requests). */
  readonly byteOffset: number;
  readonly byteLength: number;
}

export interface SafetensorsHeader {
  readonly fileName: string;
  /** N: the JSON header's byte length. */
  readonly headerLength: number;
  /** Absolute offset of the data section: 8 + N. */
  readonly dataOffset: number;
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>> | null;
}

export interface TensorView {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Exactly the tensor's bytes, in the file's encoding. */
  readonly bytes: Uint8Array;
}

export interface SafetensorsFile extends SafetensorsHeader {
  readonly buffer: ArrayBuffer;
}

function toBytes(data: ArrayBuffer | Uint8Array): Uint8Array {
  return data instanceof Uint8Array ? data : new Uint8Array(data);
}

/**
 * How many bytes from the start of the file hold the whole header (8 + N), from a prefix of at
 * least 8 bytes. With fileSize, also checks that the header fits in the file. A browser reads the
 * first 8 bytes of a huge file by range request, then this many, then parseSafetensorsHeader.
 */
export function safetensorsHeaderSize(
  prefix: ArrayBuffer | Uint8Array,
  fileName: string,
  fileSize?: number,
): number {
  const bytes = toBytes(prefix);
  if (bytes.byteLength < HEADER_LENGTH_BYTES) {
    throw new Error(
      `${fileName}: truncated header: ${bytes.byteLength} bytes, need at least ${HEADER_LENGTH_BYTES} for the header length`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, HEADER_LENGTH_BYTES);
  const low = view.getUint32(0, true);
  const high = view.getUint32(4, true);
  if (high !== 0 || low > MAX_HEADER_BYTES) {
    const length = BigInt(high) * 2n ** 32n + BigInt(low);
    throw new Error(
      `${fileName}: header length ${length} bytes exceeds the ${MAX_HEADER_BYTES}-byte limit (corrupt or not a safetensors file)`,
    );
  }
  if (low < 2) throw new Error(`${fileName}: header length ${low} is too small for a JSON object`);
  const needed = HEADER_LENGTH_BYTES + low;
  if (fileSize !== undefined && needed > fileSize) {
    throw new Error(
      `${fileName}: header length ${low} bytes runs past the end of the file (${fileSize} bytes)`,
    );
  }
  return needed;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function parseTensorEntry(
  fileName: string,
  name: string,
  entry: unknown,
  dataOffset: number,
  dataLength: number,
): TensorInfo {
  const where = `${fileName}: tensor '${name}'`;
  if (!isPlainObject(entry)) throw new Error(`${where}: header entry is not an object`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (typeof dtype !== 'string') throw new Error(`${where}: dtype is missing or not a string`);
  if (!Object.hasOwn(DTYPE_BYTES, dtype)) {
    const kind = KNOWN_UNSUPPORTED_DTYPES.has(dtype) ? 'unsupported' : 'unknown';
    throw new Error(`${where}: ${kind} dtype ${dtype} (supported: F32, F16, BF16)`);
  }
  const elementBytes = DTYPE_BYTES[dtype as SafetensorsDtype];
  if (!Array.isArray(shape)) throw new Error(`${where}: shape is missing or not an array`);
  shape.forEach((dim, i) => {
    if (!isNonNegativeInteger(dim)) {
      throw new Error(
        `${where}: shape[${i}] = ${JSON.stringify(dim)} is not a non-negative integer`,
      );
    }
  });
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger)) {
    throw new Error(`${where}: data_offsets must be two non-negative integers [begin, end]`);
  }
  const [begin, end] = offsets as [number, number];
  if (end < begin) throw new Error(`${where}: data_offsets [${begin}, ${end}] end before begin`);
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expectedBytes = elements * elementBytes;
  if (!Number.isSafeInteger(expectedBytes) || expectedBytes !== end - begin) {
    throw new Error(
      `${where}: shape [${shape.join(', ')}] of ${dtype} needs ${expectedBytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataLength) {
    throw new Error(
      `${where}: data_offsets [${begin}, ${end}] out of range: the data section has ${dataLength} bytes`,
    );
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: [...(shape as number[])],
    dataOffsets: [begin, end],
    byteOffset: dataOffset + begin,
    byteLength: end - begin,
  };
}

function parseMetadata(fileName: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) throw new Error(`${fileName}: __metadata__ is not an object`);
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== 'string') {
      throw new Error(`${fileName}: __metadata__ value for '${key}' is not a string`);
    }
  }
  return { ...(value as Record<string, string>) };
}

/** The tensors must tile the data section exactly, as the reference implementation requires. */
function checkLayout(fileName: string, tensors: TensorInfo[], dataLength: number): void {
  const sorted = [...tensors].sort(
    (a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1],
  );
  let previous: TensorInfo | null = null;
  for (const tensor of sorted) {
    const previousEnd = previous ? previous.dataOffsets[1] : 0;
    const [begin, end] = tensor.dataOffsets;
    if (previous && begin < previousEnd) {
      throw new Error(
        `${fileName}: tensor '${tensor.name}' [${begin}, ${end}] overlaps tensor '${previous.name}' [${previous.dataOffsets[0]}, ${previousEnd}]`,
      );
    }
    if (begin > previousEnd) {
      throw new Error(
        `${fileName}: tensor '${tensor.name}' starts at ${begin}, leaving a hole after byte ${previousEnd} of the data section`,
      );
    }
    previous = tensor;
  }
  const covered = previous ? previous.dataOffsets[1] : 0;
  if (covered !== dataLength) {
    throw new Error(
      `${fileName}: the tensors cover ${covered} bytes but the data section has ${dataLength}`,
    );
  }
}

/**
 * Parses and validates the header from the file's first bytes (at least safetensorsHeaderSize of
 * them) and the file's total size.
 */
export function parseSafetensorsHeader(
  headerBytes: ArrayBuffer | Uint8Array,
  fileSize: number,
  fileName: string,
): SafetensorsHeader {
  const bytes = toBytes(headerBytes);
  const dataOffset = safetensorsHeaderSize(bytes, fileName, fileSize);
  if (bytes.byteLength < dataOffset) {
    throw new Error(
      `${fileName}: truncated header: have ${bytes.byteLength} bytes, the header needs ${dataOffset}`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(
      bytes.subarray(HEADER_LENGTH_BYTES, dataOffset),
    );
  } catch (error) {
    throw new Error(`${fileName}: header is not valid UTF-8`, { cause: error });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new Error(`${fileName}: header is not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (!isPlainObject(json)) throw new Error(`${fileName}: header JSON is not an object`);
  const dataLength = fileSize - dataOffset;
  let metadata: Record<string, string> | null = null;
  const tensors = new Map<string, TensorInfo>();
  for (const [name, entry] of Object.entries(json)) {
    if (name === '__metadata__') metadata = parseMetadata(fileName, entry);
    else tensors.set(name, parseTensorEntry(fileName, name, entry, dataOffset, dataLength));
  }
  checkLayout(fileName, [...tensors.values()], dataLength);
  return {
    fileName,
    headerLength: dataOffset - HEADER_LENGTH_BYTES,
    dataOffset,
    tensors,
    metadata,
  };
}

/** Parses a whole file held in memory. */
export function parseSafetensors(buffer: ArrayBuffer, fileName: string): SafetensorsFile {
  return { ...parseSafetensorsHeader(buffer, buffer.byteLength, fileName), buffer };
}

/** The tensor's bytes as a view into the file's buffer (no copy). */
export function getTensor(file: SafetensorsFile, name: string): TensorView {
  const info = file.tensors.get(name);
  if (!info) throw new Error(`${file.fileName}: no tensor '${name}'`);
  return tensorView(info, new Uint8Array(file.buffer, info.byteOffset, info.byteLength));
}

/** A view over bytes fetched separately (e.g. a range request for info.byteOffset..+byteLength). */
export function tensorView(info: TensorInfo, bytes: Uint8Array): TensorView {
  if (bytes.byteLength !== info.byteLength) {
    throw new Error(
      `tensor '${info.name}': got ${bytes.byteLength} bytes, expected ${info.byteLength}`,
    );
  }
  return { name: info.name, dtype: info.dtype, shape: info.shape, bytes };
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** The bytes as a typed array of `bytesPer`-byte elements, copying only when misaligned. */
function alignedBuffer(bytes: Uint8Array, bytesPer: number): [ArrayBufferLike, number] {
  return bytes.byteOffset % bytesPer === 0
    ? [bytes.buffer, bytes.byteOffset]
    : [bytes.slice().buffer, 0];
}

let f16Table: Float32Array | null = null;

function float16Table(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let bits = 0; bits < 65536; bits++) f16Table[bits] = float16BitsToFloat32(bits);
  }
  return f16Table;
}

/** Decodes any supported dtype to a new Float32Array (F16 exactly, BF16 by a 16-bit shift). */
export function tensorToFloat32(tensor: TensorView): Float32Array {
  const n = elementCount(tensor.shape);
  const [buffer, offset] = alignedBuffer(tensor.bytes, DTYPE_BYTES[tensor.dtype]);
  switch (tensor.dtype) {
    case 'F32':
      return new Float32Array(buffer, offset, n).slice();
    case 'F16': {
      const bits = new Uint16Array(buffer, offset, n);
      const table = float16Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[bits[i]];
      return out;
    }
    case 'BF16': {
      const bits = new Uint16Array(buffer, offset, n);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = bits[i] << 16;
      return new Float32Array(out.buffer);
    }
  }
}

/** f32 -> bf16 bits, round to nearest even; NaN stays NaN. */
const bfloat16Scratch = new DataView(new ArrayBuffer(4));

export function float32ToBfloat16Bits(value: number): number {
  bfloat16Scratch.setFloat32(0, value);
  const bits = bfloat16Scratch.getUint32(0);
  if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encodes f32 values in a dtype (rounding to nearest even for F16 and BF16). */
export function encodeFloat32(values: ArrayLike<number>, dtype: SafetensorsDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const bits = new Uint16Array(values.length);
  const encode = dtype === 'F16' ? float32ToFloat16Bits : float32ToBfloat16Bits;
  for (let i = 0; i < values.length; i++) bits[i] = encode(values[i]);
  return new Uint8Array(bits.buffer);
}

export interface TensorToWrite {
  readonly name: string;
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Already encoded in dtype (see encodeFloat32). */
  readonly bytes: Uint8Array;
}

/**
 * Writes a safetensors file, tensors in the order given; the header is padded with spaces to a
 * multiple of 8 bytes, as the reference writer does, so the data section stays aligned.
 */
export function serializeSafetensors(
  tensors: readonly TensorToWrite[],
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  // No prototype, so names like '__proto__' or 'constructor' are plain keys.
  const header: Record<string, unknown> = Object.create(null);
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const tensor of tensors) {
    if (tensor.name === '__metadata__' || Object.hasOwn(header, tensor.name)) {
      throw new Error(`serializeSafetensors: duplicate or reserved tensor name '${tensor.name}'`);
    }
    const expected = elementCount(tensor.shape) * DTYPE_BYTES[tensor.dtype];
    if (tensor.bytes.byteLength !== expected) {
      throw new Error(
        `serializeSafetensors: tensor '${tensor.name}' has ${tensor.bytes.byteLength} bytes, shape [${tensor.shape.join(', ')}] of ${tensor.dtype} needs ${expected}`,
      );
    }
    header[tensor.name] = {
      dtype: tensor.dtype,
      shape: tensor.shape,
      data_offsets: [offset, offset + expected],
    };
    offset += expected;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(HEADER_LENGTH_BYTES + headerLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength), true);
  out.set(json, HEADER_LENGTH_BYTES);
  out.fill(0x20, HEADER_LENGTH_BYTES + json.byteLength, HEADER_LENGTH_BYTES + headerLength);
  let position = HEADER_LENGTH_BYTES + headerLength;
  for (const tensor of tensors) {
    out.set(tensor.bytes, position);
    position += tensor.bytes.byteLength;
  }
  return out;
}

/** Where a tensor of a (possibly sharded) model lives. */
export interface TensorLocation extends TensorInfo {
  readonly file: string;
}

export interface ShardIndex {
  readonly weightMap: ReadonlyMap<string, string>;
  /** The distinct shard files, sorted. */
  readonly files: readonly string[];
  readonly metadata: Readonly<Record<string, unknown>> | null;
}

/** Parses model.safetensors.index.json ({metadata?, weight_map: {tensor: file}}), text or parsed. */
export function parseShardIndex(
  json: unknown,
  indexName = 'model.safetensors.index.json',
): ShardIndex {
  let value = json;
  if (typeof json === 'string') {
    try {
      value = JSON.parse(json);
    } catch (error) {
      throw new Error(`${indexName}: not valid JSON: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  if (!isPlainObject(value)) throw new Error(`${indexName}: not a JSON object`);
  const { weight_map: weightMap, metadata } = value;
  if (!isPlainObject(weightMap))
    throw new Error(`${indexName}: weight_map is missing or not an object`);
  if (metadata !== undefined && metadata !== null && !isPlainObject(metadata)) {
    throw new Error(`${indexName}: metadata is not an object`);
  }
  const map = new Map<string, string>();
  for (const [tensor, file] of Object.entries(weightMap)) {
    if (typeof file !== 'string' || file === '') {
      throw new Error(`${indexName}: weight_map entry for '${tensor}' is not a file name`);
    }
    if (file.startsWith('/') || file.includes('\\') || file.split('/').includes('..')) {
      throw new Error(
        `${indexName}: weight_map entry for '${tensor}' has an unsafe path '${file}'`,
      );
    }
    map.set(tensor, file);
  }
  if (map.size === 0) throw new Error(`${indexName}: weight_map is empty`);
  return {
    weightMap: map,
    files: [...new Set(map.values())].sort(),
    metadata: isPlainObject(metadata) ? metadata : null,
  };
}

/** Shard files the index names that are not among the available ones (empty when all exist). */
export function missingShardFiles(index: ShardIndex, available: Iterable<string>): string[] {
  const have = new Set(available);
  return index.files.filter((file) => !have.has(file));
}

/**
 * Joins the shards' headers through the index into one tensor directory. Every mapped file must be
 * given and every mapped tensor must be in its file; all problems are reported in one error.
 * Tensors a shard holds that the index does not map are left out, as transformers does.
 */
export function combineShards(
  index: ShardIndex,
  shards: ReadonlyMap<string, SafetensorsHeader>,
  indexName = 'model.safetensors.index.json',
): Map<string, TensorLocation> {
  const missingFiles = missingShardFiles(index, shards.keys());
  if (missingFiles.length > 0) {
    throw new Error(`${indexName}: missing shard files: ${missingFiles.join(', ')}`);
  }
  const problems: string[] = [];
  const directory = new Map<string, TensorLocation>();
  for (const [name, file] of index.weightMap) {
    const info = (shards.get(file) as SafetensorsHeader).tensors.get(name);
    if (info) directory.set(name, { ...info, file });
    else problems.push(`'${name}' is mapped to ${file} but not in it`);
  }
  if (problems.length > 0) throw new Error(`${indexName}: ${problems.join('; ')}`);
  return directory;
}

/** The directory of a single-file model, same shape as combineShards's. */
export function singleFileDirectory(header: SafetensorsHeader): Map<string, TensorLocation> {
  return new Map(
    [...header.tensors].map(([name, info]) => [name, { ...info, file: header.fileName }]),
  );
}
