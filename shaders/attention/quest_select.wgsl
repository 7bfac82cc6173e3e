// Quest page selection: per KV head, the `budget` complete pages with the highest bounds (ties to
// the lower page, as topKIndices on the CPU), listed ascending, then the current page:
//   page_list[kvHead][0 .. list_len), page_count[kvHead] = pages listed (= pages decode reads).
// One workgroup per KV head, O(num_full) work per pass (the approach of planner_select.wgsl):
//  1. radix select over order-preserving u32 keys of the bounds, DIGIT_BITS bits per level,
//     stopping once the threshold bucket is kept whole: the threshold prefix (under `mask`) and
//     how many entries equal to it are kept (`remaining`). It starts at the highest bit where the
//     largest and smallest keys differ: the bits above are common to all keys (the bounds of one
//     head share the sign and most of the exponent). Each invocation adds runs of equal bins to
//     the shared histogram at once, which keeps atomic contention low.
//  2. compaction: each invocation owns a contiguous segment of pages and counts the entries above
//     and equal to the threshold; one exclusive scan of (above, equal) gives every segment its
//     write offset and the ties before it, so the list comes out ascending.
// The bounds are read from global memory once: when num_full <= CACHE_KEYS their order keys are
// kept in workgroup memory for every level and the compaction (32K tokens: 2047 pages, 8 KiB).
// Defines: WORKGROUP_SIZE (a power of two >= 32), CACHE_KEYS (> 0), DIGIT_BITS (4 or 8).

#include "common/quest_selection"

const BINS = 1u << DIGIT_BITS;
// The search for the threshold bin sums bins in groups of 16.
const GROUPS = BINS / 16u;

// Two banks of bins: a level fills one while the other is cleared for the next level.
var<workgroup> hist: array<atomic<u32>, 2u * BINS>;
var<workgroup> group_count: array<u32, GROUPS>;
var<workgroup> scan: array<vec2<u32>, WORKGROUP_SIZE>;
// Chosen bin, ties still to keep, whole bucket kept (stop).
var<workgroup> ctl: array<u32, 3>;
// The complement of the smallest key (workgroup memory starts zeroed, so both are atomicMax'd).
var<workgroup> key_low_inverted: atomic<u32>;
var<workgroup> key_high: atomic<u32>;
// The highest bit where keys differ (32: none), and the largest key.
var<workgroup> start: array<u32, 2>;
var<workgroup> cached_keys: array<u32, CACHE_KEYS>;

