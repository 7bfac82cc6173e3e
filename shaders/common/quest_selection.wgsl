// What Quest's two selection kernels (attention/quest_select, attention/quest_rank_select) share:
// per KV head, the bounds of its num_full complete pages in, the list of the `budget` pages kept
// plus the current page out (page_list[kvHead][0 .. list_len), page_count[kvHead]).
#include "common/order_key"

struct Params {
  num_full: u32,
  budget: u32,
  list_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> bounds: array<f32>;
@group(0) @binding(2) var<storage, read_write> page_list: array<u32>;
@group(0) @binding(3) var<storage, read_write> page_count: array<u32>;
