// Dense decode attention over the paged KV cache, split pass of flash decoding (the reduce pass is
// dense_decode_reduce.wgsl).
//
// Work split: workgroup (x = split, y = kvHead) reads tokens [split * tokens_per_split, ...) of one
// KV head once and scores them against all GROUP query heads of that head's GQA group, so each K/V
// byte is loaded once per group rather than once per query head. Decode does about 2 * GROUP flops
// per KV byte: it is bound by memory bandwidth, and splitting the KV length is what gives a large
// GPU thousands of workgroups even when there are only a few KV heads.
//
// Inside a workgroup, LANES consecutive invocations form a row that handles one token at a time:
// each invocation loads VECS_PER_LANE 16-byte vectors of the token's K and V rows, so consecutive
// invocations read consecutive bytes (rows of consecutive tokens are adjacent within a page). The
// ROWS rows take consecutive tokens, UNROLL tokens each per iteration with all loads issued first.
// A row reduces its partial dot products with subgroup shuffles (LANES <= the subgroup size) or,
// without subgroups, through workgroup memory, and keeps its own online softmax: running max m,
// sum l and unnormalised output acc per query head. At the end the rows are merged in workgroup
// memory and the workgroup writes (m, l) and acc per query head for the reduce pass.
//
// Scores live in the log2 domain (params.q_scale = scale * log2(e)), so every exponential is exp2.
#if SUBGROUPS
enable subgroups;
#endif
#include "common/paged_kv"

