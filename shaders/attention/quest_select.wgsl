// Quest page selection: per KV head, the `budget` complete pages with the highest bounds (ties to
// the lower page, as topKIndices on the CPU), listed ascending, then the current page:
//   page_list[kvHead][0 .. list_len), page_count[kvHead] = pages listed (= pages decode reads).
// One workgroup per KV head, O(num_full) work per pass (the approach of planner_select.wgsl):
//  1. radix select over order-preserving u32 keys of the bounds, 4 bits per level (at most 8
//     levels, stopping early once the threshold bucket is kept whole): the threshold prefix
//     (under `mask`) and how many entries equal to it are kept (`remaining`). Each invocation
//     adds runs of equal bins to the shared histogram at once, which keeps atomic contention low.
//  2. compaction: each invocation owns a contiguous segment of pages and counts the entries above
//     and equal to the threshold; one exclusive scan of (above, equal) gives every segment its
//     write offset and the ties before it, so the list comes out ascending.
// The bounds are read from global memory once: when num_full <= CACHE_KEYS their order keys are
// kept in workgroup memory for every level and the compaction (32K tokens: 2047 pages, 8 KiB).
// Defines: WORKGROUP_SIZE (a power of two >= 32), CACHE_KEYS (> 0).

struct Params {
  num_full: u32,
  budget: u32,
  list_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bounds: array<f32>;
@group(0) @binding(2) var<storage, read_write> page_list: array<u32>;
@group(0) @binding(3) var<storage, read_write> page_count: array<u32>;

// Two banks of 16 bins: a level fills one while the other is cleared for the next level.
var<workgroup> hist: array<atomic<u32>, 32>;
var<workgroup> scan: array<vec2<u32>, WORKGROUP_SIZE>;
// Chosen bin, ties still to keep, whole bucket kept (stop).
var<workgroup> ctl: array<u32, 3>;
var<workgroup> cached_keys: array<u32, CACHE_KEYS>;

// Larger floats get larger keys; -0 and +0 share one key (they tie in the reference).
fn order_key(x: f32) -> u32 {
  if (x == 0.0) {
    return 0x80000000u;
  }
  let bits = bitcast<u32>(x);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

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
  if (cached) {
    for (var i = lid; i < n; i += WORKGROUP_SIZE) {
      cached_keys[i] = order_key(bounds[base + i]);
    }
    workgroupBarrier();
  }

  // Entry i is above the threshold iff (key_i & mask) > prefix, tied iff equal. With mask 0 every
  // entry ties, so k = n keeps all and k = 0 keeps none without a select.
  var prefix = 0u;
  var mask = 0u;
  var remaining = k;
  if (k > 0u && k < n) {
    if (lid < 32u) {
      atomicStore(&hist[lid], 0u);
    }
    workgroupBarrier();
    for (var level = 0u; level < 8u; level++) {
      let shift = 28u - 4u * level;
      let bank = (level & 1u) * 16u;
      var run_bin = 0u;
      var run_count = 0u;
      for (var idx = lid; idx < n; idx += WORKGROUP_SIZE) {
        let key = key_at(base, idx, cached);
        if ((key & mask) == prefix) {
          let bin = (key >> shift) & 15u;
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
      if (lid < 16u) {
        // The bin holding the remaining-th largest entry: entries above it < remaining <= with it.
        let count = atomicLoad(&hist[bank + lid]);
        var above = 0u;
        for (var b = lid + 1u; b < 16u; b++) {
          above += atomicLoad(&hist[bank + b]);
        }
        if (above < remaining && above + count >= remaining) {
          ctl[0] = lid;
          ctl[1] = remaining - above;
          ctl[2] = u32(above + count == remaining);
        }
      } else if (lid < 32u) {
        atomicStore(&hist[(bank ^ 16u) + lid - 16u], 0u);
      }
      let whole = workgroupUniformLoad(&ctl[2]);
      prefix |= ctl[0] << shift;
      remaining = ctl[1];
      mask |= 15u << shift;
      if (whole == 1u) {
        break;
      }
    }
  }

  // Compaction: contiguous segments, one exclusive scan of (above, equal) counts.
  let per = (n + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
  let start = min(lid * per, n);
  let end = min(start + per, n);
  var mine = vec2(0u);
  for (var p = start; p < end; p++) {
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
  for (var p = start; p < end; p++) {
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
