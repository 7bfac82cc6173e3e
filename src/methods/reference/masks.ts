/**
 * The block mask: the one representation of a token-level keep decision per (head, query, key)
 * that every sparse method's CPU reference produces and every GPU sparse kernel consumes.
 *
 * Coordinates. Query rows i = 0 .. numQueries-1 sit at absolute positions qStart + i (layout.ts);
 * keys j = 0 .. numKeys-1 with numKeys = qStart + numQueries. Element (h, i, j) is causal when
 * j <= qStart + i; non-causal elements are never kept, whatever the mask says. Query block qb holds
 * rows qb*blockQ .. qb*blockQ + blockQ - 1 (relative rows, the last block may be short); key block
 * kb holds keys kb*blockK .. kb*blockK + blockK - 1 (absolute). Heads are query heads: methods
 * that choose per KV head repeat the choice over the group.
 *
 * Storage (CSR over (head, query block)):
 *   row r = h * numQueryBlocks + qb lists entries e = rowStart[r] .. rowStart[r+1] - 1;
 *   keyBlock[e] is a key block index (strictly ascending within a row, every one holding at least
 *   one causal element of the query block); blockKind[e] is BLOCK_FULL (0) or BLOCK_PARTIAL (1).
 *   All arrays are Uint32Array (slot: Int32Array), ready for storage buffers.
 *   Blocks not listed are empty: skipped.
 *   FULL: every causal element of the block is kept (the kernel applies only the causal mask).
 *   PARTIAL: element (h, i, j) is kept iff causal and the rule below says so.
 *
 * Rules for partial blocks (`rule`):
 *   'none': there are no partial blocks (block-granular methods: Block-Sparse, BLASST, Quest).
 *   'vertical-slash': per head two bitsets of keyWords = ceil(numKeys / 32) u32 words each;
 *     kept iff bit j of columns[h*keyWords ..] or bit d = (qStart + i) - j of
 *     diagonals[h*keyWords ..] is set (bit b lives in word b >>> 5, bit b & 31).
 *     Vertical-Slash, FlexPrefill and sliding window + sinks use it.
 *   'bitset': explicit bits for each partial block (from a mask_mod); entry e uses the
 *     wordsPerBlock = ceil(blockQ*blockK / 32) words starting at slot[e] * wordsPerBlock of bits
 *     (slot[e] = -1 for full entries); the element at row r = i - qb*blockQ, column
 *     c = j - kb*blockK is bit r*blockK + c, same word/bit convention.
 */

export const BLOCK_FULL = 0;
export const BLOCK_PARTIAL = 1;
export type BlockClass = 'full' | 'partial';

export interface MaskShape {
  numHeads: number;
  numQueries: number;
  /** Absolute position of query row 0. */
  qStart: number;
}

export interface MaskGeometry extends MaskShape {
  blockQ: number;
  blockK: number;
}

export interface VerticalSlashRule {
  kind: 'vertical-slash';
  keyWords: number;
  columns: Uint32Array;
  diagonals: Uint32Array;
}

export type ElementRule =
  | { kind: 'none' }
  | VerticalSlashRule
  | { kind: 'bitset'; wordsPerBlock: number; slot: Int32Array; bits: Uint32Array };

export interface BlockMask extends MaskGeometry {
  numKeys: number;
  numQueryBlocks: number;
  numKeyBlocks: number;
  rowStart: Uint32Array;
  keyBlock: Uint32Array;
  /** u32 so that the array uploads to a GPU storage buffer as is. */
  blockKind: Uint32Array;
  rule: ElementRule;
}

/** FlexAttention's convention; b is always 0 here (one sequence). */
export type MaskMod = (b: number, h: number, qIdx: number, kvIdx: number) => boolean;

export function numKeysOf(shape: MaskShape): number {
  return shape.qStart + shape.numQueries;
}

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

export function bitsetWords(bits: number): number {
  return ceilDiv(bits, 32);
}

export function setBit(words: Uint32Array, offset: number, bit: number): void {
  words[offset + (bit >>> 5)] |= 1 << (bit & 31);
}

export function getBit(words: Uint32Array, offset: number, bit: number): boolean {
  return ((words[offset + (bit >>> 5)] >>> (bit & 31)) & 1) === 1;
}