struct Params {
  kv_len: u32,
  tokens_per_split: u32,
  num_splits: u32,
  q_scale: f32,
#if BLASST
  log2_lambda: f32, // BLASST threshold in the log2 domain; -3.4e38 for lambda = 0 (keep all)
  order: u32, // 0 natural, 1 sink-and-most-recent-first
#endif
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> q_in: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> k_pool: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v_pool: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read> page_table: array<u32>;
// [head][split][dim / 4] and [head][split] (m, l).
@group(0) @binding(5) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> part_ml: array<vec2<f32>>;
#if TOKEN_GAP
// Sparse variant (sliding window + sinks, Ada-SnapKV's compacted cache): KV head g reads every
// cache token but token_gaps[g] = (start, length, read): listed token t < read is cache token t, or
// t + length from t >= start on. params.kv_len is the largest `read`, which the splits cover; a
// split past its head's `read` writes an empty partial (m = -big, l = 0), which the reduce ignores.
@group(0) @binding(7) var<storage, read> token_gaps: array<vec4<u32>>;
#endif
#if KEY_BLOCKS
// Sparse variant (user patterns): KV head g reads the key blocks of KEY_BLOCK cache tokens that
// any query head of its group keeps, and each query head weighs only the keys it keeps. key_blocks
// (src/kernels/denseDecode.ts decodeKeyBlocks) holds, in u32 words:
//   [0] stride, the entries per KV head; [1 + g] the tokens KV head g reads (listed token t < it is
//   slot t % KEY_BLOCK of its (t / KEY_BLOCK)-th block, so only the last block may be short);
//   from 1 + NUM_KV_HEADS, entry (g, i) = (key block, bits slot) at 2 * (g * stride + i), slot
//   ALL_KEPT when every head of the group keeps the whole block;
//   after the entries, per bits slot and query head of the group, KEY_BLOCK_WORDS words with bit c
//   set when the head keeps the block's token c.
// As with TOKEN_GAP, params.kv_len is the largest count and a split past its head's count writes an
// empty partial. Blocks rather than pages: the user's block size (16 or 64) sets what is read,
// whatever the cache's page size, and the page table still maps each token.
@group(0) @binding(7) var<storage, read> key_blocks: array<u32>;
#endif
#if PAGE_LIST
// Sparse variant (Quest): token t is slot t % PAGE_SIZE of logical page
// page_list[kv_head][t / PAGE_SIZE]; params.kv_len counts the listed tokens, not the cache's.
@group(0) @binding(7) var<storage, read> page_list: array<u32>;
#endif
#if BLASST
// BLASST (src/methods/reference/blasst.ts) over blocks of ROWS * UNROLL tokens, split-K like the
// dense kernel: every split is its own BLASST walk with its own running max, and the reduce pass
// merges whatever each split kept exactly (skipping only chooses which blocks enter the sum). A
// split visits the cache's anchor blocks first, as the sequential walk does (natural: block 0;
// sink-and-most-recent-first: the last block, then block 0), then its own other blocks ascending.
// An anchor block is summed and counted only by the split that owns it; in the other splits it
// only raises the running max the skip test compares with, so no split starts from nothing and
// keeps its first block by default (with one split this is the sequential walk). Per block the K
// half is loaded and scored; each query head g of the group votes skip when m_blk - m <
// log2(lambda), m the split's running max of head g over the blocks it visited (nothing seen yet
// votes keep; a skipped block is below m, so kept blocks alone give the same m). The block is
// skipped, V never loaded, only when all GROUP heads vote skip: the decision is per KV head,
// uniform over the GQA group. counts is [kv_head][split][skipped, kept] over the split's own
// blocks; the reduce pass sums it per KV head. Not with PAGE_LIST.
@group(0) @binding(7) var<storage, read_write> counts: array<u32>;
#endif

#if KV_F16
const UNITS_PER_VEC = 2u; // vec4<f32> per 16-byte vector of the pool
#else
const UNITS_PER_VEC = 1u;
#endif
const VECS_PER_ROW = HEAD_DIM / (4u * UNITS_PER_VEC);
const UNITS = VECS_PER_LANE * UNITS_PER_VEC; // vec4<f32> of one head's q (and acc) per invocation
const DIM_VECS = HEAD_DIM / 4u;
const NEG_BIG = -3.0e38; // "minus infinity" that keeps max and exp2 free of NaN

var<workgroup> row_ml: array<array<vec2<f32>, GROUP>, ROWS>;
var<workgroup> row_acc: array<array<vec4<f32>, HEAD_CHUNK * DIM_VECS>, ROWS>;
#if SUBGROUPS
#else
var<workgroup> lane_scores: array<array<f32, UNROLL * GROUP>, WORKGROUP_SIZE>;
#endif

#if KEY_BLOCKS
const KEY_BLOCK_WORDS = (KEY_BLOCK + 31u) / 32u;
const ALL_KEPT = 0xffffffffu;

// First word of KV head kv_head's i-th entry (key block, bits slot).
fn key_block_entry(kv_head: u32, i: u32) -> u32 {
  return 1u + NUM_KV_HEADS + 2u * (kv_head * key_blocks[0] + i);
}

// Where the bits of listed token t's block begin (the group's first query head; head g's follow
// g * KEY_BLOCK_WORDS words on), or ALL_KEPT.
fn block_bits(kv_head: u32, t: u32) -> u32 {
  let slot = key_blocks[key_block_entry(kv_head, t / KEY_BLOCK) + 1u];
  let bits_start = 1u + NUM_KV_HEADS + 2u * NUM_KV_HEADS * key_blocks[0];
  return select(bits_start + slot * GROUP * KEY_BLOCK_WORDS, ALL_KEPT, slot == ALL_KEPT);
}

fn head_keeps(bits: u32, t: u32, g: u32) -> bool {
  if (bits == ALL_KEPT) {
    return true;
  }
  let c = t % KEY_BLOCK;
  return ((key_blocks[bits + g * KEY_BLOCK_WORDS + c / 32u] >> (c % 32u)) & 1u) == 1u;
}
#endif

fn unpack_vec(raw: vec4<u32>) -> array<vec4<f32>, UNITS_PER_VEC> {
#if KV_F16
  return array(
    vec4(unpack2x16float(raw.x), unpack2x16float(raw.y)),
    vec4(unpack2x16float(raw.z), unpack2x16float(raw.w)),
  );
#else
  return array(bitcast<vec4<f32>>(raw));
#endif
}

// The cache token that KV head kv_head's listed token t is.
fn cache_token(kv_head: u32, t: u32) -> u32 {
#if TOKEN_GAP
  let gap = token_gaps[kv_head];
  return t + select(0u, gap.y, t >= gap.x);
#else
#if KEY_BLOCKS
  return key_blocks[key_block_entry(kv_head, t / KEY_BLOCK)] * KEY_BLOCK + t % KEY_BLOCK;
#else
  return t;
#endif
#endif
}

fn physical_page(kv_head: u32, t: u32) -> u32 {
#if PAGE_LIST
  return page_table[page_list[kv_head * LIST_LEN + t / PAGE_SIZE]];
#else
  return page_table[t / PAGE_SIZE];
#endif
}

// Vector c of this lane's share of a row; lanes past the row's end re-read its last vector, which
// keeps loads in bounds (their q is zero and their acc is never written out).
fn lane_vec(c: u32, lane: u32) -> u32 {
  return min(c * LANES + lane, VECS_PER_ROW - 1u);
}

// Sums each score over the LANES invocations of a row; every lane of the row gets the sums.
fn row_sum(
  partial: array<f32, UNROLL * GROUP>,
  lid: u32,
  row: u32,
) -> array<f32, UNROLL * GROUP> {
  var s = partial;
#if SUBGROUPS
  for (var mask = LANES / 2u; mask > 0u; mask >>= 1u) {
    #unroll
    for (var i = 0u; i < UNROLL * GROUP; i++) {
      s[i] += subgroupShuffleXor(s[i], mask);
    }
  }
#else
  lane_scores[lid] = partial;
  workgroupBarrier();
  #unroll
  for (var i = 0u; i < UNROLL * GROUP; i++) {
    s[i] = 0.0;
    #unroll
    for (var j = 0u; j < LANES; j++) {
      s[i] += lane_scores[row * LANES + j][i];
    }
  }
  workgroupBarrier();
#endif
  return s;
}

#if BLASST
const BLOCK = ROWS * UNROLL;

// The cache's blocks a split visits before its own (see above): anchor 0 is the last block with
// sink-and-most-recent-first (one anchor when the cache is one block), block 0 otherwise.
fn anchor_count(num_blocks: u32) -> u32 {
  return select(1u, 2u, params.order == 1u && num_blocks > 1u);
}

fn anchor_block(a: u32, num_blocks: u32) -> u32 {
  return select(0u, num_blocks - 1u, a == 0u && anchor_count(num_blocks) == 2u);
}

fn is_anchor(block: u32, num_blocks: u32) -> bool {
  return block == 0u || (anchor_count(num_blocks) == 2u && block == num_blocks - 1u);
}

// Block b of the split's visits: the anchors, then its own non-anchor blocks lo, lo + 1, ...
fn visit_block(b: u32, anchors: u32, lo: u32, num_blocks: u32) -> u32 {
  return select(lo + b - anchors, anchor_block(b, num_blocks), b < anchors);
}

// This invocation's share of the K rows of a block (rows past the cache's end re-read its last
// token).
fn load_block_k(
  kv_head: u32,
  block: u32,
  row: u32,
  lane: u32,
) -> array<vec4<u32>, UNROLL * VECS_PER_LANE> {
  var k_raw: array<vec4<u32>, UNROLL * VECS_PER_LANE>;
  #unroll
  for (var r = 0u; r < UNROLL; r++) {
    let t = min(block * BLOCK + r * ROWS + row, params.kv_len - 1u);
    let token = cache_token(kv_head, t);
    let word = kv_row_word(physical_page(kv_head, token), kv_head, token % PAGE_SIZE);
    #unroll
    for (var c = 0u; c < VECS_PER_LANE; c++) {
      k_raw[r * VECS_PER_LANE + c] = k_pool[word / 4u + lane_vec(c, lane)];
    }
  }
  return k_raw;
}
#endif

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wid.x;
  let kv_head = wid.y;
  let lane = lid % LANES;
  let row = lid / LANES;
  let begin = split * params.tokens_per_split;
#if TOKEN_GAP
  let end = min(begin + params.tokens_per_split, token_gaps[kv_head].z);
#else
#if KEY_BLOCKS
  let end = min(begin + params.tokens_per_split, key_blocks[1u + kv_head]);
#else
  let end = min(begin + params.tokens_per_split, params.kv_len);
#endif
#endif

