// Planner selection: per row of scores, the top k entries (ties to the lower index) with some
// indices forced in, by a radix select over order-preserving u32 keys (4 bits per level, 8 passes),
// so any row length works with one workgroup per row and no sort.
//  BLOCK_MODE (Block-Sparse): row = head * num_query_blocks + qb, entries kb = 0 .. first_block + qb
//    of scores row (stride `stride`), forced {0, diagonal - 1, diagonal}, k = k_first. Output: the
//    kept key blocks ascending in out[row * out_stride ..], their count in sizes[row].
//  otherwise (Vertical-Slash, FlexPrefill): rows 0 .. split-1 are column scores (forced
//    0 .. forced_first - 1, k = k_first), rows split .. are diagonal scores (forced
//    0 .. forced_second - 1, k = k_second), each num_keys long. With COVER, k is instead
//    min(n, max(min_budget, cover)), cover = FlexPrefill's score_cover_topk of the scores divided by
//    `rows`: 1 + the number of sorted (descending) prefix sums <= alpha, clamped to n. Output: bitset
//    rows of out_stride words (bit j of word j >> 5), and k in sizes[row].
// Forced entries get the key 0xffffffff (the reference's Infinity), so ties among them also go to the
// lower index. Defines: WG (256), BLOCK_MODE, COVER.
struct Params {
  stride: u32,
  num_keys: u32,
  k_first: u32,
  k_second: u32,
  split: u32,
  forced_first: u32,
  forced_second: u32,
  num_query_blocks: u32,
  first_block: u32,
  out_stride: u32,
  min_budget: u32,
  rows: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<storage, read_write> sizes: array<u32>;

const WORDS = WG / 32u;

var<workgroup> hist: array<atomic<u32>, 16>;
var<workgroup> bin_mass: array<f32, 16>;
var<workgroup> reduce: array<f32, WG>;
var<workgroup> words: array<atomic<u32>, WORDS>;
var<workgroup> ctl: array<u32, 4>;

#include "common/order_key"
#include "common/workgroup_scan"

struct Row {
  base: u32,
  n: u32,
  k: u32,
  diagonal: u32, // BLOCK_MODE: the diagonal key block
  forced: u32, // otherwise: indices below it are forced
}

fn row_info(row: u32) -> Row {
  var info: Row;
  info.base = row * params.stride;
#if BLOCK_MODE
  info.diagonal = params.first_block + row % params.num_query_blocks;
  info.n = info.diagonal + 1u;
  info.k = min(params.k_first, info.n);
  info.forced = 0u;
#else
  info.n = params.num_keys;
  info.diagonal = 0u;
  let columns = row < params.split;
  info.k = min(select(params.k_second, params.k_first, columns), info.n);
  info.forced = select(params.forced_second, params.forced_first, columns);
#endif
  return info;
}

fn boosted_key(info: Row, idx: u32) -> u32 {
#if BLOCK_MODE
  if (idx == 0u || idx == info.diagonal || idx + 1u == info.diagonal) {
    return 0xffffffffu;
  }
#else
  if (idx < info.forced) {
    return 0xffffffffu;
  }
#endif
  return order_key(scores[info.base + idx]);
}

fn sum_reduce(lid: u32, value: f32) -> f32 {
  reduce[lid] = value;
  workgroupBarrier();
  for (var step = WG / 2u; step > 0u; step /= 2u) {
    if (lid < step) {
      reduce[lid] += reduce[lid + step];
    }
    workgroupBarrier();
  }
  let total = reduce[0];
  workgroupBarrier();
  return total;
}

#if COVER
// FlexPrefill's cover count: descends the radix tree of the (non-negative) normalised scores,
// keeping the mass and count of all entries above the current bucket, into the bin where the
// sorted prefix sum first exceeds alpha.
fn cover_count(lid: u32, info: Row) -> u32 {
  var prefix = 0u;
  var mass_above = 0.0;
  var count_above = 0u;
  let rows = f32(params.rows);
  for (var level = 0u; level < 8u; level++) {
    let shift = 28u - 4u * level;
    let high = select(0u, 0xffffffffu << (shift + 4u), level > 0u);
    if (lid < 16u) {
      atomicStore(&hist[lid], 0u);
    }
    workgroupBarrier();
    // Zeroed explicitly: SwiftShader kept the previous level's sums in a bare declaration here.
    var mass: array<f32, 16>;
    for (var b = 0u; b < 16u; b++) {
      mass[b] = 0.0;
    }
    for (var idx = lid; idx < info.n; idx += WG) {
      let x = scores[info.base + idx] / rows;
      let key = order_key(x);
      if ((key & high) == prefix) {
        let bin = (key >> shift) & 15u;
        atomicAdd(&hist[bin], 1u);
        mass[bin] += x;
      }
    }
    for (var b = 0u; b < 16u; b++) {
      let total = sum_reduce(lid, mass[b]);
      if (lid == 0u) {
        bin_mass[b] = total;
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var chosen = 16u;
      for (var b = 15; b >= 0; b--) {
        let c = atomicLoad(&hist[b]);
        if (c == 0u) {
          continue;
        }
        if (mass_above + bin_mass[b] <= params.alpha) {
          mass_above += bin_mass[b];
          count_above += c;
        } else {
          chosen = u32(b);
          break;
        }
      }
      ctl[0] = chosen;
      ctl[1] = select(0u, atomicLoad(&hist[chosen & 15u]), chosen < 16u);
    }
    let chosen = workgroupUniformLoad(&ctl[0]);
    if (chosen == 16u) {
      // Every remaining entry keeps the prefix sum <= alpha.
      return info.n;
    }
    prefix |= chosen << shift;
  }
  // The bucket is one value v shared by ctl[1] entries: add them one at a time.
  if (lid == 0u) {
    let v = bitcast<f32>(prefix & 0x7fffffffu);
    var sum = mass_above;
    var j = 0u;
    let ties = ctl[1];
    while (j < ties) {
      sum += v;
      if (sum > params.alpha) {
        break;
      }
      j++;
    }
    ctl[2] = count_above + j;
  }
  let covered = workgroupUniformLoad(&ctl[2]);
  return min(covered + 1u, info.n);
}
#endif

@compute @workgroup_size(WG)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) groups: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = wid.y * groups.x + wid.x;
  var info = row_info(row);
#if COVER
  info.k = min(info.n, max(params.min_budget, cover_count(lid, info)));
#endif
  // Threshold key of the k-th largest entry, and how many entries equal to it are kept.
  var prefix = 0u;
  var remaining = info.k;
  for (var level = 0u; level < 8u; level++) {
    let shift = 28u - 4u * level;
    let high = select(0u, 0xffffffffu << (shift + 4u), level > 0u);
    if (lid < 16u) {
      atomicStore(&hist[lid], 0u);
    }
    workgroupBarrier();
    for (var idx = lid; idx < info.n; idx += WG) {
      let key = boosted_key(info, idx);
      if ((key & high) == prefix) {
        atomicAdd(&hist[(key >> shift) & 15u], 1u);
      }
    }
    workgroupBarrier();
    if (lid == 0u) {
      var rem = remaining;
      var chosen = 0u;
      for (var b = 15; b >= 0; b--) {
        let c = atomicLoad(&hist[b]);
        if (c >= rem) {
          chosen = u32(b);
          break;
        }
        rem -= c;
      }
      ctl[0] = chosen;
      ctl[1] = rem;
    }
    prefix |= workgroupUniformLoad(&ctl[0]) << shift;
    remaining = workgroupUniformLoad(&ctl[1]);
  }
  let threshold = prefix;
  // Keep every entry above the threshold and the first `remaining` equal to it, in index order.
  var equal_before = 0u;
  var kept_before = 0u;
  for (var chunk = 0u; chunk < info.n; chunk += WG) {
    let idx = chunk + lid;
    var key = 0u;
    if (idx < info.n) {
      key = boosted_key(info, idx);
    }
    let is_equal = idx < info.n && key == threshold;
    let equal = prefix_sum(lid, u32(is_equal));
    let rank = equal_before + equal.x - u32(is_equal);
    equal_before += equal.y;
    let keep = idx < info.n && (key > threshold || (is_equal && rank < remaining));
#if BLOCK_MODE
    let kept = prefix_sum(lid, u32(keep));
    if (keep) {
      out[row * params.out_stride + kept_before + kept.x - 1u] = idx;
    }
    kept_before += kept.y;
#else
    if (lid < WORDS) {
      atomicStore(&words[lid], 0u);
    }
    workgroupBarrier();
    if (keep) {
      atomicOr(&words[lid / 32u], 1u << (lid % 32u));
    }
    workgroupBarrier();
    let word = chunk / 32u + lid;
    if (lid < WORDS && word < params.out_stride) {
      out[row * params.out_stride + word] = atomicLoad(&words[lid]);
    }
    workgroupBarrier();
#endif
  }
  if (lid == 0u) {
#if BLOCK_MODE
    sizes[row] = kept_before;
#else
    sizes[row] = info.k;
#endif
  }
}