export function blockClass(mask: BlockMask, entry: number): BlockClass {
  return mask.blockKind[entry] === BLOCK_FULL ? 'full' : 'partial';
}

/** Causal interactions of the whole shape: numHeads * sum_i (qStart + i + 1). */
export function causalTotal(shape: MaskShape): number {
  const { numQueries, qStart } = shape;
  return shape.numHeads * (numQueries * (qStart + 1) + (numQueries * (numQueries - 1)) / 2);
}

/** Key blocks holding at least one causal element of query block qb: 0 .. this - 1. */
export function causalKeyBlocks(geometry: MaskGeometry, qb: number): number {
  const lastRow = Math.min(geometry.numQueries, (qb + 1) * geometry.blockQ) - 1;
  return Math.floor((geometry.qStart + lastRow) / geometry.blockK) + 1;
}

function emptyMask(geometry: MaskGeometry, entries: number, rule: ElementRule): BlockMask {
  const numKeys = numKeysOf(geometry);
  const numQueryBlocks = ceilDiv(geometry.numQueries, geometry.blockQ);
  return {
    ...geometry,
    numKeys,
    numQueryBlocks,
    numKeyBlocks: ceilDiv(numKeys, geometry.blockK),
    rowStart: new Uint32Array(geometry.numHeads * numQueryBlocks + 1),
    keyBlock: new Uint32Array(entries),
    blockKind: new Uint32Array(entries),
    rule,
  };
}

/**
 * A block-granular mask: blocks(h, qb) lists the kept key blocks of query block qb of head h (any
 * order, no duplicates); all are full. Blocks without a causal element are rejected.
 */
export function blockMaskFromLists(
  geometry: MaskGeometry,
  blocks: (h: number, qb: number) => ArrayLike<number>,
): BlockMask {
  const numQueryBlocks = ceilDiv(geometry.numQueries, geometry.blockQ);
  const rows: Int32Array[] = [];
  let entries = 0;
  for (let h = 0; h < geometry.numHeads; h++) {
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      // A typed copy sorts numerically without a comparator: the planners' hot path at long L.
      const list = Int32Array.from(blocks(h, qb)).sort();
      const causal = causalKeyBlocks(geometry, qb);
      for (let e = 0; e < list.length; e++) {
        if (list[e] >= causal || list[e] < 0 || list[e] === list[e - 1]) {
          throw new Error(`head ${h} query block ${qb}: invalid key block ${list[e]}`);
        }
      }
      rows.push(list);
      entries += list.length;
    }
  }
  const mask = emptyMask(geometry, entries, { kind: 'none' });
  let e = 0;
  rows.forEach((list, r) => {
    mask.keyBlock.set(list, e);
    e += list.length;
    mask.rowStart[r + 1] = e;
  });
  return mask;
}

/**
 * Classifies every block by evaluating keep(h, i, j) on each of its causal elements: full if all
 * are kept, empty if none, else partial. With rule 'bitset' the partial blocks' bits are recorded;
 * any other rule must already encode keep (the caller's promise, checked by the tests).
 */
function classify(
  geometry: MaskGeometry,
  rule: VerticalSlashRule | 'bitset',
  keep: (h: number, i: number, j: number) => boolean,
): BlockMask {
  const { numHeads, numQueries, qStart, blockQ, blockK } = geometry;
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const wordsPerBlock = bitsetWords(blockQ * blockK);
  const keyBlocks: number[] = [];
  const kinds: number[] = [];
  const slots: number[] = [];
  const bitChunks: Uint32Array[] = [];
  const rowStart = new Uint32Array(numHeads * numQueryBlocks + 1);
  for (let h = 0; h < numHeads; h++) {
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const rowEnd = Math.min(numQueries, (qb + 1) * blockQ);
      const blocks = causalKeyBlocks(geometry, qb);
      for (let kb = 0; kb < blocks; kb++) {
        let kept = 0;
        let causal = 0;
        const bits = rule === 'bitset' ? new Uint32Array(wordsPerBlock) : undefined;
        for (let i = qb * blockQ; i < rowEnd; i++) {
          const keyEnd = Math.min(qStart + i + 1, (kb + 1) * blockK);
          for (let j = kb * blockK; j < keyEnd; j++) {
            causal++;
            if (keep(h, i, j)) {
              kept++;
              if (bits) setBit(bits, 0, (i - qb * blockQ) * blockK + (j - kb * blockK));
            }
          }
        }
        if (kept === 0) continue;
        keyBlocks.push(kb);
        const partial = kept < causal;
        kinds.push(partial ? BLOCK_PARTIAL : BLOCK_FULL);
        if (bits && partial) {
          slots.push(bitChunks.length);
          bitChunks.push(bits);
        } else {
          slots.push(-1);
        }
      }
      rowStart[h * numQueryBlocks + qb + 1] = keyBlocks.length;
    }
  }
  let finalRule: ElementRule;
  if (rule === 'bitset') {
    const bits = new Uint32Array(bitChunks.length * wordsPerBlock);
    bitChunks.forEach((chunk, s) => bits.set(chunk, s * wordsPerBlock));
    finalRule = { kind: 'bitset', wordsPerBlock, slot: Int32Array.from(slots), bits };
  } else {
    finalRule = rule;
  }
  const mask = emptyMask(geometry, keyBlocks.length, finalRule);
  mask.rowStart.set(rowStart);
  mask.keyBlock.set(keyBlocks);
  mask.blockKind.set(kinds);
  return mask;
}

