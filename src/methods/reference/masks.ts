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
 *     (slot[e] = -1 for full entries; entries with equal bits share a slot); the element at row
 *     r = i - qb*blockQ, column c = j - kb*blockK is bit r*blockK + c, same word/bit convention.
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
  const rows: ArrayLike<number>[] = [];
  let entries = 0;
  for (let h = 0; h < geometry.numHeads; h++) {
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const list = blocks(h, qb);
      rows.push(list);
      entries += list.length;
    }
  }
  const mask = emptyMask(geometry, entries, { kind: 'none' });
  let e = 0;
  rows.forEach((given, r) => {
    // The GPU planners list ascending: copied as they come; other lists are sorted first (a typed
    // copy sorts numerically without a comparator).
    let list = given;
    for (let i = 1; i < list.length; i++) {
      if (list[i] < list[i - 1]) {
        list = Int32Array.from(given).sort();
        break;
      }
    }
    const qb = r % numQueryBlocks;
    const causal = causalKeyBlocks(geometry, qb);
    for (let i = 0; i < list.length; i++) {
      const block = list[i];
      if (block >= causal || block < 0 || (i > 0 && block === list[i - 1])) {
        const h = Math.floor(r / numQueryBlocks);
        throw new Error(`head ${h} query block ${qb}: invalid key block ${block}`);
      }
      mask.keyBlock[e++] = block;
    }
    mask.rowStart[r + 1] = e;
  });
  return mask;
}

/**
 * Distinct bitsets of one size, each with its slot. Partial blocks repeat: a window's edge cuts
 * every query block's blocks alike, and many patterns cut every head alike. Sinks + window 416 per
 * head at 8K, 32 heads: 11,616 partial blocks, 5 distinct bitsets, 2.5 KB of bits to upload and
 * keep in cache instead of 5.9 MB.
 */
class BitsetSlots {
  private readonly chunks: Uint32Array[] = [];
  private readonly byHash = new Map<number, number[]>();

  slotOf(bits: Uint32Array): number {
    let hash = 0x811c9dc5;
    for (let w = 0; w < bits.length; w++) hash = Math.imul(hash ^ bits[w], 0x01000193);
    const candidates = this.byHash.get(hash);
    const same = candidates?.find((slot) => equalWords(this.chunks[slot], bits));
    if (same !== undefined) return same;
    const slot = this.chunks.length;
    this.chunks.push(bits);
    if (candidates) candidates.push(slot);
    else this.byHash.set(hash, [slot]);
    return slot;
  }

  /** The bitsets one after another, slot by slot. */
  join(): Uint32Array {
    const words = this.chunks[0]?.length ?? 0;
    const joined = new Uint32Array(this.chunks.length * words);
    this.chunks.forEach((chunk, slot) => joined.set(chunk, slot * words));
    return joined;
  }
}

function equalWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return false;
  return true;
}

/**
 * Classifies every block by evaluating keep(h, i, j) on each of its causal elements: full if all
 * are kept, empty if none, else partial, its bits recorded, each distinct bitset once
 * (BitsetSlots).
 */
function classifyElements(
  geometry: MaskGeometry,
  keep: (h: number, i: number, j: number) => boolean,
): BlockMask {
  const { numHeads, numQueries, qStart, blockQ, blockK } = geometry;
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const wordsPerBlock = bitsetWords(blockQ * blockK);
  const keyBlocks: number[] = [];
  const kinds: number[] = [];
  const slots: number[] = [];
  const bitsets = new BitsetSlots();
  const rowStart = new Uint32Array(numHeads * numQueryBlocks + 1);
  for (let h = 0; h < numHeads; h++) {
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const rowEnd = Math.min(numQueries, (qb + 1) * blockQ);
      const blocks = causalKeyBlocks(geometry, qb);
      for (let kb = 0; kb < blocks; kb++) {
        let kept = 0;
        let causal = 0;
        const bits = new Uint32Array(wordsPerBlock);
        for (let i = qb * blockQ; i < rowEnd; i++) {
          const keyEnd = Math.min(qStart + i + 1, (kb + 1) * blockK);
          for (let j = kb * blockK; j < keyEnd; j++) {
            causal++;
            if (keep(h, i, j)) {
              kept++;
              setBit(bits, 0, (i - qb * blockQ) * blockK + (j - kb * blockK));
            }
          }
        }
        if (kept === 0) continue;
        keyBlocks.push(kb);
        const partial = kept < causal;
        kinds.push(partial ? BLOCK_PARTIAL : BLOCK_FULL);
        slots.push(partial ? bitsets.slotOf(bits) : -1);
      }
      rowStart[h * numQueryBlocks + qb + 1] = keyBlocks.length;
    }
  }
  const rule: ElementRule = {
    kind: 'bitset',
    wordsPerBlock,
    slot: Int32Array.from(slots),
    bits: bitsets.join(),
  };
  return maskFromRows(geometry, rule, rowStart, keyBlocks, kinds);
}

/** A mask from its CSR rows, as the classifiers collect them. */
function maskFromRows(
  geometry: MaskGeometry,
  rule: ElementRule,
  rowStart: Uint32Array,
  keyBlocks: readonly number[],
  kinds: readonly number[],
): BlockMask {
  const mask = emptyMask(geometry, keyBlocks.length, rule);
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
  if (!sameForEveryHead) return classifyElements(geometry, keep);
  const one = classifyElements({ ...geometry, numHeads: 1 }, keep);
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
  if (!sameForEveryHead(columnBits, keyWords) || !sameForEveryHead(diagonalBits, keyWords)) {
    return classifyVerticalSlash(geometry, rule);
  }
  // Every head keeps the same (sliding window + sinks): classify one head, copy its rows.
  return everyHeadAsOne(geometry, classifyVerticalSlash({ ...geometry, numHeads: 1 }, rule), rule);
}