  var q: array<vec4<f32>, GROUP * UNITS>;
  var acc: array<vec4<f32>, GROUP * UNITS>;
  var m: array<f32, GROUP>;
  var l: array<f32, GROUP>;
  #unroll
  for (var g = 0u; g < GROUP; g++) {
    m[g] = NEG_BIG;
    l[g] = 0.0;
    let q_row = (kv_head * GROUP + g) * DIM_VECS;
    #unroll
    for (var c = 0u; c < VECS_PER_LANE; c++) {
      let in_row = c * LANES + lane < VECS_PER_ROW;
      #unroll
      for (var u = 0u; u < UNITS_PER_VEC; u++) {
        let x = q_in[q_row + lane_vec(c, lane) * UNITS_PER_VEC + u] * params.q_scale;
        q[g * UNITS + c * UNITS_PER_VEC + u] = select(vec4(0.0), x, in_row);
        acc[g * UNITS + c * UNITS_PER_VEC + u] = vec4(0.0);
      }
    }
  }

#if BLASST
  var wg_m: array<f32, GROUP>;
  #unroll
  for (var g = 0u; g < GROUP; g++) {
    wg_m[g] = NEG_BIG;
  }
  var skipped = 0u;
  var kept = 0u;
  let num_blocks = (params.kv_len + BLOCK - 1u) / BLOCK;
  let anchors = anchor_count(num_blocks);
  // The split's own blocks [first, last); its non-anchor ones [lo, hi) are contiguous, as the
  // anchors are the cache's first and last blocks.
  let first = begin / BLOCK;
  let last = (end + BLOCK - 1u) / BLOCK;
  let lo = first + u32(is_anchor(first, num_blocks));
  let hi = last - u32(last - 1u >= lo && is_anchor(last - 1u, num_blocks));
  let visits = anchors + hi - lo;
  // The K half of the next block is loaded as soon as the current one is scored, so it is in
  // flight during the skip decision and together with the V half of the current one (if kept):
  // about one memory round trip per block rather than two.
  var k_next = load_block_k(kv_head, visit_block(0u, anchors, lo, num_blocks), row, lane);
  for (var b = 0u; b < visits; b++) {
    let block = visit_block(b, anchors, lo, num_blocks);
    let owned = first <= block && block < last;
    let t0 = block * BLOCK;
    let block_end = min(t0 + BLOCK, params.kv_len);
    let k_raw = k_next;

    var partial = array<f32, UNROLL * GROUP>();
    #unroll
    for (var r = 0u; r < UNROLL; r++) {
      #unroll
      for (var c = 0u; c < VECS_PER_LANE; c++) {
        let k = unpack_vec(k_raw[r * VECS_PER_LANE + c]);
        #unroll
        for (var g = 0u; g < GROUP; g++) {
          #unroll
          for (var u = 0u; u < UNITS_PER_VEC; u++) {
            partial[r * GROUP + g] += dot(q[g * UNITS + c * UNITS_PER_VEC + u], k[u]);
          }
        }
      }
    }
    if (b + 1u < visits) {
      k_next = load_block_k(kv_head, visit_block(b + 1u, anchors, lo, num_blocks), row, lane);
    }
    let scores = row_sum(partial, lid, row);

    // The block max per head: this row's tokens, then all rows through row_ml.
    var own_max: array<f32, GROUP>;
    #unroll
    for (var g = 0u; g < GROUP; g++) {
      own_max[g] = NEG_BIG;
    }
    #unroll
    for (var r = 0u; r < UNROLL; r++) {
      let valid = t0 + r * ROWS + row < block_end;
      #unroll
      for (var g = 0u; g < GROUP; g++) {
        own_max[g] = select(own_max[g], max(own_max[g], scores[r * GROUP + g]), valid);
      }
    }
    if (lane == 0u) {
      #unroll
      for (var g = 0u; g < GROUP; g++) {
        row_ml[row][g] = vec2(own_max[g], 0.0);
      }
    }
    workgroupBarrier();
    var keep = false;
    var block_max: array<f32, GROUP>;
    #unroll
    for (var g = 0u; g < GROUP; g++) {
      var bm = NEG_BIG;
      #unroll
      for (var rr = 0u; rr < ROWS; rr++) {
        bm = max(bm, row_ml[rr][g].x);
      }
      block_max[g] = bm;
      let above = wg_m[g] == NEG_BIG || bm - wg_m[g] >= params.log2_lambda;
      keep = keep || (bm > NEG_BIG && above);
    }
    keep = keep && owned;
    workgroupBarrier(); // row_ml is rewritten by the next block
    // keep is the same in every invocation, but not provably uniform: no barrier below.
    var v_raw: array<vec4<u32>, UNROLL * VECS_PER_LANE>;
    if (keep) {
      #unroll
      for (var r = 0u; r < UNROLL; r++) {
        let t = min(t0 + r * ROWS + row, block_end - 1u);
        let token = cache_token(kv_head, t);
        let word = kv_row_word(physical_page(kv_head, token), kv_head, token % PAGE_SIZE);
        #unroll
        for (var c = 0u; c < VECS_PER_LANE; c++) {
          v_raw[r * VECS_PER_LANE + c] = v_pool[word / 4u + lane_vec(c, lane)];
        }
      }
    }
    if (owned) {
      skipped += u32(!keep);
      kept += u32(keep);
    }
    // A kept block, or another split's anchor, raises the running max of the skip test.
    if (keep || !owned) {
      #unroll
      for (var g = 0u; g < GROUP; g++) {
        wg_m[g] = max(wg_m[g], block_max[g]);
      }
    }
    if (keep) {
      for (var r = 0u; r < UNROLL; r++) {
        if (t0 + r * ROWS + row >= block_end) {
          continue;
        }
        #unroll
        for (var g = 0u; g < GROUP; g++) {
          let s = scores[r * GROUP + g];
          let e = exp2(-abs(s - m[g]));
          let raises = s > m[g];
          let alpha = select(1.0, e, raises);
          let p = select(e, 1.0, raises);
          m[g] = max(m[g], s);
          l[g] = l[g] * alpha + p;
          #unroll
          for (var c = 0u; c < VECS_PER_LANE; c++) {
            let v = unpack_vec(v_raw[r * VECS_PER_LANE + c]);
            #unroll
            for (var u = 0u; u < UNITS_PER_VEC; u++) {
              let i = g * UNITS + c * UNITS_PER_VEC + u;
              acc[i] = acc[i] * alpha + p * v[u];
            }
          }
        }
      }
    }
  }
  if (lid == 0u) {
    counts[(kv_head * params.num_splits + split) * 2u] = skipped;
    counts[(kv_head * params.num_splits + split) * 2u + 1u] = kept;
  }
#else
  for (var t0 = begin; t0 < end; t0 += ROWS * UNROLL) {
    var k_raw: array<vec4<u32>, UNROLL * VECS_PER_LANE>;
    var v_raw: array<vec4<u32>, UNROLL * VECS_PER_LANE>;
    #unroll
    for (var r = 0u; r < UNROLL; r++) {
      let t = min(t0 + r * ROWS + row, end - 1u);
      let token = cache_token(kv_head, t);
      let word = kv_row_word(physical_page(kv_head, token), kv_head, token % PAGE_SIZE);
      #unroll
      for (var c = 0u; c < VECS_PER_LANE; c++) {
        k_raw[r * VECS_PER_LANE + c] = k_pool[word / 4u + lane_vec(c, lane)];
        v_raw[r * VECS_PER_LANE + c] = v_pool[word / 4u + lane_vec(c, lane)];
      }
    }

    var partial = array<f32, UNROLL * GROUP>();
    #unroll
    for (var r = 0u; r < UNROLL; r++) {
      #unroll
      for (var c = 0u; c < VECS_PER_LANE; c++) {
        let k = unpack_vec(k_raw[r * VECS_PER_LANE + c]);
        #unroll
        for (var g = 0u; g < GROUP; g++) {
          #unroll
          for (var u = 0u; u < UNITS_PER_VEC; u++) {
            partial[r * GROUP + g] += dot(q[g * UNITS + c * UNITS_PER_VEC + u], k[u]);
          }
        }
      }
    }
    let scores = row_sum(partial, lid, row);

    // Not unrolled: `continue` must skip to the next r, not the next t0.
    for (var r = 0u; r < UNROLL; r++) {
      if (t0 + r * ROWS + row >= end) {
        continue;
      }
#if KEY_BLOCKS
      let bits = block_bits(kv_head, t0 + r * ROWS + row);
#endif
      #unroll
      for (var g = 0u; g < GROUP; g++) {
        // Online softmax with one exp2: the new score either raises the max (rescale the past by
        // exp2(m - s), weight 1) or not (weight exp2(s - m)).
#if KEY_BLOCKS
        // A key its query head masks out scores m with weight 0: nothing changes.
        let keeps = head_keeps(bits, t0 + r * ROWS + row, g);
        let s = select(m[g], scores[r * GROUP + g], keeps);
        let e = select(0.0, exp2(-abs(s - m[g])), keeps);
#else
        let s = scores[r * GROUP + g];
        let e = exp2(-abs(s - m[g]));
#endif
        let raises = s > m[g];
        let alpha = select(1.0, e, raises);
        let p = select(e, 1.0, raises);
        m[g] = max(m[g], s);
        l[g] = l[g] * alpha + p;
        #unroll
        for (var c = 0u; c < VECS_PER_LANE; c++) {
          let v = unpack_vec(v_raw[r * VECS_PER_LANE + c]);
          #unroll
          for (var u = 0u; u < UNITS_PER_VEC; u++) {
            let i = g * UNITS + c * UNITS_PER_VEC + u;
            acc[i] = acc[i] * alpha + p * v[u];
          }
        }
      }
    }
  }

#endif