/**
 * FlexAttention's create_block_mask: mask_mod evaluated on every causal element. With
 * `sameForEveryHead` (the caller knows mask_mod ignores h) it is evaluated for head 0 only and
 * every head gets head 0's blocks, sharing its bitsets.
 */
export function blockMaskFromMaskMod(
  geometry: MaskGeometry,
  maskMod: MaskMod,
  { sameForEveryHead = false } = {},
): BlockMask {
  const keep = (h: number, i: number, j: number) => maskMod(0, h, geometry.qStart + i, j);
  if (!sameForEveryHead) return classify(geometry, 'bitset', keep);
  const one = classify({ ...geometry, numHeads: 1 }, 'bitset', keep);
  if (one.rule.kind !== 'bitset') throw new Error('blockMaskFromMaskMod: expected a bitset rule');
  const slot = new Int32Array(one.rule.slot.length * geometry.numHeads);
  for (let h = 0; h < geometry.numHeads; h++) slot.set(one.rule.slot, h * one.rule.slot.length);
  return everyHeadAsOne(geometry, one, { ...one.rule, slot });
}

/** A mask of geometry.numHeads heads, each with the entries of `one` (a one-head mask). */
function everyHeadAsOne(geometry: MaskGeometry, one: BlockMask, rule: ElementRule): BlockMask {
  const entries = one.keyBlock.length;
  const mask = emptyMask(geometry, entries * geometry.numHeads, rule);
  const rows = one.numQueryBlocks;
  for (let h = 0; h < geometry.numHeads; h++) {
    mask.keyBlock.set(one.keyBlock, h * entries);
    mask.blockKind.set(one.blockKind, h * entries);
    for (let qb = 0; qb < rows; qb++) {
      mask.rowStart[h * rows + qb + 1] = h * entries + one.rowStart[qb + 1];
    }
  }
  return mask;
}

export function andMasks(...mods: MaskMod[]): MaskMod {
  return (b, h, q, kv) => mods.every((m) => m(b, h, q, kv));
}

export function orMasks(...mods: MaskMod[]): MaskMod {
  return (b, h, q, kv) => mods.some((m) => m(b, h, q, kv));
}

/**
 * Vertical-slash mask from per-head key columns and diagonal offsets (query position - key).
 * columns(h) and diagonals(h) list the kept ones; out-of-range values are ignored.
 */
export function verticalSlashMask(
  geometry: MaskGeometry,
  columns: (h: number) => Iterable<number>,
  diagonals: (h: number) => Iterable<number>,
): BlockMask {
  const numKeys = numKeysOf(geometry);
  const keyWords = bitsetWords(numKeys);
  const columnBits = new Uint32Array(geometry.numHeads * keyWords);
  const diagonalBits = new Uint32Array(geometry.numHeads * keyWords);
  for (let h = 0; h < geometry.numHeads; h++) {
    for (const c of columns(h)) if (c >= 0 && c < numKeys) setBit(columnBits, h * keyWords, c);
    for (const d of diagonals(h)) if (d >= 0 && d < numKeys) setBit(diagonalBits, h * keyWords, d);
  }
  const rule: VerticalSlashRule = {
    kind: 'vertical-slash',
    keyWords,
    columns: columnBits,
    diagonals: diagonalBits,
  };
  const { qStart } = geometry;
  const keep = (h: number, i: number, j: number) =>
    getBit(columnBits, h * keyWords, j) || getBit(diagonalBits, h * keyWords, qStart + i - j);
  if (!sameForEveryHead(columnBits, keyWords) || !sameForEveryHead(diagonalBits, keyWords)) {
    return classify(geometry, rule, keep);
  }
  // Every head keeps the same (sliding window + sinks): classify one head's elements, copy its rows.
  return everyHeadAsOne(geometry, classify({ ...geometry, numHeads: 1 }, rule, keep), rule);
}

