// Scalar reads of the paged K pool for the planners (layout.ts); needs the binding `k_pool`
// (array<f32>, or array<u32> of f16 pairs with KV_F16) and `page_table` declared before inclusion.
#include "common/paged_kv"

fn planner_k(token: u32, kv_head: u32, d: u32) -> f32 {
  let word = kv_row_word(page_table[token / PAGE_SIZE], kv_head, token % PAGE_SIZE);
#if KV_F16
  let pair = unpack2x16float(k_pool[word + d / 2u]);
  return select(pair.x, pair.y, (d & 1u) == 1u);
#else
  return k_pool[word + d];
#endif
}