  // Merge the rows: rescale each to the workgroup's max, then sum in workgroup memory.
  if (lane == 0u) {
    #unroll
    for (var g = 0u; g < GROUP; g++) {
      row_ml[row][g] = vec2(m[g], l[g]);
    }
  }
  workgroupBarrier();
  var factor: array<f32, GROUP>;
  #unroll
  for (var g = 0u; g < GROUP; g++) {
    var m_max = NEG_BIG;
    #unroll
    for (var r = 0u; r < ROWS; r++) {
      m_max = max(m_max, row_ml[r][g].x);
    }
    factor[g] = exp2(m[g] - m_max);
  }
  for (var g = lid; g < GROUP; g += WORKGROUP_SIZE) {
    var m_max = NEG_BIG;
    #unroll
    for (var r = 0u; r < ROWS; r++) {
      m_max = max(m_max, row_ml[r][g].x);
    }
    var l_sum = 0.0;
    #unroll
    for (var r = 0u; r < ROWS; r++) {
      l_sum += row_ml[r][g].y * exp2(row_ml[r][g].x - m_max);
    }
    part_ml[(kv_head * GROUP + g) * params.num_splits + split] = vec2(m_max, l_sum);
  }

  for (var g0 = 0u; g0 < GROUP; g0 += HEAD_CHUNK) {
    #unroll
    for (var h = 0u; h < HEAD_CHUNK; h++) {
      let g = g0 + h;
      #unroll
      for (var c = 0u; c < VECS_PER_LANE; c++) {
        if (g < GROUP && c * LANES + lane < VECS_PER_ROW) {
          #unroll
          for (var u = 0u; u < UNITS_PER_VEC; u++) {
            let dim_vec = (c * LANES + lane) * UNITS_PER_VEC + u;
            row_acc[row][h * DIM_VECS + dim_vec] = acc[g * UNITS + c * UNITS_PER_VEC + u] * factor[g];
          }
        }
      }
    }
    workgroupBarrier();
    for (var e = lid; e < HEAD_CHUNK * DIM_VECS; e += WORKGROUP_SIZE) {
      let g = g0 + e / DIM_VECS;
      if (g < GROUP) {
        var sum = vec4(0.0);
        #unroll
        for (var r = 0u; r < ROWS; r++) {
          sum += row_acc[r][e];
        }
        part_o[((kv_head * GROUP + g) * params.num_splits + split) * DIM_VECS + e % DIM_VECS] = sum;
      }
    }
    workgroupBarrier();
  }
}
