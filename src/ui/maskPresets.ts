/** Example mask_mod sources for the user pattern editor (attention-gym's classics). */
import { DEFAULT_MASK_MOD } from '../methods/userPattern';

export interface MaskPreset {
  name: string;
  source: string;
}

export const MASK_PRESETS: readonly MaskPreset[] = [
  {
    name: 'Causal',
    source: `function mask_mod(b, h, q_idx, kv_idx) {
  // Every earlier key (dense causal attention).
  return q_idx >= kv_idx;
}`,
  },
  {
    name: 'Sliding window',
    source: `function mask_mod(b, h, q_idx, kv_idx) {
  // The last \`window\` keys only.
  return q_idx - kv_idx < window;
}`,
  },
  { name: 'Sinks + window', source: DEFAULT_MASK_MOD },
  {
    name: 'Dilated',
    source: `function mask_mod(b, h, q_idx, kv_idx) {
  // A local window, then every 8th key further back.
  const distance = q_idx - kv_idx;
  return distance < 64 || distance % 8 === 0;
}`,
  },
  {
    name: 'Prefix LM',
    source: `const prefix = 256;
function mask_mod(b, h, q_idx, kv_idx) {
  // The prefix is seen by every query (its bidirectional part is
  // above the diagonal, never shown), then a causal window.
  return kv_idx < prefix || q_idx - kv_idx < window;
}`,
  },
  {
    name: 'Document mask',
    source: `// Packed documents: a query sees only keys of its own document.
const starts = [0, 180, 520, 700, 1100, 1500, 1800];
const doc = (i) => starts.filter((s) => s <= i).length;
function mask_mod(b, h, q_idx, kv_idx) {
  return doc(q_idx) === doc(kv_idx);
}`,
  },
];
