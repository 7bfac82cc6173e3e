/**
 * User-defined patterns in FlexAttention's convention: the user writes
 *
 *   function mask_mod(b, h, q_idx, kv_idx) {
 *     return q_idx - kv_idx < window || kv_idx < sinks;
 *   }
 *
 * (or `const mask_mod = (b, h, q_idx, kv_idx) => ...`, or just an arrow function expression), with
 * b = 0 (one sequence), h the query head and q_idx, kv_idx absolute positions; it is evaluated on
 * every causal element (non-causal ones are never kept) and turned into a block mask whose blocks
 * are full, partial (a bitset) or empty (masks.ts blockMaskFromMaskMod). The params `window` and
 * `sinks` are in scope, so the default pattern (sliding window + sinks) has a sparsity knob.
 *
 * Prefill runs the block-sparse kernel on the block mask. Decode runs split-K dense decode over the
 * decoded row's mask (denseDecode.ts decodeKeyBlocks): each KV head reads the key blocks that any
 * query head of its group keeps, and each query head weighs only its own kept keys, so a sinks +
 * window pattern reads about what sliding window's decode reads.
 *
 * Guarding: the source is compiled with `new Function` in strict mode, with common globals
 * (globalThis, self, document, fetch, ...) shadowed by undefined parameters. That stops accidents,
 * not a determined attacker, and it cannot stop an infinite loop: the user runs their own code in
 * their own tab. Errors (syntax, runtime, a non-boolean result) become UserPatternError with the
 * line number in the user's source where the engine tells it.
 */
import type { GpuContext } from '../gpu/context';
import { decodeKeyBlocks, type DecodeKeyBlocks } from '../kernels/denseDecode';
import {
  blockSparseOp,
  denseDecodeOp,
  maskShapeOf,
  plannedOnce,
  type AttentionCall,
  type AttentionOp,
} from './inModel';
import {
  blockMaskFromMaskMod,
  rowKeep,
  type BlockMask,
  type MaskMod,
  type MaskShape,
} from './reference/masks';
import { windowForSparsity } from './slidingWindow';
import {
  checkSparsity,
  numberParam,
  referenceFromMask,
  resolveParams,
  runDecodeSubset,
  runPlannedMask,
  stringParam,
  type MethodGpuInput,
  type MethodInput,
  type MethodParams,
  type MethodReference,
  type ParamSpec,
  type SparseMethod,
} from './types';

export class UserPatternError extends Error {
  /** 1-based line in the user's source, or null when the engine does not tell. */
  readonly line: number | null;
  readonly column: number | null;
  constructor(message: string, line: number | null, column: number | null = null) {
    super(line === null ? `mask_mod: ${message}` : `mask_mod, line ${line}: ${message}`);
    this.name = 'UserPatternError';
    this.line = line;
    this.column = column;
  }
}

export const DEFAULT_MASK_MOD = `function mask_mod(b, h, q_idx, kv_idx) {
  // Sliding window + sinks; \`window\` and \`sinks\` are the method's params.
  return q_idx - kv_idx < window || kv_idx < sinks;
}`;

/** Names in scope for the user's code: the params, then shadowed globals (always undefined). */
const PARAM_NAMES = ['window', 'sinks'] as const;
const SHADOWED = [
  'globalThis',
  'self',
  'document',
  'navigator',
  'location',
  'fetch',
  'XMLHttpRequest',
  'WebSocket',
  'importScripts',
  'postMessage',
  'localStorage',
  'indexedDB',
  'process',
  'require',
  'Function',
];
const SCOPE = [...PARAM_NAMES, ...SHADOWED];

/** Body lines before the user's first line in each form. */
const STATEMENT_PRELUDE = '"use strict";\n';
const EXPRESSION_PRELUDE = '"use strict";\nreturn (\n';
const STATEMENT_EPILOGUE = '\n;return typeof mask_mod === "function" ? mask_mod : undefined;';
const EXPRESSION_EPILOGUE = '\n);';

function linesOf(text: string): number {
  return text.split('\n').length - 1;
}

/** Lines the engine puts before a `new Function` body (2 in V8: "function anonymous(...\n) {"). */
const headerLines = (() => {
  try {
    new Function(...SCOPE, '\nthrow new Error("probe");')();
  } catch (error) {
    const line = stackLine(error);
    if (line !== null) return line.line - 2;
  }
  return 2;
})();