// The order key of entry i of this KV head's bounds (from workgroup memory when cached).
fn key_at(base: u32, i: u32, cached: bool) -> u32 {
  if (cached) {
    return cached_keys[i];
  }
  return order_key(bounds[base + i]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let kv_head = wid.x;
  let n = params.num_full;
  let base = kv_head * n;
  let out = kv_head * params.list_len;
  let k = min(params.budget, n);
  let cached = n <= CACHE_KEYS;
  let select_any = k > 0u && k < n;
  var low = 0xffffffffu;
  var high = 0u;
  // The radix needs the extreme keys and the cache the keys; without either, the compaction alone
  // reads the bounds.
  if (cached || select_any) {
    for (var i = lid; i < n; i += WORKGROUP_SIZE) {
      let key = order_key(bounds[base + i]);
      if (cached) {
        cached_keys[i] = key;
      }
      low = min(low, key);
      high = max(high, key);
    }
  }
  if (select_any) {
    atomicMax(&key_low_inverted, ~low);
    atomicMax(&key_high, high);
  }
  workgroupBarrier();

  // Entry i is above the threshold iff (key_i & mask) > prefix, tied iff equal. With mask 0 every
  // entry ties, so k = n keeps all and k = 0 keeps none without a select.
  var prefix = 0u;
  var mask = 0u;
  var remaining = k;
  if (select_any) {
    if (lid == 0u) {
      let largest = atomicLoad(&key_high);
      let differ = ~atomicLoad(&key_low_inverted) ^ largest;
      start[0] = select(31u - countLeadingZeros(differ), 32u, differ == 0u);
      start[1] = largest;
    }
    var top = workgroupUniformLoad(&start[0]);
    // The bits above `top` are the same in every key.
    mask = select(~((2u << top) - 1u), 0xffffffffu, top == 32u);
    prefix = start[1] & mask;
    var bank = 0u;
    while (top < 32u) {
      // This level's digit: bits [lo, top].
      let lo = select(0u, top + 1u - DIGIT_BITS, top + 1u >= DIGIT_BITS);
      let digit = (2u << (top - lo)) - 1u;
      var run_bin = 0u;
      var run_count = 0u;
      for (var idx = lid; idx < n; idx += WORKGROUP_SIZE) {
        let key = key_at(base, idx, cached);
        if ((key & mask) == prefix) {
          let bin = (key >> lo) & digit;
          if (bin != run_bin && run_count > 0u) {
            atomicAdd(&hist[bank + run_bin], run_count);
            run_count = 0u;
          }
          run_bin = bin;
          run_count++;
        }
      }
      if (run_count > 0u) {
        atomicAdd(&hist[bank + run_bin], run_count);
      }
      workgroupBarrier();
      if (GROUPS > 1u) {
        for (var g = lid; g < GROUPS; g += WORKGROUP_SIZE) {
          var sum = 0u;
          for (var b = 0u; b < 16u; b++) {
            sum += atomicLoad(&hist[bank + 16u * g + b]);
          }
          group_count[g] = sum;
        }
        workgroupBarrier();
      }
      for (var bin = lid; bin < BINS; bin += WORKGROUP_SIZE) {
        // The bin holding the remaining-th largest entry: entries above it < remaining <= with it.
        let g = bin / 16u;
        let count = atomicLoad(&hist[bank + bin]);
        var above = 0u;
        for (var h = g + 1u; h < GROUPS; h++) {
          above += group_count[h];
        }
        for (var b = bin + 1u; b < 16u * (g + 1u); b++) {
          above += atomicLoad(&hist[bank + b]);
        }
        if (above < remaining && above + count >= remaining) {
          ctl[0] = bin;
          ctl[1] = remaining - above;
          ctl[2] = u32(above + count == remaining);
        }
        // The other bank's last reads were before the previous level's uniform load.
        atomicStore(&hist[(bank ^ BINS) + bin], 0u);
      }
      let whole = workgroupUniformLoad(&ctl[2]);
      prefix |= ctl[0] << lo;
      remaining = ctl[1];
      mask |= digit << lo;
      bank ^= BINS;
      if (whole == 1u || lo == 0u) {
        break;
      }
      top = lo - 1u;
    }
  }

  // Compaction: contiguous segments, one exclusive scan of (above, equal) counts.
  let per = (n + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let start_page = min(lid * per, n);
  let end_page = min(start_page + per, n);
  var mine = vec2(0u);
  for (var p = start_page; p < end_page; p++) {
    let key = key_at(base, p, cached) & mask;
    mine += vec2(u32(key > prefix), u32(key == prefix));
  }
  scan[lid] = mine;
  workgroupBarrier();
  for (var offset = 1u; offset < WORKGROUP_SIZE; offset <<= 1u) {
    let left = select(vec2(0u), scan[max(lid, offset) - offset], lid >= offset);
    workgroupBarrier();
    scan[lid] += left;
    workgroupBarrier();
  }
  let before = scan[lid] - mine;
  var written = before.x + min(before.y, remaining);
  var ties = before.y;
  for (var p = start_page; p < end_page; p++) {
    let key = key_at(base, p, cached) & mask;
    let tie = key == prefix;
    if (key > prefix || (tie && ties < remaining)) {
      page_list[out + written] = p;
      written++;
    }
    ties += u32(tie);
  }
  if (lid == WORKGROUP_SIZE - 1u) {
    let total = scan[lid];
    let listed = total.x + min(total.y, remaining);
    page_list[out + listed] = n; // the current page
    page_count[kv_head] = listed + 1u;
  }
}