/** Whether every head's words (`stride` a head) equal head 0's. */
function sameForEveryHead(words: Uint32Array, stride: number): boolean {
  for (let i = stride; i < words.length; i++) if (words[i] !== words[i % stride]) return false;
  return true;
}

/** The kept key blocks of (h, qb) as entries [start, end) of the CSR arrays. */
export function rowEntries(mask: BlockMask, h: number, qb: number): [number, number] {
  const r = h * mask.numQueryBlocks + qb;
  return [mask.rowStart[r], mask.rowStart[r + 1]];
}

function partialKeeps(mask: BlockMask, h: number, entry: number, i: number, j: number): boolean {
  const { rule } = mask;
  switch (rule.kind) {
    case 'none':
      throw new Error("rule 'none' has no partial blocks");
    case 'vertical-slash':
      return (
        getBit(rule.columns, h * rule.keyWords, j) ||
        getBit(rule.diagonals, h * rule.keyWords, mask.qStart + i - j)
      );
    case 'bitset': {
      const r = i % mask.blockQ;
      const c = j - mask.keyBlock[entry] * mask.blockK;
      return getBit(rule.bits, rule.slot[entry] * rule.wordsPerBlock, r * mask.blockK + c);
    }
  }
}

/** keep[j] = 1 for every key j the mask keeps for (h, query row i), 0 elsewhere (length numKeys). */
export function rowKeep(mask: BlockMask, h: number, i: number, keep: Uint8Array): void {
  keep.fill(0, 0, mask.numKeys);
  const keyEnd = mask.qStart + i + 1;
  const [start, end] = rowEntries(mask, h, Math.floor(i / mask.blockQ));
  for (let e = start; e < end; e++) {
    const first = mask.keyBlock[e] * mask.blockK;
    const last = Math.min(first + mask.blockK, keyEnd);
    const full = mask.blockKind[e] === BLOCK_FULL;
    for (let j = first; j < last; j++) {
      if (full || partialKeeps(mask, h, e, i, j)) keep[j] = 1;
    }
  }
}

/** Kept causal elements: the interactions a kernel following the mask computes. */
export function computedCount(mask: BlockMask): number {
  const keep = new Uint8Array(mask.numKeys);
  let count = 0;
  for (let h = 0; h < mask.numHeads; h++) {
    for (let i = 0; i < mask.numQueries; i++) {
      rowKeep(mask, h, i, keep);
      for (let j = 0; j < mask.numKeys; j++) count += keep[j];
    }
  }
  return count;
}

/** 1 - computed / causal total (prefill); for one query, the share of the cache not read. */
export function measuredSparsity(mask: BlockMask): number {
  return 1 - computedCount(mask) / causalTotal(mask);
}

export interface BlockCounts {
  /** Listed (touched) blocks, over all heads. */
  touched: number;
  full: number;
  partial: number;
  /** Blocks holding at least one causal element: what dense attention touches. */
  causal: number;
}

export function blockCounts(mask: BlockMask): BlockCounts {
  let partial = 0;
  for (const kind of mask.blockKind) partial += kind;
  let causal = 0;
  for (let qb = 0; qb < mask.numQueryBlocks; qb++) causal += causalKeyBlocks(mask, qb);
  const touched = mask.keyBlock.length;
  return { touched, full: touched - partial, partial, causal: causal * mask.numHeads };
}

/** Every causal element kept: the dense mask. */
export function denseMask(geometry: MaskGeometry): BlockMask {
  return blockMaskFromLists(geometry, (_h, qb) =>
    Array.from({ length: causalKeyBlocks(geometry, qb) }, (_, kb) => kb),
  );
}