/** Line and column of the innermost frame in `new Function` code, from the stack. */
function stackLine(error: unknown): { line: number; column: number } | null {
  const stack = error instanceof Error ? String(error.stack ?? '') : '';
  // V8: "(eval at f (file:1:2), <anonymous>:4:12)"; Firefox: "> Function:4:12"; Safari varies.
  const match = /(?:<anonymous>|> Function|Function):(\d+):(\d+)/.exec(stack);
  return match ? { line: Number(match[1]), column: Number(match[2]) } : null;
}

function compile(prelude: string, source: string, epilogue: string) {
  return new Function(...SCOPE, prelude + source + epilogue) as (...args: unknown[]) => unknown;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Runtime errors: the frame's line in the user's source (statement form offsets). */
function runtimeError(error: unknown, prelude: string, where = ''): UserPatternError {
  const frame = stackLine(error);
  const line = frame ? frame.line - headerLines - linesOf(prelude) : null;
  const valid = line !== null && line >= 1;
  return new UserPatternError(
    messageOf(error) + where,
    valid ? line : null,
    valid ? frame!.column : null,
  );
}

/** A character no JavaScript parser accepts, appended to source prefixes when locating errors. */
const SENTINEL = '\n\u00a7';

function syntaxMessage(source: string): string | null {
  try {
    compile(STATEMENT_PRELUDE, source, STATEMENT_EPILOGUE);
    return null;
  } catch (error) {
    return error instanceof SyntaxError ? error.message : null;
  }
}

/**
 * Syntax errors carry no position in V8, so locate them: the first prefix of the source (in whole
 * lines) that, followed by an invalid character on a new line, fails with the source's own error
 * rather than at that character. An error found at no prefix (unclosed braces, strings) is
 * reported at the last line.
 */
function syntaxErrorLine(source: string, message: string): { line: number; unclosed: boolean } {
  const lines = source.split('\n');
  const atSentinel = syntaxMessage(SENTINEL);
  if (message !== atSentinel) {
    for (let n = 1; n <= lines.length; n++) {
      const prefixMessage = syntaxMessage(lines.slice(0, n).join('\n') + SENTINEL);
      if (prefixMessage === message) return { line: n, unclosed: false };
    }
  }
  let last = lines.length;
  while (last > 1 && lines[last - 1].trim() === '') last--;
  return { line: last, unclosed: true };
}

function instantiate(
  prelude: string,
  source: string,
  epilogue: string,
  scope: unknown[],
): { fn?: unknown; syntax?: SyntaxError } {
  let factory: (...args: unknown[]) => unknown;
  try {
    factory = compile(prelude, source, epilogue);
  } catch (error) {
    if (error instanceof SyntaxError) return { syntax: error };
    throw new UserPatternError(messageOf(error), null);
  }
  try {
    return { fn: factory(...scope) };
  } catch (error) {
    throw runtimeError(error, prelude);
  }
}

/**
 * Whether the user's function cannot depend on h, read from its source: its parameters are plain
 * names and its body never names the second one again (nor `arguments` or `eval`). Anything less
 * clear (destructuring, defaults, a comment in the parameters, an object key `h`) counts as
 * depending on h, which only costs the conversion its per-head work.
 */
export function ignoresHead(fn: (...args: never[]) => unknown): boolean {
  const text = fn.toString();
  const header = /^(?:async\s+)?(?:function\b[^(]*)?\(([^()]*)\)|^([A-Za-z_$][\w$]*)\s*=>/.exec(
    text,
  );
  if (!header) return false;
  const names = (header[1] ?? header[2]).split(',').map((name) => name.trim());
  if (names.some((name, i) => !/^[A-Za-z_$][\w$]*$/.test(name) && !(name === '' && i > 0))) {
    return false;
  }
  const body = text.slice(header[0].length);
  if (/(^|[^\w$.])(arguments|eval)(?![\w$])/.test(body)) return false;
  const head = names[1];
  if (!head) return true;
  const escaped = head.replace(/\$/g, '\\$');
  return !new RegExp(`(^|[^\\w$.])${escaped}(?![\\w$])`).test(body);
}

/** A compiled mask_mod, and whether it ignores h (ignoresHead). */
export type CompiledMaskMod = MaskMod & { readonly ignoresHead: boolean };

/**
 * Compiles a mask_mod source: statements that define `mask_mod`, or one function expression.
 * Throws UserPatternError (with the line) on any error; the returned MaskMod throws it too when
 * the user's function throws or returns something other than a boolean or number.
 */
export function compileMaskMod(
  source: string,
  scopeParams: { window: number; sinks: number } = { window: 1024, sinks: 4 },
): CompiledMaskMod {
  const scope = [scopeParams.window, scopeParams.sinks, ...SHADOWED.map(() => undefined)];
  let prelude = STATEMENT_PRELUDE;
  const statements = instantiate(STATEMENT_PRELUDE, source, STATEMENT_EPILOGUE, scope);
  let fn = statements.fn;
  if (typeof fn !== 'function') {
    try {
      const expression = instantiate(EXPRESSION_PRELUDE, source, EXPRESSION_EPILOGUE, scope);
      if (typeof expression.fn === 'function') {
        fn = expression.fn;
        prelude = EXPRESSION_PRELUDE;
      }
    } catch {
      // Not an expression either: report the statement form's problem below.
    }
  }
  if (typeof fn !== 'function') {
    if (statements.syntax) {
      const { message } = statements.syntax;
      const { line, unclosed } = syntaxErrorLine(source, message);
      const hint = unclosed ? ' (an unclosed bracket, brace or string?)' : '';
      throw new UserPatternError(`SyntaxError: ${message}${hint}`, line);
    }
    throw new UserPatternError(
      'define a function mask_mod(b, h, q_idx, kv_idx) (or write one function expression)',
      null,
    );
  }
  const user = fn as (b: number, h: number, q: number, kv: number) => unknown;
  const maskMod: MaskMod = (b, h, q, kv) => {
    let result: unknown;
    try {
      result = user(b, h, q, kv);
    } catch (error) {
      throw runtimeError(error, prelude, ` (at h=${h}, q_idx=${q}, kv_idx=${kv})`);
    }
    if (typeof result === 'boolean') return result;
    if (typeof result === 'number') return result !== 0;
    throw new UserPatternError(
      `mask_mod must return a boolean, got ${result === undefined ? 'undefined (missing return?)' : typeof result} ` +
        `(at h=${h}, q_idx=${q}, kv_idx=${kv})`,
      null,
    );
  };
  return Object.assign(maskMod, { ignoresHead: ignoresHead(user) });
}

const params: readonly ParamSpec[] = [
  {
    key: 'source',
    label: 'mask_mod',
    kind: 'code',
    default: DEFAULT_MASK_MOD,
    description:
      'FlexAttention mask_mod(b, h, q_idx, kv_idx) -> bool in JavaScript; `window` and `sinks` ' +
      'are in scope.',
  },
  {
    key: 'window',
    label: 'window',
    kind: 'int',
    min: 1,
    max: 1 << 20,
    step: 1,
    default: 1024,
    description: 'Exposed to the source as `window`; the default pattern\u2019s window.',
    sparsityKnob: 'decreasing',
  },
  {
    key: 'sinks',
    label: 'sinks',
    kind: 'int',
    min: 0,
    max: 1 << 20,
    step: 1,
    default: 4,
    description: 'Exposed to the source as `sinks`; the default pattern\u2019s sink tokens.',
  },
  {
    key: 'block',
    label: 'Block size',
    kind: 'choice',
    options: [16, 64],
    default: 64,
    description: 'Query and key block of the block mask (FlexAttention uses 128).',
  },
];

function plan(input: MaskShape, p?: Partial<MethodParams>) {
  const resolved = resolveParams(params, p);
  const block = numberParam(resolved, 'block');
  const maskMod = compileMaskMod(stringParam(resolved, 'source'), {
    window: numberParam(resolved, 'window'),
    sinks: numberParam(resolved, 'sinks'),
  });
  const { numHeads, numQueries, qStart } = input;
  return blockMaskFromMaskMod(
    { numHeads, numQueries, qStart, blockQ: block, blockK: block },
    maskMod,
    { sameForEveryHead: maskMod.ignoresHead },
  );
}

/** The mask of the call's query rows, built once for all the layers of a step. */
const plannedMask = (call: AttentionCall, p: MethodParams) =>
  plannedOnce('user_pattern', maskShapeOf(call), resolveParams(params, p), (shape) =>
    plan(shape, p),
  );

/**
 * The mask's reference; in decode its units are what dense decode reads: per KV head, every token
 * of each key block of `block` tokens holding a key that a query head of its group keeps (what
 * each query head weighs is the mask, `kept`).
 */
function reference(input: MethodInput, p?: Partial<MethodParams>): MethodReference {
  const mask = plan(input, p);
  const result = referenceFromMask(input, mask);
  if (input.numQueries !== 1) return result;
  const { numKvHeads } = input;
  const { blockK, numKeys } = mask;
  const group = mask.numHeads / numKvHeads;
  const keep = new Uint8Array(numKeys);
  let touched = 0;
  for (let g = 0; g < numKvHeads; g++) {
    const read = new Uint8Array(mask.numKeyBlocks);
    for (let h = g * group; h < (g + 1) * group; h++) {
      rowKeep(mask, h, 0, keep);
      keep.forEach((kept, t) => {
        if (kept) read[Math.floor(t / blockK)] = 1;
      });
    }
    read.forEach((listed, kb) => {
      if (listed) touched += Math.min(blockK, numKeys - kb * blockK);
    });
  }
  return { ...result, units: { unit: 'token', touched, total: numKeys * numKvHeads } };
}

/** Packed once per mask, so once for all the layers of a decode step. */
const packedKeyBlocks = new WeakMap<BlockMask, DecodeKeyBlocks>();

function keyBlocksOf(mask: BlockMask, numKvHeads: number): DecodeKeyBlocks {
  const cached = packedKeyBlocks.get(mask);
  if (cached?.numKvHeads === numKvHeads) return cached;
  const keyBlocks = decodeKeyBlocks(mask, numKvHeads);
  packedKeyBlocks.set(mask, keyBlocks);
  return keyBlocks;
}

/**
 * Decode on the GPU: split-K dense decode over the key blocks the row keeps (the block-sparse
 * prefill kernel with one query leaves most of a large GPU idle).
 */
const runDecode = (ctx: GpuContext, input: MethodGpuInput, p?: Partial<MethodParams>) =>
  runDecodeSubset(ctx, input, () => ({
    keyBlocks: decodeKeyBlocks(plan(input, p), input.numKvHeads),
  }));

/** In-model decode: dense decode over the row's key blocks, planning timed as planner time. */
function decodeInModel(ctx: GpuContext, p: MethodParams, call: AttentionCall): AttentionOp {
  const start = performance.now();
  const keyBlocks = keyBlocksOf(plannedMask(call, p), call.shape.numKvHeads);
  const plannerMs = performance.now() - start;
  const op = denseDecodeOp(ctx, call, undefined, { keyBlocks });
  return { ...op, readCount: async () => ({ ...(await op.readCount()), plannerMs }) };
}

export const userPatternMethod: SparseMethod = {
  name: 'user_pattern',
  label: 'Your pattern (mask_mod)',
  description:
    'Write a FlexAttention-style mask_mod(b, h, q_idx, kv_idx) -> bool; it becomes a block mask ' +
    '(full, partial or empty blocks) that the block-sparse kernel follows in prefill and dense ' +
    'decode follows, key block by key block, in decode. Patterns from ' +
    'attention-gym (sliding window, dilated, prefix LM, document masking, sinks) port directly.',
  citation:
    'Dong et al., Flex Attention: A Programming Model for Generating Optimized Attention Kernels (2024)',
  phases: ['prefill', 'decode'],
  params,
  sparsityMapping:
    'Through the `window` param: the window whose sliding window + sinks sparsity on this shape ' +
    'is closest to s. Exact for the default pattern; other sources decide whether they use it.',
  paramsForSparsity(s, shape) {
    checkSparsity(s);
    return resolveParams(params, { window: windowForSparsity(s, shape, 4) });
  },
  reference,
  planner: 'cpu',
  run: (ctx, input, p) =>
    input.numQueries === 1
      ? runDecode(ctx, input, p)
      : runPlannedMask(ctx, input, () => plan(input, p)),
  inModel: {
    prefill: (ctx, p, call) => blockSparseOp(ctx, call, () => plannedMask(call, p)),
    decode: decodeInModel,
  },
};