/**
 * classifyElements() for the vertical-slash rule, from the rule's words rather than element by
 * element: a block is empty when neither its key range has a column nor its diagonal range a
 * diagonal, full when either range is all set, and otherwise decided row by row, 32 keys a word,
 * until a row shows both a kept and a dropped key. Sliding window + sinks at 32K, 32 heads: 2.3-3.5
 * s element by element, 4-22 ms this way (bundled, this machine).
 */
function classifyVerticalSlash(geometry: MaskGeometry, rule: VerticalSlashRule): BlockMask {
  const { numHeads, numQueries, qStart, blockQ, blockK } = geometry;
  const { keyWords, columns, diagonals } = rule;
  const numQueryBlocks = ceilDiv(numQueries, blockQ);
  const keyBlocks: number[] = [];
  const kinds: number[] = [];
  const rowStart = new Uint32Array(numHeads * numQueryBlocks + 1);
  for (let h = 0; h < numHeads; h++) {
    const at = h * keyWords;
    for (let qb = 0; qb < numQueryBlocks; qb++) {
      const firstRow = qb * blockQ;
      const lastRow = Math.min(numQueries, firstRow + blockQ) - 1;
      const blocks = causalKeyBlocks(geometry, qb);
      for (let kb = 0; kb < blocks; kb++) {
        const firstKey = kb * blockK;
        // Keys causal for some row, and the diagonals (query - key) of the causal elements.
        const lastKey = Math.min(firstKey + blockK - 1, qStart + lastRow);
        const firstDiagonal = Math.max(0, qStart + firstRow - lastKey);
        const lastDiagonal = qStart + lastRow - firstKey;
        let kind: number;
        if (
          !anyBitIn(columns, at, firstKey, lastKey) &&
          !anyBitIn(diagonals, at, firstDiagonal, lastDiagonal)
        ) {
          continue;
        } else if (
          allBitsIn(columns, at, firstKey, lastKey) ||
          allBitsIn(diagonals, at, firstDiagonal, lastDiagonal)
        ) {
          kind = BLOCK_FULL;
        } else {
          const seen = rowsSeen(rule, at, qStart, firstRow, lastRow, firstKey, lastKey);
          if (seen === 'none') continue;
          kind = seen === 'all' ? BLOCK_FULL : BLOCK_PARTIAL;
        }
        keyBlocks.push(kb);
        kinds.push(kind);
      }
      rowStart[h * numQueryBlocks + qb + 1] = keyBlocks.length;
    }
  }
  return maskFromRows(geometry, rule, rowStart, keyBlocks, kinds);
}

/**
 * Whether rows firstRow..lastRow keep all, none or some of their causal keys in
 * firstKey..lastKey, stopping at the first row that settles 'some'.
 */
function rowsSeen(
  rule: VerticalSlashRule,
  at: number,
  qStart: number,
  firstRow: number,
  lastRow: number,
  firstKey: number,
  lastKey: number,
): 'all' | 'none' | 'some' {
  let kept = false;
  let dropped = false;
  for (let i = firstRow; i <= lastRow; i++) {
    const position = qStart + i;
    const end = Math.min(lastKey, position);
    for (let key = firstKey; key <= end; key += 32) {
      const valid = lowBits(end - key + 1);
      // Bit c: key + c's column, or its diagonal position - key - c (read reversed).
      const columns = bitsFrom(rule.columns, at, key);
      const diagonals = reverse32(bitsFrom(rule.diagonals, at, position - key - 31));
      const bits = ((columns | diagonals) & valid) >>> 0;
      if (bits !== 0) kept = true;
      if (bits !== valid) dropped = true;
      if (kept && dropped) return 'some';
    }
  }
  return kept ? 'all' : 'none';
}

/**
 * 32 bits of words (from offset) from bit `start` on, as an unsigned number; bits before bit 0 and
 * past the array read 0 (the callers mask off what lies past their own bits).
 */
function bitsFrom(words: Uint32Array, offset: number, start: number): number {
  const w = Math.floor(start / 32);
  const s = start - w * 32;
  const word = (k: number) => (k >= 0 && offset + k < words.length ? words[offset + k] : 0);
  const low = word(w) >>> s;
  return s === 0 ? low : (low | (word(w + 1) << (32 - s))) >>> 0;
}

/** The low n bits set (1 <= n, at most 32), unsigned. */
function lowBits(n: number): number {
  return 0xffffffff >>> Math.max(0, 32 - n);
}

function reverse32(x: number): number {
  x = ((x >>> 1) & 0x55555555) | ((x & 0x55555555) << 1);
  x = ((x >>> 2) & 0x33333333) | ((x & 0x33333333) << 2);
  x = ((x >>> 4) & 0x0f0f0f0f) | ((x & 0x0f0f0f0f) << 4);
  x = ((x >>> 8) & 0x00ff00ff) | ((x & 0x00ff00ff) << 8);
  return ((x >>> 16) | (x << 16)) >>> 0;
}

/** Whether any of bits first..last (inclusive) is set. */
function anyBitIn(words: Uint32Array, offset: number, first: number, last: number): boolean {
  for (let bit = first; bit <= last; bit += 32) {
    if ((bitsFrom(words, offset, bit) & lowBits(last - bit + 1)) !== 0) return true;
  }
  return false;
}

/** Whether all of bits first..last (inclusive) are set. */
function allBitsIn(words: Uint32Array, offset: number, first: number, last: number): boolean {
  for (let bit = first; bit <= last; bit += 32) {
    const valid = lowBits(last - bit + 1);
    if ((bitsFrom(words, offset, bit) & valid) >>> 0 !== valid) return false;
  }
  return true;
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
