// Paged KV cache addressing (see src/kernels/layout.ts): pool[page][kvHead][slot][dim].
// Needs consts PAGE_SIZE, HEAD_DIM, NUM_KV_HEADS and the flag KV_F16 (f16 pairs packed in u32).
#if KV_F16
const KV_ROW_WORDS = HEAD_DIM / 2;
#else
const KV_ROW_WORDS = HEAD_DIM;
#endif

// First 32-bit word of token `slot` of `kvHead` in physical page `page`.
fn kv_row_word(page: u32, kv_head: u32, slot: u32) -> u32 {
  return ((page * NUM_KV_HEADS + kv_head) * PAGE_SIZE + slot) * KV_ROW_WORDS;
}
